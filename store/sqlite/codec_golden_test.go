package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// TestStoredJSONBytes pins the bytes of an event's detail column and an
// alert's body, as the store wrote them with goccy/go-json's v1 API before
// it moved to encoding/json (issue 15): stores written by either read the
// same, and a later library change shows here.
func TestStoredJSONBytes(t *testing.T) {
	mfa := false
	ev := event.Event{
		ID: "e-1", Time: time.Date(2026, 3, 2, 8, 0, 0, 123456789, time.FixedZone("", 5400)), Org: "o", System: "s",
		Action: event.ActionView, Actor: event.Actor{ID: "u", Role: "r<&>", Team: "t\u2028", Org: "o"},
		Subject: event.Subject{ID: "c", Sensitivity: []string{"a", "b"}}, Record: event.Record{Type: "care-plan", ID: "\x01é"},
		Session: event.Session{ID: "s-1", Device: "d", IP: "10.0.0.1", MFA: &mfa}, Outcome: event.OutcomeFailure,
	}
	args := make([]any, eventColumns)
	if err := encodeEvents(args, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	const wantDetail = `{"r":"r\u003c\u0026\u003e","m":"t\u2028","o":"o","s":["a","b"],"rt":"care-plan","ri":"\u0001é","si":"s-1","sd":"d","ip":"10.0.0.1","mfa":false,"x":"failure","z":5400}`
	if got := args[7].(string); got != wantDetail {
		t.Errorf("event detail:\ngot  %s\nwant %s", got, wantDetail)
	}
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	a := alert.Alert{ID: "a-1", Check: "bulk-access", Severity: alert.SeverityHigh, Org: "o", ActorID: "u", FirstSeen: at,
		LastSeen: at.Add(time.Minute), EventIDs: []string{"e-1"}, Explanation: "a <b> & c", EventCount: 1, Version: 9}
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "golden.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(ctx, []event.Event{ev}, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: []alert.Alert{a}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := s.r.QueryRowContext(ctx, `SELECT body FROM alerts WHERE id = 'a-1'`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	const wantAlert = `{"id":"a-1","check":"bulk-access","pattern":"","severity":"high","org":"o","actor_id":"u","subject_id":"","first_seen":"2026-03-02T08:00:00Z","last_seen":"2026-03-02T08:01:00Z","event_ids":["e-1"],"dpia":"","risks":null,"explanation":"a \u003cb\u003e \u0026 c","event_count":1}`
	if body != wantAlert {
		t.Errorf("alert body:\ngot  %s\nwant %s", body, wantAlert)
	}
}

// TestStoredZeroFieldBytes pins the detail column of an event whose
// optional fields are all zero, UTC and in the nanosecond range: v1 wrote
// nothing for the zero offset and nanoseconds, which v2's omitempty keeps.
func TestStoredZeroFieldBytes(t *testing.T) {
	ev := event.Event{ID: "e-1", Time: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), Org: "o", System: "s",
		Action: event.ActionView, Actor: event.Actor{ID: "u"}}
	args := make([]any, eventColumns)
	if err := encodeEvents(args, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if got := args[7].(string); got != `{}` {
		t.Errorf("event detail: got %s, want {}", got)
	}
}
