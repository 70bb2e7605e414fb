package simulate

import (
	"context"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
)

// BenchmarkRun measures generation alone (reference data built outside the
// timer); ns/op is per event.
func BenchmarkRun(b *testing.B) {
	for _, org := range []string{OrgStMartins, OrgWiltshire} {
		b.Run(org, func(b *testing.B) {
			s, err := New(Options{Org: org, From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Days: 28, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuTime()
			n := 0
			for n < b.N {
				err := s.Run(context.Background(), func(ev *event.Event, _ *Label) error {
					n++
					if n >= b.N {
						return errStop
					}
					return nil
				})
				if err != nil && err != errStop {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if c := cpuTime() - c0; c > 0 {
				b.ReportMetric(float64(b.N)/c.Seconds(), "events/cpu-s")
			}
		})
	}
}

var errStop = errStopT{}

type errStopT struct{}

func (errStopT) Error() string { return "stop" }
