package stream

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// TestFeedLastArrival: each stored batch sets the last-arrival time of its
// orgs' and systems' pairs, with the orgs and systems the configuration
// does not name counted as "other", and a batch not stored sets nothing.
func TestFeedLastArrival(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	s, err := New(ctx, Options{Store: openTestStore(t), Rules: testEngineOptions(t, &reference.Data{}), Registerer: reg,
		Orgs: []string{"st-martins", "oak-lodge"}, Systems: []string{"logmycare"}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC)
	ev := func(id, org, system string) event.Event {
		return event.Event{ID: id, Time: at, Org: org, System: system, Action: event.ActionView,
			Actor: event.Actor{ID: "u-17"}, Subject: event.Subject{ID: "c-0042"}, Outcome: event.OutcomeSuccess}
	}
	before := float64(time.Now().UnixNano()) / 1e9
	if _, err := s.Process(ctx, []event.Event{ev("e-1", "st-martins", "logmycare"), ev("e-2", "st-martins", "logmycare"),
		ev("e-3", "unknown-org", "logmycare"), ev("e-4", "st-martins", "some-crm")}); err != nil {
		t.Fatal(err)
	}
	after := float64(time.Now().UnixNano()) / 1e9
	const name = "dpiawatch_feed_last_arrival_timestamp_seconds"
	if n := testutil.CollectAndCount(reg, name); n != 3 {
		t.Fatalf("%d series of %s, want 3 (oak-lodge has sent nothing)", n, name)
	}
	metric, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]float64{}
	for _, mf := range metric {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var org, system string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "org":
					org = l.GetValue()
				case "system":
					system = l.GetValue()
				}
			}
			got[[2]string{org, system}] = m.GetGauge().GetValue()
		}
	}
	for _, k := range [][2]string{{"st-martins", "logmycare"}, {"other", "logmycare"}, {"st-martins", "other"}} {
		if v, ok := got[k]; !ok || v < before || v > after {
			t.Errorf("%v: %v (present %v), want a time in [%v, %v]", k, v, ok, before, after)
		}
	}
	// A batch that is not stored (its write cancelled) is no arrival.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Process(cctx, []event.Event{ev("e-5", "oak-lodge", "logmycare")}); err == nil {
		t.Fatal("a batch was stored under a cancelled context")
	}
	if n := testutil.CollectAndCount(reg, name); n != 3 {
		t.Errorf("%d series after a failed batch, want still 3", n)
	}
}
