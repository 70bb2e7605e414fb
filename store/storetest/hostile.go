package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// hostileValues are identifiers as a feed or a person could send them:
// each would end a string literal, an IN list or a line of a query that
// splices values instead of binding them. Every one must round-trip as
// plain data, and match only itself.
var hostileValues = []string{
	`o'brien`,
	`back\slash\`,
	`x' OR '1'='1`,
	`a') OR 1=1 --`,
	`line one` + "\n" + `line two` + "\t" + `tab`,
	`\'; DROP TABLE events; --`,
	"rtl\u202eevil",
}

// testHostileValues stores events, alerts, state, outbox marks, delivery
// failures and — where the store keeps them — message refs, triage,
// silences and routine audits under hostile org, actor, subject, team,
// receiver and alert ids, next to a decoy, and reads each back through
// every read path: each query must return exactly its own rows.
func testHostileValues(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openClose(t, open)
	all := append([]string{"decoy"}, hostileValues...)
	var evs []event.Event
	for i, h := range all {
		e := ev("e-"+h, i)
		e.Org, e.System, e.Actor = h, h, event.Actor{ID: h, Team: h}
		e.Subject = event.Subject{ID: h}
		evs = append(evs, e)
	}
	apply(t, s, evs, nil)
	if r := apply(t, s, evs, nil); r.Stored != 0 || r.Duplicates != len(evs) {
		t.Fatalf("replaying the hostile batch: %+v, want all %d duplicates", r, len(evs))
	}
	var state []store.StateEntry
	for i, h := range all {
		a := sampleAlert(h)
		a.Org, a.Check, a.ActorID, a.SubjectID = h, h, h, h
		a.FirstSeen, a.LastSeen = t0.Add(time.Duration(i)*time.Minute), t0.Add(time.Duration(i)*time.Minute)
		apply(t, s, nil, withAlerts(a))
		state = append(state, store.StateEntry{Key: h + "/state", Value: []byte(h)}, store.CompletenessEntry(h, weekTo.Add(time.Hour)))
	}
	apply(t, s, nil, withState(state...))

	for i, h := range all {
		t.Run(fmt.Sprintf("value %d", i), func(t *testing.T) {
			want := evs[i]
			for _, f := range []store.EventFilter{{Org: h}, {ActorID: h}, {Org: h, ActorID: h, From: t0, To: t0.Add(time.Hour)}} {
				got := scan(t, s, f)
				if len(got) != 1 || got[0].Key() != want.Key() || got[0].Subject.ID != h || got[0].Actor.Team != h {
					t.Errorf("ScanEvents(%+q) = %v, want only %v", f, ids(got), ids([]event.Event{want}))
				}
				if n := count(t, s, f); n != 1 {
					t.Errorf("CountEvents(%+q) = %d, want 1", f, n)
				}
			}
			if loader, ok := s.(store.EventLoader); ok {
				got, err := loader.EventsByKey(ctx, []event.Key{want.Key(), {Org: h, System: h, ID: "missing"}})
				if err != nil || len(got) != 1 || got[0].Key() != want.Key() {
					t.Errorf("EventsByKey(%q) = %v, %v; want only it", want.Key(), ids(got), err)
				}
			}
			if lookup, ok := s.(store.KeyLookup); ok {
				other := want
				other.ID = "missing"
				got, err := lookup.Stored(ctx, []event.Event{want, other})
				if err != nil || !slices.Equal(got, []bool{true, false}) {
					t.Errorf("Stored(%q) = %v, %v; want [true false]", want.Key(), got, err)
				}
			}

			if a, err := s.Alert(ctx, h); err != nil || a.ID != h || a.Org != h || a.ActorID != h {
				t.Errorf("Alert(%q) = %+v, %v", h, a, err)
			}
			for _, f := range []store.AlertFilter{{Org: h}, {Check: h}, {Org: h, Check: h, Since: t0}} {
				as, err := s.Alerts(ctx, f)
				if err != nil || len(as) != 1 || as[0].ID != h {
					t.Errorf("Alerts(%+v) = %d alerts, %v; want only %q", f, len(as), err, h)
				}
			}
			st, err := s.LoadState(ctx, h+"/")
			if err != nil || len(st) != 1 || st[0].Key != h+"/state" || string(st[0].Value) != h {
				t.Errorf("LoadState(%q) = %+q, %v", h+"/", st, err)
			}

			testHostileOutbox(t, s, h, len(all))
			if as, ok := s.(store.AlertingStore); ok {
				testHostileAlerting(t, as, h)
			}
			if ra, ok := s.(store.RoutineAudits); ok {
				testHostileRoutineAudit(t, ra, h, want)
			}
		})
	}
}

