package backtest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/backtest"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/teststores"
)

// stub raises one alert per event of the actors it watches, remembering
// the events it was given; severe names an event judged more severely.
type stub struct {
	actors  map[string]bool
	severe  string
	seen    []string
	flushed bool
}

func (s *stub) Process(fresh []event.Event) (store.Effects, error) {
	var eff store.Effects
	for _, e := range fresh {
		s.seen = append(s.seen, e.ID)
		if !s.actors[e.Actor.ID] {
			continue
		}
		sev := alert.SeverityMedium
		if e.ID == s.severe {
			sev = alert.SeverityHigh
		}
		eff.Alerts = append(eff.Alerts, alert.Alert{
			ID: alert.ID(e.Org, "stub", "p", e.Actor.ID, "", e.System, e.ID), Check: "stub", Pattern: "p",
			Severity: sev, Org: e.Org, ActorID: e.Actor.ID, FirstSeen: e.Time, LastSeen: e.Time, EventIDs: []string{e.ID},
			Explanation: "stub " + e.ID,
		})
	}
	return eff, nil
}

func (s *stub) Flush() store.Effects { s.flushed = true; return store.Effects{} }

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// TestRunKnownDiff stores events and the alerts of one evaluator in each
// kind of store, then backtests another: the diff holds exactly what
// differs, the events are read in event time within the period only, and
// the same evaluator gives no difference.
func TestRunKnownDiff(t *testing.T) {
	teststores.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		ev := func(id, actor string, at time.Duration) event.Event {
			return event.Event{ID: id, Time: t0.Add(at), Org: "o1", System: "s", Action: event.ActionLogin,
				Actor: event.Actor{ID: actor}, Outcome: event.OutcomeSuccess}
		}
		// Stored out of time order, in two batches, with one event before
		// the period and one at its (exclusive) end.
		batches := [][]event.Event{
			{ev("e3", "a", 3*time.Hour), ev("before", "a", -time.Hour), ev("e1", "a", time.Hour)},
			{ev("e2", "a", 2*time.Hour), ev("b1", "b", 90*time.Minute), ev("end", "a", 24*time.Hour)},
		}
		live := &stub{actors: map[string]bool{"a": true}}
		for _, b := range batches {
			if _, err := st.Apply(ctx, b, nil, live.Process); err != nil {
				t.Fatal(err)
			}
		}
		period := backtest.Options{From: t0, To: t0.Add(24 * time.Hour), ChunkSize: 2}

		same := &stub{actors: map[string]bool{"a": true}}
		res, err := backtest.Run(ctx, st, same, period)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Empty() || len(res.Groups) != 1 || res.Groups[0].Same != 3 {
			t.Errorf("same evaluator: %+v, want 3 alerts the same", res.Groups)
		}
		if want := []string{"e1", "b1", "e2", "e3"}; !slices.Equal(same.seen, want) || !same.flushed || res.Events != 4 {
			t.Errorf("judged %v (flushed %v, %d events), want %v in event time and a flush", same.seen, same.flushed, res.Events, want)
		}

		// Watches b too (b1 new), judges e3 more severely (changed) and
		// no longer sees e2 (gone).
		other := &stub{actors: map[string]bool{"a": true, "b": true}, severe: "e3"}
		res, err = backtest.Run(ctx, st, dropping{other, "e2"}, period)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Groups) != 1 {
			t.Fatalf("groups %+v, want stub/p only", res.Groups)
		}
		g := res.Groups[0]
		if g.Stored != 3 || g.Rerun != 3 || g.New != 1 || g.Gone != 1 || g.Changed != 1 || g.Same != 1 {
			t.Errorf("counts %+v, want 3 stored, 3 re-run: 1 new, 1 gone, 1 changed, 1 the same", g)
		}
		ids := func(as []alert.Alert) (s []string) {
			for _, a := range as {
				s = append(s, a.EventIDs...)
			}
			return s
		}
		if n, gone := ids(g.Example.New), ids(g.Example.Gone); !slices.Equal(n, []string{"b1"}) || !slices.Equal(gone, []string{"e2"}) {
			t.Errorf("new %v gone %v, want [b1] and [e2]", n, gone)
		}
		if len(g.Example.Changed) != 1 || !slices.Equal(g.Example.Changed[0].Fields, []string{"severity"}) ||
			g.Example.Changed[0].Rerun.EventIDs[0] != "e3" {
			t.Errorf("changed %+v, want e3's severity", g.Example.Changed)
		}
	})
}

// dropping hides one event from its evaluator, as a threshold that no
// longer fires on it would.
type dropping struct {
	*stub
	id string
}

func (d dropping) Process(fresh []event.Event) (store.Effects, error) {
	return d.stub.Process(slices.DeleteFunc(slices.Clone(fresh), func(e event.Event) bool { return e.ID == d.id }))
}
