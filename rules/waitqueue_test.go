package rules

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
)

// TestWaitQueueOrder pushes events mostly in order with stragglers, taking
// some out between pushes, and checks every pop is the earliest waiting
// (eventBefore), as the heap alone gave.
func TestWaitQueueOrder(t *testing.T) {
	base := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, disorder := range []float64{0, 0.01, 0.3, 1} {
		t.Run(strconv.FormatFloat(disorder, 'f', -1, 64), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(disorder*100)))
			var q waitQueue
			var waiting []*event.Event
			popped := 0
			for i := range 8000 {
				at := base.Add(time.Duration(i/3) * time.Second) // three events an instant
				if rng.Float64() < disorder {
					at = at.Add(-time.Duration(rng.IntN(600)) * time.Second)
				}
				ev := &event.Event{Time: at, System: []string{"a", "b"}[rng.IntN(2)], ID: strconv.Itoa(rng.IntN(1 << 30))}
				q.push(ev)
				waiting = append(waiting, ev)
				for rng.IntN(3) == 0 && q.Len() > 0 {
					want := slices.MinFunc(waiting, func(a, b *event.Event) int {
						if eventBefore(a, b) {
							return -1
						}
						if eventBefore(b, a) {
							return 1
						}
						return 0
					})
					if got := q.peek(); got != want {
						t.Fatalf("pop %d: peek %v %s, want %v %s", popped, got.Time, got.ID, want.Time, want.ID)
					}
					if got := q.pop(); got != want {
						t.Fatalf("pop %d: %v %s, want %v %s", popped, got.Time, got.ID, want.Time, want.ID)
					}
					waiting = slices.DeleteFunc(waiting, func(e *event.Event) bool { return e == want })
					popped++
				}
				if q.Len() != len(waiting) {
					t.Fatalf("Len %d, want %d", q.Len(), len(waiting))
				}
			}
			for q.Len() > 0 {
				got := q.pop()
				for _, w := range waiting {
					if eventBefore(w, got) {
						t.Fatalf("popped %v %s while %v %s waits", got.Time, got.ID, w.Time, w.ID)
					}
				}
				waiting = slices.DeleteFunc(waiting, func(e *event.Event) bool { return e == got })
			}
			if len(waiting) != 0 {
				t.Fatalf("%d events never popped", len(waiting))
			}
		})
	}
}