// testHostileOutbox: receiver h has every alert pending until it marks
// alert h delivered; failures and resends are per receiver and alert.
func testHostileOutbox(t *testing.T, s store.Store, h string, alerts int) {
	ctx := context.Background()
	if got, _ := pendingIDs(t, s, h, 0); len(got) != alerts {
		t.Errorf("Pending(%q) = %q, want all %d alerts", h, got, alerts)
	}
	if err := s.MarkDelivered(ctx, h, h, 1); err != nil {
		t.Fatalf("MarkDelivered(%q): %v", h, err)
	}
	if got, _ := pendingIDs(t, s, h, 0); len(got) != alerts-1 || slices.Contains(got, h) {
		t.Errorf("Pending(%q) after marking %q = %q", h, h, got)
	}
	fs, ok := s.(store.DeliveryFailures)
	if !ok {
		return
	}
	if err := s.MarkFailed(ctx, store.DeliveryFailure{Receiver: h + "-r", AlertID: h, Version: 1, Reason: "msg_too_long", At: t0}); err != nil {
		t.Fatalf("MarkFailed(%q): %v", h, err)
	}
	got, err := fs.DeliveryFailures(ctx, h)
	if err != nil || len(got) != 1 || got[0].Receiver != h+"-r" || got[0].AlertID != h {
		t.Errorf("DeliveryFailures(%q) = %+v, %v", h, got, err)
	}
	if err := fs.Resend(ctx, h+"-r", h, audit.Entry{At: t0, Actor: h, Action: "outbox.resend", Object: h}); err != nil {
		t.Fatalf("Resend(%q): %v", h, err)
	}
	if got, err := fs.DeliveryFailures(ctx, h); err != nil || len(got) != 0 {
		t.Errorf("DeliveryFailures(%q) after resend = %+v, %v", h, got, err)
	}
}

