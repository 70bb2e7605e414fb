package clickhouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/triage"
)

// TestClickHouseAlertingViews runs the dashboards' triages and silences
// views over stored changes, and checks that a triage carries its alert's
// org (what a reader account's row policy filters on).
func TestClickHouseAlertingViews(t *testing.T) {
	srv := chtest.Shared(t)
	s := openStore(t, srv, clickhouse.Options{})
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a := alert.Alert{ID: "a-1", Org: "wiltshire-council", Check: "out-of-hours", FirstSeen: at, LastSeen: at}
	if _, err := s.Apply(ctx, []event.Event{{ID: "e1", Time: at, Org: "wiltshire-council", System: "mosaic", Action: event.ActionView,
		Actor: event.Actor{ID: "u-1"}, Subject: event.Subject{ID: "c-1"}, Outcome: event.OutcomeSuccess}}, nil,

		func([]event.Event) (store.Effects, error) { return store.Effects{Alerts: []alert.Alert{a}}, nil }); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{triage.Acknowledged, triage.Explained} {
		if _, err := s.AddTriage(ctx, triage.Decision{AlertID: "a-1", Outcome: o, Actor: "ig-jo", At: at, Source: "api"}); err != nil {
			t.Fatal(err)
		}
	}
	sl := silence.Silence{ID: "s1", Matchers: []string{`check="out-of-hours"`}, StartsAt: at, EndsAt: at.Add(time.Hour), UpdatedAt: at}
	for _, end := range []time.Time{at.Add(time.Hour), at.Add(10 * time.Minute)} {
		sl.EndsAt = end
		if err := s.PutSilence(ctx, sl, audit.Entry{At: at, Actor: "ig-jo", Action: "silence.update", Object: "s1"}); err != nil {
			t.Fatal(err)
		}
	}
	conn := srv.Open(t, "")
	db := dbName(t)
	var n, orgs uint64
	var last string
	if err := conn.QueryRow(ctx, `SELECT count(), countIf(org = 'wiltshire-council'), argMax(outcome, seq) FROM `+db+`.triages WHERE alert_id = 'a-1'`).Scan(&n, &orgs, &last); err != nil {
		t.Fatal(err)
	}
	if n != 2 || orgs != 2 || last != triage.Explained {
		t.Fatalf("triages view: %d rows, %d with the alert's org, latest %q", n, orgs, last)
	}
	var ends time.Time
	if err := conn.QueryRow(ctx, `SELECT count(), max(ends_at) FROM `+db+`.silences`).Scan(&n, &ends); err != nil {
		t.Fatal(err)
	}
	if n != 1 || !ends.Equal(at.Add(10*time.Minute)) {
		t.Fatalf("silences view: %d rows ending %s, want 1 ending %s", n, ends, at.Add(10*time.Minute))
	}
}
