package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEvents returns n realistic, distinct events starting at sequence from.
func benchEvents(from, n int) []event.Event {
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	mfa := true
	evs := make([]event.Event, n)
	for i := range evs {
		k := from + i
		evs[i] = event.Event{
			ID:      fmt.Sprintf("lmc-%09d", k),
			Time:    base.Add(time.Duration(k) * 37 * time.Millisecond),
			Org:     "st-martins",
			System:  "logmycare",
			Action:  event.ActionView,
			Actor:   event.Actor{ID: fmt.Sprintf("u-%d", k%300), Role: "support-worker", Team: "webster-court", Org: "st-martins"},
			Subject: event.Subject{ID: fmt.Sprintf("c-%04d", k%2000), Sensitivity: []string{"safeguarding"}},
			Record:  event.Record{Type: "care-plan", ID: fmt.Sprintf("cp-%d", k%9000)},
			Session: event.Session{ID: fmt.Sprintf("s-%d", k%5000), Device: fmt.Sprintf("tab-%02d", k%40), IP: "10.2.0.14", MFA: &mfa},
			Outcome: event.OutcomeSuccess,
		}
	}
	return evs
}

const benchBatch = 5000

func benchApply(b *testing.B, sync string, replay bool) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "bench.db"), Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Pre-build batches so that the benchmark measures the store, not the generator.
	const preload = 20
	batches := make([][]event.Event, preload)
	for i := range batches {
		batches[i] = benchEvents(i*benchBatch, benchBatch)
	}
	if replay {
		if _, err := s.Apply(ctx, batches[0], nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	noop := func([]event.Event) (store.Effects, error) { return store.Effects{}, nil }
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs := batches[0]
		if !replay {
			if i < preload {
				evs = batches[i]
			} else {
				b.StopTimer()
				evs = benchEvents(i*benchBatch, benchBatch)
				b.StartTimer()
			}
		}
		r, err := s.Apply(ctx, evs, nil, noop)
		if err != nil {
			b.Fatal(err)
		}
		if replay && r.Duplicates != benchBatch || !replay && r.Stored != benchBatch {
			b.Fatalf("unexpected result %+v", r)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	// Per CPU-second of this process too: on a shared machine wall time
	// also measures the neighbours (event generation outside the timer is
	// included here, so this slightly understates).
	b.ReportMetric(float64(b.N*benchBatch)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// BenchmarkApply stores fresh 5,000-event batches.
func BenchmarkApply(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) { benchApply(b, sync, false) })
	}
}

// BenchmarkApplyDuplicates replays one 5,000-event batch over and over.
func BenchmarkApplyDuplicates(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) { benchApply(b, sync, true) })
	}
}
