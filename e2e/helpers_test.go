package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

func decodeAlerts(t *testing.T, b []byte) []alert.Alert {
	t.Helper()
	var out []alert.Alert
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var a alert.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatalf("alert line %q: %v", line, err)
		}
		out = append(out, a)
	}
	return out
}

// assertStoredOnce checks that the store holds exactly the produced events,
// each once.
func assertStoredOnce(ctx context.Context, t *testing.T, st store.Store, ids []string) {
	t.Helper()
	var stored []string
	if err := st.ScanEvents(ctx, store.EventFilter{}, func(ev event.Event) error {
		stored = append(stored, ev.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(stored)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(stored, want) {
		t.Fatalf("stored ids differ from produced ids: %d stored, %d produced", len(stored), len(want))
	}
}