func testHostileAlerting(t *testing.T, s store.AlertingStore, h string) {
	ctx := context.Background()
	if err := s.PutMessageRef(ctx, store.MessageRef{Receiver: h, AlertID: h, Channel: h, TS: "1.2", Version: 1}); err != nil {
		t.Fatalf("PutMessageRef(%q): %v", h, err)
	}
	if ref, err := s.MessageRef(ctx, h, h); err != nil || ref.Channel != h || ref.Receiver != h || ref.AlertID != h {
		t.Errorf("MessageRef(%q) = %+v, %v", h, ref, err)
	}
	if _, err := s.MessageRef(ctx, h, h+"'"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("MessageRef of another alert: %v, want ErrNotFound", err)
	}
	tr, err := s.AddTriage(ctx, triage.Decision{AlertID: h, Outcome: triage.Explained, Actor: h, At: triageAt, Note: h, Source: "api"})
	if err != nil {
		t.Fatalf("AddTriage(%q): %v", h, err)
	}
	if got, err := s.Triages(ctx, h); err != nil || len(got) != 1 || got[0] != tr {
		t.Errorf("Triages(%q) = %+v, %v; want [%+v]", h, got, err, tr)
	}
	p, err := s.PendingTriages(ctx, h, 0)
	if err != nil || !slices.ContainsFunc(p, func(x triage.Decision) bool { return x.Seq == tr.Seq }) {
		t.Errorf("PendingTriages(%q) = %+v, %v; want it to hold seq %d", h, p, err, tr.Seq)
	}
	if err := s.MarkTriageDelivered(ctx, h, tr.Seq); err != nil {
		t.Fatalf("MarkTriageDelivered(%q): %v", h, err)
	}
	if p, _ := s.PendingTriages(ctx, h, 0); slices.ContainsFunc(p, func(x triage.Decision) bool { return x.Seq == tr.Seq }) {
		t.Errorf("PendingTriages(%q) after marking = %+v", h, p)
	}
	sil := silence.Silence{ID: h, Matchers: []string{`org="` + h + `"`}, StartsAt: triageAt, EndsAt: triageAt.Add(time.Hour),
		CreatedBy: h, Comment: h, UpdatedAt: triageAt}
	if err := s.PutSilence(ctx, sil, audit.Entry{At: triageAt, Actor: h, Action: "silence.create", Object: h}); err != nil {
		t.Fatalf("PutSilence(%q): %v", h, err)
	}
	got, err := s.Silence(ctx, h)
	if err != nil || got.ID != h || got.Comment != h || !slices.Equal(got.Matchers, sil.Matchers) {
		t.Errorf("Silence(%q) = %+v, %v", h, got, err)
	}
	if _, err := s.Silence(ctx, h+"'"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Silence of another id: %v, want ErrNotFound", err)
	}
}

func testHostileRoutineAudit(t *testing.T, ra store.RoutineAudits, h string, want event.Event) {
	ctx := context.Background()
	var got []event.Event
	if err := ra.ScanTeamEvents(ctx, h, h, t0, t0.Add(time.Hour), func(e event.Event) error {
		got = append(got, e)
		return nil
	}); err != nil || len(got) != 1 || got[0].Key() != want.Key() {
		t.Errorf("ScanTeamEvents(%q) = %v, %v; want only %v", h, ids(got), err, want.Key())
	}
	if teams, err := ra.AuditTeams(ctx, h, t0.Add(-time.Hour), t0.Add(time.Hour)); err != nil || !slices.Equal(teams, []string{h}) {
		t.Errorf("AuditTeams(%q) = %q, %v", h, teams, err)
	}
	a := weekSample(h, 1, 1)
	a.Org, a.DPIA, a.Period = h, h, h
	a.Items[0].ActorID, a.Items[0].SubjectID = h, h
	if _, err := ra.PutAuditSample(ctx, a); err != nil {
		t.Fatalf("PutAuditSample(%q): %v", h, err)
	}
	sample, err := ra.AuditSample(ctx, h, h, h)
	if err != nil || sample.Org != h || sample.Team != h || len(sample.Items) != 1 || sample.Items[0].ActorID != h {
		t.Errorf("AuditSample(%q) = %+v, %v", h, sample, err)
	}
	r, err := ra.AddAuditReview(ctx, routineaudit.Review{Org: h, Team: h, Period: h, N: 0, Outcome: routineaudit.ReviewRefer, Reviewer: h, At: weekTo, Note: h})
	if err != nil {
		t.Fatalf("AddAuditReview(%q): %v", h, err)
	}
	if rs, err := ra.AuditReviews(ctx, h, h, h); err != nil || len(rs) != 1 || rs[0].Seq != r.Seq || rs[0].Note != h {
		t.Errorf("AuditReviews(%q) = %+v, %v", h, rs, err)
	}
	cov, err := ra.AuditCoverage(ctx, []string{h}, weekFrom, weekTo)
	if err != nil || len(cov) != 1 || cov[0].Org != h || cov[0].Team != h || cov[0].Reviewed != 1 || cov[0].Refer != 1 {
		t.Errorf("AuditCoverage(%q) = %+v, %v; want one row, reviewed and referred", h, cov, err)
	}
}
