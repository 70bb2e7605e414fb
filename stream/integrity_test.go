package stream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// TestPipelineConflictIsDeadLetteredAndAlertedOnce (issue 16, item 5): a
// conflicting duplicate is reported to the consumer until it is recorded —
// a batch redelivered after a crash before its dead letter still reports it
// — and never after; the feed-integrity alert is stored once, in both
// stores.
func TestPipelineConflictIsDeadLetteredAndAlertedOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		actor, shared := splitByKeying(testEngineOptions(t, &reference.Data{}))
		newEngine := func(o rules.Options) engine {
			e, err := rules.New(o)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		reg := prometheus.NewRegistry()
		counter, err := rules.NewAlertCounter(reg)
		if err != nil {
			t.Fatal(err)
		}
		p := &pipeline{store: st, log: testLogger(t), engine: &splitEngine{
			tasks:  newTaskEngine(func() (engine, error) { return newEngine(actor), nil }),
			shared: newEngine(shared),
		}, conflictAlert: func(c store.Conflict) alert.Alert { return rules.ConflictAlert(c, "st-martins-webster-court") },
			alertCounter: counter}
		if err := p.restore(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC)
		orig := event.Event{ID: "lmc-1", Time: t0, Org: "st-martins", System: "logmycare", Action: event.ActionView,
			Actor: event.Actor{ID: "u-17"}, Subject: event.Subject{ID: "c-0042"}, Outcome: event.OutcomeSuccess}
		hidden := orig
		hidden.Actor.ID, hidden.Action, hidden.Time = "u-99", event.ActionExport, t0.Add(2*time.Hour)

		if _, err := p.Process(ctx, []event.Event{orig}, nil); err != nil {
			t.Fatal(err)
		}
		batch := []event.Event{hidden}
		for attempt := range 2 { // the second: redelivered after a crash before the dead letter
			res, err := p.Process(ctx, batch, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Conflicts) != 1 || res.Conflicts[0].Index != 0 {
				t.Fatalf("attempt %d: conflicts %+v, want the batch's event", attempt, res.Conflicts)
			}
		}
		res, _ := p.Process(ctx, batch, nil)
		if err := p.RecordConflicts(ctx, res.Conflicts); err != nil {
			t.Fatal(err)
		}
		// Redelivered after the dead letter and the record: nothing again.
		for attempt := range 2 {
			res, err := p.Process(ctx, batch, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Conflicts) != 0 || res.Stored != 0 {
				t.Fatalf("after the record, attempt %d: %+v, want nothing to dead-letter", attempt, res)
			}
		}
		alerts, err := st.Alerts(ctx, store.AlertFilter{Check: rules.CheckFeedIntegrity})
		if err != nil {
			t.Fatal(err)
		}
		if len(alerts) != 1 {
			t.Fatalf("%d feed-integrity alerts, want 1", len(alerts))
		}
		// Counted once, with the checks' alerts (issue 16, item 5).
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP dpiawatch_rules_alerts_total Alerts opened, by check, DPIA and each DPIA risk the alert evidences (risk="none" when the DPIA maps the check or pattern to no risk).
# TYPE dpiawatch_rules_alerts_total counter
dpiawatch_rules_alerts_total{check="feed-integrity",dpia="st-martins-webster-court",risk="none"} 1
`), "dpiawatch_rules_alerts_total"); err != nil {
			t.Error(err)
		}
		a := alerts[0]
		if a.Pattern != rules.PatternConflictingDuplicate || a.Org != "st-martins" || a.ActorID != "" || a.SubjectID != "" ||
			len(a.Risks) != 0 || len(a.EventIDs) != 1 || a.EventIDs[0] != "lmc-1" || !a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("alert %+v", a)
		}
		want := "Event lmc-1 from logmycare was sent again with the same id but a different time, action, actor.id: the first was kept and the second set aside as a dead letter. A broken producer or tampering with the access log; no risk in DPIA st-martins-webster-court covers the integrity of the access log."
		if a.Explanation != want {
			t.Errorf("explanation\n%s\nwant\n%s", a.Explanation, want)
		}
		pending, err := st.Pending(ctx, "test", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 || pending[0].Version != 1 {
			t.Errorf("outbox holds %d alerts (version %d), want one version to deliver", len(pending), pending[0].Version)
		}
	})
}
