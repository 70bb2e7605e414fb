package simulate

import (
	"context"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
)

func TestQuick(t *testing.T) {
	for _, org := range []string{OrgStMartins, OrgWiltshire} {
		s, err := New(Options{Org: org, From: time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC), Days: 7, Seed: 1, Scale: 1})
		if err != nil {
			t.Fatal(err)
		}
		n, l := 0, 0
		counts := map[string]int{}
		start := time.Now()
		err = s.Run(context.Background(), func(ev *event.Event, lab *Label) error {
			n++
			counts[string(ev.Action)]++
			if lab != nil {
				l++
				counts[lab.Check+"/"+lab.Pattern]++
			}
			return nil
		})
		t.Log(org, n, l, time.Since(start), err, counts, s.Episodes())
	}
}
