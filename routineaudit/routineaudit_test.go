package routineaudit_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/routineaudit"
)

// events is an EventSource that serves its events in the order held,
// filtered as a store would.
type events []event.Event

func (es events) ScanTeamEvents(ctx context.Context, org, team string, from, to time.Time, fn func(event.Event) error) error {
	for _, e := range es {
		if e.Org == org && e.Actor.Team == team && !e.Time.Before(from) && e.Time.Before(to) {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func teamEvents(n int, from time.Time) events {
	var es events
	for i := range n {
		es = append(es, event.Event{Org: "o", System: []string{"s1", "s2"}[i%2], ID: fmt.Sprintf("e-%03d", i),
			Time: from.Add(time.Duration(i) * time.Minute), Action: "view",
			Actor: event.Actor{ID: fmt.Sprintf("u-%d", i%5), Team: "t"}, Subject: event.Subject{ID: fmt.Sprintf("c-%d", i)}, Record: event.Record{Type: "note"}})
	}
	// Another team's and another period's accesses are never drawn.
	es = append(es, event.Event{Org: "o", System: "s1", ID: "other-team", Time: from, Actor: event.Actor{ID: "u-x", Team: "u"}},
		event.Event{Org: "o", System: "s1", ID: "too-late", Time: from.AddDate(0, 0, 7), Actor: event.Actor{ID: "u-x", Team: "t"}})
	return es
}

// The draw depends on the events alone: the same sample whatever order a
// store returns them in, so that anyone holding the events can repeat it.
func TestDrawSampleIsReproducible(t *testing.T) {
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 7)
	es := teamEvents(40, from)
	first, err := routineaudit.DrawSample(t.Context(), es, "o", "d", "t", "2026-W10", from, to, 10)
	if err != nil {
		t.Fatal(err)
	}
	seed := routineaudit.SampleSeed("o", "t", "2026-W10")
	if first.Population != 40 || len(first.Items) != 10 || first.Seed != hex.EncodeToString(seed[:]) {
		t.Fatalf("population %d, %d items, seed %s; want 40, 10, %x", first.Population, len(first.Items), first.Seed, seed)
	}
	for i, it := range first.Items {
		if it.N != i || (i > 0 && it.Time.Before(first.Items[i-1].Time)) || it.EventID == "other-team" || it.EventID == "too-late" {
			t.Errorf("item %d: %+v (want in time order, numbered, of the team and period)", i, it)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(es)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := routineaudit.DrawSample(t.Context(), shuffled, "o", "d", "t", "2026-W10", from, to, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(first.Items, again.Items) {
			t.Fatalf("a different order drew a different sample:\n%v\n%v", first.Items, again.Items)
		}
	}
	other, err := routineaudit.DrawSample(t.Context(), es, "o", "d", "t", "2026-W11", from, to, 10)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(first.Items, other.Items) {
		t.Error("another period's seed drew the same sample")
	}
}

func TestDrawSampleSizes(t *testing.T) {
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 7)
	for _, tc := range []struct{ events, size, want int }{{0, 10, 0}, {3, 10, 3}, {10, 10, 10}, {25, 10, 10}, {25, 0, 0}} {
		s, err := routineaudit.DrawSample(t.Context(), teamEvents(tc.events, from), "o", "d", "t", "2026-W10", from, to, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if s.Population != int64(tc.events) || len(s.Items) != tc.want {
			t.Errorf("%d events, size %d: population %d, %d items; want %d, %d", tc.events, tc.size, s.Population, len(s.Items), tc.events, tc.want)
		}
	}
}
