package storetest

import (
	"context"
	"errors"
	"github.com/dpiawatch/dpiawatch/audit"
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// ViewRecorder writes one view-log row (the web UI's "who viewed what"),
// which each store keeps behind its own web store type.
type ViewRecorder func(t *testing.T, s store.Store, at time.Time, org, target string)

// ViewLister returns the targets of the view log, in any order.
type ViewLister func(t *testing.T, s store.Store) []string

// RunRetention is the retention contract: one policy, applied the same way
// by every store. Events, view logs and alerts older than their org's
// period go, newer ones stay; an org kept for ever keeps everything; alerts
// go with their triage only when the triage is final; check state goes
// when it has not been written for its period, except pending events.
func RunRetention(t *testing.T, open func(t *testing.T) store.Store, record ViewRecorder, list ViewLister) {
	day := 24 * time.Hour
	// now is the wall clock: check state is aged by when it was written.
	now := time.Now().UTC().Truncate(time.Second)
	s := openClose(t, open)
	ret, ok := s.(store.Retainer)
	if !ok {
		t.Fatalf("%T does not implement store.Retainer: it keeps the monitor's data for ever", s)
	}
	as := s.(store.AlertingStore)
	ctx := context.Background()

	at := func(org, id string, age time.Duration) event.Event {
		e := ev(id, 0)
		e.Org, e.Time = org, now.Add(-age)
		return e
	}
	apply(t, s, []event.Event{
		at("st-martins", "old-1", 31*day), at("st-martins", "old-2", 400*day), at("st-martins", "new-1", 29*day),
		at("st-martins", "new-2", time.Hour), at("wiltshire", "old-w", 31*day), at("wiltshire", "new-w", day),
		at("kept", "ancient", 3000*day),
	}, nil)
	al := func(id, org string, age time.Duration) alert.Alert {
		a := sampleAlert(id)
		a.Org, a.FirstSeen, a.LastSeen = org, now.Add(-age-time.Hour), now.Add(-age)
		return a
	}
	apply(t, s, nil, withAlerts(
		al("a-closed-old", "st-martins", 91*day), al("a-untriaged-old", "st-martins", 91*day),
		al("a-acked-old", "st-martins", 91*day), al("a-closed-new", "st-martins", 89*day),
		al("a-kept", "kept", 3000*day),
	))
	// A receiver's refusal of an alert goes with the alert (the web UI
	// would otherwise list a failure of an alert that no longer exists).
	fs, canFail := s.(interface {
		store.Outbox
		store.DeliveryFailures
	})
	if !canFail {
		t.Fatalf("%T keeps no delivery failures (store.Outbox, store.DeliveryFailures)", s)
	}
	{
		for _, id := range []string{"a-closed-old", "a-closed-new"} {
			if err := fs.MarkFailed(ctx, store.DeliveryFailure{Receiver: "slack", AlertID: id, Version: 1, Reason: "msg_too_long", At: now}); err != nil {
				t.Fatalf("MarkFailed %s: %v", id, err)
			}
		}
	}
	for _, tr := range []triage.Decision{
		{AlertID: "a-closed-old", Outcome: triage.Acknowledged},
		{AlertID: "a-closed-old", Outcome: triage.Explained},
		{AlertID: "a-acked-old", Outcome: triage.Acknowledged},
		{AlertID: "a-closed-new", Outcome: triage.FalsePositive},
		{AlertID: "a-kept", Outcome: triage.ConfirmedMisuse},
	} {
		tr.Actor, tr.At, tr.Source, tr.Note = "ig-1", now.Add(-95*day), "api", "reviewed"
		if _, err := as.AddTriage(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	// Managers' notes go with their alert, audit entries included.
	notes, canNote := s.(store.AlertNotes)
	if !canNote {
		t.Fatalf("%T keeps no alert notes (store.AlertNotes)", s)
	}
	for _, id := range []string{"a-closed-old", "a-closed-new"} {
		if _, err := notes.AddAlertNote(ctx, triage.Note{AlertID: id, Actor: "mgr-1", At: now.Add(-95 * day), Text: "covering a colleague"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := as.MarkDelivered(ctx, "slack", "a-closed-old", 1); err != nil {
		t.Fatal(err)
	}
	record(t, s, now.Add(-61*day), "st-martins", "view-old")
	record(t, s, now.Add(-59*day), "st-martins", "view-new")
	record(t, s, now.Add(-3000*day), "kept", "view-kept")
	// The checks' state (rules/… inside a task's prefix) and the records
	// of handled conflicting duplicates (issue 16, item 5) age; pending
	// events and clocks, and the daemon's other bookkeeping, never do.
	checkKey := "tasks/t/0/rules/x/sessions/st-martins/u-1"
	conflictKey := store.ConflictStatePrefix + "st-martins\x00logmycare\x00e-1\x00d1g3st"
	kept := []string{
		"completeness/st-martins", "heartbeat/st-martins", "outbox/i-1/7", "progress/t/0",
		"tasks/t/0/rules/pending/st-martins/1-e", "tasks/t/0/rules/watermark/st-martins",
	}
	entries := []store.StateEntry{{Key: checkKey, Value: []byte(`{"v":1}`)}, {Key: conflictKey, Value: []byte(`time,actor.id`)}}
	for _, k := range kept {
		entries = append(entries, store.StateEntry{Key: k, Value: []byte(`1`)})
	}
	apply(t, s, nil, withState(entries...))

	periods := store.RetentionPeriods{
		store.RetainEvents: 30 * day, store.RetainCheckState: 30 * day,
		store.RetainViewLogs: 60 * day, store.RetainAlerts: 90 * day,
	}
	p := store.RetentionPolicy{
		Default: periods,
		Orgs: map[string]store.RetentionPeriods{
			"kept": {}, // its DPIA keeps everything
			// Shorter than the default for events only.
			"wiltshire": {store.RetainEvents: 30 * day, store.RetainCheckState: 30 * day, store.RetainViewLogs: 60 * day, store.RetainAlerts: 90 * day},
		},
		ChunkRows:           1, // every row its own transaction: chunking must not lose any
		KeepStateContaining: []string{"rules/pending/", "rules/watermark/"},
	}
	res, err := ret.Retain(ctx, p, now)
	if err != nil {
		t.Fatalf("Retain: %v", err)
	}
	var left []string
	if err := s.ScanEvents(ctx, store.EventFilter{}, func(e event.Event) error {
		left = append(left, e.Org+"/"+e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(left)
	if want := []string{"kept/ancient", "st-martins/new-1", "st-martins/new-2", "wiltshire/new-w"}; !slices.Equal(left, want) {
		t.Errorf("events left = %v, want %v", left, want)
	}
	for id, want := range map[string]bool{
		"a-closed-old": false, "a-untriaged-old": true, "a-acked-old": true, "a-closed-new": true, "a-kept": true,
	} {
		_, err := s.Alert(ctx, id)
		if got := err == nil; got != want || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("alert %s kept = %v (%v), want %v", id, got, err, want)
		}
	}
	if trs, err := as.Triages(ctx, "a-closed-old"); err != nil || len(trs) != 0 {
		t.Errorf("the deleted alert's triages = %v, %v; want none", trs, err)
	}
	{
		if fl, err := fs.DeliveryFailures(ctx, "a-closed-old"); err != nil || len(fl) != 0 {
			t.Errorf("the deleted alert's delivery failures = %v, %v; want none", fl, err)
		}
		if fl, err := fs.DeliveryFailures(ctx, "a-closed-new"); err != nil || len(fl) != 1 {
			t.Errorf("a kept alert's delivery failures = %v, %v; want its one", fl, err)
		}
	}
	if trs, err := as.Triages(ctx, "a-closed-new"); err != nil || len(trs) != 1 {
		t.Errorf("a kept alert's triages = %v, %v; want its one", trs, err)
	}
	if ns, err := notes.AlertNotes(ctx, "a-closed-old"); err != nil || len(ns) != 0 {
		t.Errorf("the deleted alert's notes = %v, %v; want none", ns, err)
	}
	if ns, err := notes.AlertNotes(ctx, "a-closed-new"); err != nil || len(ns) != 1 {
		t.Errorf("a kept alert's notes = %v, %v; want its one", ns, err)
	}
	if log, err := as.AuditLog(ctx, 0); err != nil || slices.ContainsFunc(log, func(e audit.Entry) bool { return e.Object == "a-closed-old" }) {
		t.Errorf("the deleted alert's audit entries remain: %v, %v", log, err)
	}
	views := list(t, s)
	slices.Sort(views)
	if want := []string{"view-kept", "view-new"}; !slices.Equal(views, want) {
		t.Errorf("view log = %v, want %v", views, want)
	}
	if st, err := s.LoadState(ctx, ""); err != nil || len(st) != len(kept)+2 {
		t.Errorf("check state written just now = %v, %v; want every entry kept", st, err)
	}
	wantDeleted := map[string]map[string]int64{
		"st-martins": {store.RetainEvents: 2, store.RetainViewLogs: 1, store.RetainAlerts: 1},
		"wiltshire":  {store.RetainEvents: 1},
	}
	if !deletedEqual(res.Deleted, wantDeleted) {
		t.Errorf("Deleted = %v, want %v", res.Deleted, wantDeleted)
	}
	if res.KeptOpen != 2 {
		t.Errorf("KeptOpen = %d, want 2 (untriaged and acknowledged only)", res.KeptOpen)
	}

	first, err := ret.RetentionStatus(ctx, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatalf("RetentionStatus: %v", err)
	}
	for _, o := range []struct {
		org, class string
		want       time.Time
	}{
		{"kept", store.RetainEvents, now.Add(-3000 * day)}, {"st-martins", store.RetainEvents, now.Add(-29 * day)},
		{"st-martins", store.RetainViewLogs, now.Add(-59 * day)}, {"kept", store.RetainAlerts, now.Add(-3000 * day)},
	} {
		if got := first.Oldest[o.org][o.class]; !got.Equal(o.want) {
			t.Errorf("oldest %s of %s = %v, want %v", o.class, o.org, got, o.want)
		}
	}
	if got := first.Oldest[""][store.RetainCheckState]; got.Before(now.Add(-time.Minute)) || got.After(time.Now().Add(time.Minute)) {
		t.Errorf("oldest check state written %v, want about %v", got, now)
	}

	// A month and a day on, the state nobody rewrote goes; pending events
	// stay. Check state is keyed by task, not org: it is kept as long as
	// the longest period of any org, so not while an org keeps it for ever.
	later := now.Add(31 * day)
	if _, err := ret.Retain(ctx, p, later); err != nil {
		t.Fatalf("Retain later: %v", err)
	}
	if st, err := s.LoadState(ctx, ""); err != nil || len(st) != len(kept)+2 {
		t.Errorf("check state while org kept keeps it for ever = %v, %v; want every entry", st, err)
	}
	delete(p.Orgs, "kept")
	res2, err := ret.Retain(ctx, p, later)
	if err != nil {
		t.Fatalf("Retain later: %v", err)
	}
	st, err := s.LoadState(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range st {
		keys = append(keys, e.Key)
	}
	if !slices.Equal(keys, kept) {
		t.Errorf("check state a month on = %v, want %v (all but the check's own entry and the conflict record)", keys, kept)
	}
	if got := res2.Deleted[""][store.RetainCheckState]; got != 2 {
		t.Errorf("check state deleted = %d, want 2", got)
	}

	// The status the evidence pack shows: the last run, what each run
	// deleted in the period asked, the oldest data left.
	status, err := ret.RetentionStatus(ctx, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatalf("RetentionStatus: %v", err)
	}
	if !status.LastRun.Equal(later) {
		t.Errorf("LastRun = %v, want %v", status.LastRun, later)
	}
	if !deletedEqual(status.Deleted, wantDeleted) {
		t.Errorf("status Deleted in the first run's hour = %v, want %v", status.Deleted, wantDeleted)
	}
	// The second run, without org kept's exception, took everything of
	// org kept older than the default periods but its open alert.
	if got, ok := status.Oldest["kept"][store.RetainEvents]; ok {
		t.Errorf("org kept's events under the default period: oldest %v, want none", got)
	}
	if got, ok := status.Oldest["wiltshire"][store.RetainEvents]; ok {
		t.Errorf("oldest event of wiltshire = %v, want none left a month on", got)
	}
	if got, ok := status.Oldest["st-martins"][store.RetainViewLogs]; ok {
		t.Errorf("oldest view of st-martins = %v, want none left (60 days passed for both)", got)
	}
	if got := status.Oldest["st-martins"][store.RetainAlerts]; !got.Equal(now.Add(-91 * day)) {
		t.Errorf("oldest alert of st-martins (by last seen) = %v, want %v (the open ones)", got, now.Add(-91*day))
	}
}

// deletedEqual compares counts, a missing count being zero.
func deletedEqual(a, b map[string]map[string]int64) bool {
	for _, x := range []struct{ a, b map[string]map[string]int64 }{{a, b}, {b, a}} {
		for org, m := range x.a {
			for class, n := range m {
				if n != x.b[org][class] {
					return false
				}
			}
		}
	}
	return true
}
