// Package storetest is the contract suite every store.Store implementation
// must pass (SQLite now, ClickHouse later): it pins down the semantics the
// store package documents, so that the daemon can swap stores without
// changing behaviour.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// Opener opens the store under test. Called twice within one test it must
// open the same underlying storage again (a restart); the suite closes
// every store it opens.
type Opener func(t *testing.T) store.Store

// Run runs the contract suite. Each subtest gets its own storage: open is
// called through t.Run's *testing.T, so an opener keyed on t.TempDir() or
// t.Name() yields fresh storage per subtest and the same storage when a
// subtest reopens.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"DedupAcrossBatches", testDedupAcrossBatches},
		{"DedupWithinBatch", testDedupWithinBatch},
		{"ConflictingDuplicates", testConflictingDuplicates},
		{"SameIDOtherOrgOrSystem", testSameIDOtherOrgOrSystem},
		{"EvaluateSeesFreshInOrder", testEvaluateSeesFresh},
		{"EvaluateErrorStoresNothing", testEvaluateError},
		{"AlertUpsertVersions", testAlertVersions},
		{"AlertNotFound", testAlertNotFound},
		{"State", testState},
		{"Completeness", testCompleteness},
		{"Outbox", testOutbox},
		{"OutboxResumesAfterReopen", testOutboxReopen},
		{"OutboxFailureAndResend", testOutboxFailure},
		{"ScanEventsOrderAndFilters", testScanEvents},
		{"AlertsFiltersAndOrder", testAlertsFilters},
		{"EventRoundTrip", testRoundTrip},
		{"EventsByKey", testEventsByKey},
		{"ContextCancelled", testContextCancelled},
		{"EmptyBatch", testEmptyBatch},
		{"Positions", testPositions},
		{"HostileValues", testHostileValues},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open)
		})
	}
}

var t0 = time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC)

// ev builds a valid record event; i spaces events a minute apart.
func ev(id string, i int) event.Event {
	return event.Event{
		ID: id, Time: t0.Add(time.Duration(i) * time.Minute), Org: "st-martins", System: "logmycare",
		Action: event.ActionView, Actor: event.Actor{ID: "u-17"}, Subject: event.Subject{ID: "c-0042"},
		Outcome: event.OutcomeSuccess,
	}
}

func ids(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Org + "/" + e.System + "/" + e.ID
	}
	return out
}

func openClose(t *testing.T, open Opener) store.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func apply(t *testing.T, s store.Store, evs []event.Event, eval store.EvaluateFunc) store.Result {
	t.Helper()
	r, err := s.Apply(context.Background(), evs, nil, eval)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return r
}

func count(t *testing.T, s store.Store, f store.EventFilter) int64 {
	t.Helper()
	n, err := s.CountEvents(context.Background(), f)
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	return n
}

func scan(t *testing.T, s store.Store, f store.EventFilter) []event.Event {
	t.Helper()
	var out []event.Event
	if err := s.ScanEvents(context.Background(), f, func(e event.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("ScanEvents: %v", err)
	}
	return out
}

func testDedupAcrossBatches(t *testing.T, open Opener) {
	s := openClose(t, open)
	r := apply(t, s, []event.Event{ev("a", 0), ev("b", 1)}, nil)
	if r.Stored != 2 || r.Duplicates != 0 {
		t.Fatalf("first batch: got %+v, want 2 stored", r)
	}
	// A replay with one new event: only the new one is stored.
	r = apply(t, s, []event.Event{ev("a", 0), ev("b", 1), ev("c", 2)}, nil)
	if r.Stored != 1 || r.Duplicates != 2 {
		t.Fatalf("replay: got %+v, want 1 stored, 2 duplicates", r)
	}
	// A changed body under a known id is not stored: the first stays, the
	// second is a conflict (testConflictingDuplicates has the details).
	changed := ev("a", 9)
	changed.Action = event.ActionDelete
	r = apply(t, s, []event.Event{changed}, nil)
	if r.Stored != 0 || r.Duplicates != 0 || len(r.Conflicts) != 1 {
		t.Fatalf("same id, other content: got %+v, want a conflict", r)
	}
	if n := count(t, s, store.EventFilter{}); n != 3 {
		t.Fatalf("CountEvents = %d, want 3", n)
	}
	got := scan(t, s, store.EventFilter{})
	if got[0].ID != "a" || got[0].Action != event.ActionView {
		t.Fatalf("the first stored version must win, got %+v", got[0])
	}
}

func testDedupWithinBatch(t *testing.T, open Opener) {
	s := openClose(t, open)
	second := ev("a", 5)
	second.Action = event.ActionExport
	var seen []event.Event
	r := apply(t, s, []event.Event{ev("a", 0), ev("b", 1), second, ev("b", 1)}, func(fresh []event.Event) (store.Effects, error) {
		seen = slices.Clone(fresh)
		return store.Effects{}, nil
	})
	if r.Stored != 2 || r.Duplicates != 1 || len(r.Conflicts) != 1 || r.Conflicts[0].Index != 2 {
		t.Fatalf("got %+v, want 2 stored, 1 duplicate, the third event a conflict", r)
	}
	if want := []string{"st-martins/logmycare/a", "st-martins/logmycare/b"}; !slices.Equal(ids(seen), want) {
		t.Fatalf("evaluate saw %v, want %v", ids(seen), want)
	}
	if seen[0].Action != event.ActionView {
		t.Fatalf("evaluate must see the first occurrence, saw action %s", seen[0].Action)
	}
	if n := count(t, s, store.EventFilter{}); n != 2 {
		t.Fatalf("CountEvents = %d, want 2", n)
	}
	if got := scan(t, s, store.EventFilter{}); got[0].Action != event.ActionView {
		t.Fatalf("stored the later occurrence: %+v", got[0])
	}
}

// testConflictingDuplicates: the same key with the same content is a
// duplicate; the same key with other content is a conflict, against a stored
// event and within a batch alike. The first is kept; each conflict is
// reported with what differs, on every Apply that meets it (a replayed batch
// too), and never reaches evaluate.
func testConflictingDuplicates(t *testing.T, open Opener) {
	s := openClose(t, open)
	apply(t, s, []event.Event{ev("a", 0)}, nil)

	// An access hidden behind a reused id: another actor, action and time.
	hidden := ev("a", 5)
	hidden.Actor.ID = "u-99"
	hidden.Action = event.ActionExport
	// The same event as stored, written differently: another offset, the
	// outcome and actor.org left to their defaults.
	rewritten := ev("a", 0)
	rewritten.Time = rewritten.Time.In(time.FixedZone("", 3600))
	rewritten.Outcome = ""
	rewritten.Actor.Org = rewritten.Org
	// A conflict inside the batch: b is new, b' reuses its id.
	bConflict := ev("b", 1)
	bConflict.Record.ID = "cp-2"
	batch := []event.Event{hidden, ev("a", 0), rewritten, ev("b", 1), bConflict, ev("c", 2)}

	type conflict struct {
		Index  int
		Fields []string
		Kept   string // actor of the kept event
	}
	want := []conflict{{0, []string{"time", "action", "actor.id"}, "u-17"}, {4, []string{"record.id"}, "u-17"}}
	check := func(what string, r store.Result, wantStored, wantDup int, seen []event.Event, wantSeen []string) {
		t.Helper()
		var got []conflict
		for _, c := range r.Conflicts {
			got = append(got, conflict{c.Index, c.Fields, c.Kept.Actor.ID})
			if d := event.Diff(&c.Event, &batch[c.Index]); d != nil {
				t.Errorf("%s: conflict %d carries another event than the batch's (%v)", what, c.Index, d)
			}
		}
		if r.Stored != wantStored || r.Duplicates != wantDup || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got stored %d, duplicates %d, conflicts %+v; want %d, %d, %+v", what, r.Stored, r.Duplicates, got, wantStored, wantDup, want)
		}
		if !slices.Equal(ids(seen), wantSeen) {
			t.Fatalf("%s: evaluate saw %v, want %v", what, ids(seen), wantSeen)
		}
	}
	var seen []event.Event
	eval := func(fresh []event.Event) (store.Effects, error) {
		seen = slices.Clone(fresh)
		return store.Effects{}, nil
	}
	r := apply(t, s, batch, eval)
	check("first delivery", r, 2, 2, seen, []string{"st-martins/logmycare/b", "st-martins/logmycare/c"})

	// The batch again, as Kafka redelivers it after a crash: the same
	// conflicts, nothing stored.
	seen = nil
	r = apply(t, s, batch, eval)
	check("redelivery", r, 0, 4, seen, []string{})

	// And after a restart.
	s2 := openClose(t, open)
	seen = nil
	r = apply(t, s2, batch, eval)
	check("after reopen", r, 0, 4, seen, []string{})

	got := scan(t, s2, store.EventFilter{})
	if len(got) != 3 {
		t.Fatalf("stored %d events, want 3", len(got))
	}
	for _, e := range got {
		if want := ev(e.ID, int(e.Time.Sub(t0)/time.Minute)); event.Diff(&e, &want) != nil {
			t.Errorf("stored %s differs from the first occurrence: %v", e.ID, event.Diff(&e, &want))
		}
	}
}

func testSameIDOtherOrgOrSystem(t *testing.T, open Opener) {
	s := openClose(t, open)
	a := ev("x", 0)
	b := ev("x", 0)
	b.Org = "wiltshire-council"
	c := ev("x", 0)
	c.System = "mosaic"
	r := apply(t, s, []event.Event{a, b, c}, nil)
	if r.Stored != 3 {
		t.Fatalf("got %+v, want 3 stored", r)
	}
	r = apply(t, s, []event.Event{c, b, a}, nil)
	if r.Duplicates != 3 {
		t.Fatalf("replay: got %+v, want 3 duplicates", r)
	}
	if n := count(t, s, store.EventFilter{Org: "wiltshire-council"}); n != 1 {
		t.Fatalf("CountEvents(wiltshire) = %d, want 1", n)
	}
}

func testEvaluateSeesFresh(t *testing.T, open Opener) {
	s := openClose(t, open)
	apply(t, s, []event.Event{ev("b", 1), ev("d", 3)}, nil)
	var seen []event.Event
	calls := 0
	eval := func(fresh []event.Event) (store.Effects, error) {
		calls++
		seen = slices.Clone(fresh)
		return store.Effects{}, nil
	}
	// Out of time order on purpose: evaluate gets the batch's order.
	r := apply(t, s, []event.Event{ev("e", 4), ev("b", 1), ev("a", 0), ev("d", 3), ev("c", 2)}, eval)
	if want := []string{"st-martins/logmycare/e", "st-martins/logmycare/a", "st-martins/logmycare/c"}; !slices.Equal(ids(seen), want) {
		t.Fatalf("evaluate saw %v, want %v", ids(seen), want)
	}
	if r.Stored != 3 || r.Duplicates != 2 {
		t.Fatalf("got %+v", r)
	}
	// A pure replay: evaluate sees nothing new.
	seen = nil
	apply(t, s, []event.Event{ev("a", 0), ev("e", 4)}, eval)
	if len(seen) != 0 {
		t.Fatalf("replay: evaluate saw %v, want nothing", ids(seen))
	}
	if calls != 2 {
		t.Fatalf("evaluate called %d times, want 2", calls)
	}
}

func testEvaluateError(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx := context.Background()
	boom := errors.New("boom")
	al := alert.Alert{ID: "a-1", Check: "out-of-hours", Org: "st-martins", FirstSeen: t0, LastSeen: t0}
	_, err := s.Apply(ctx, []event.Event{ev("a", 0), ev("b", 1)}, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: []alert.Alert{al}, State: []store.StateEntry{{Key: "k", Value: []byte("v")}}}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply error = %v, want it to wrap evaluate's", err)
	}
	if n := count(t, s, store.EventFilter{}); n != 0 {
		t.Fatalf("%d events stored after a failed Apply", n)
	}
	if _, err := s.Alert(ctx, "a-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alert stored after a failed Apply (err %v)", err)
	}
	if st, err := s.LoadState(ctx, ""); err != nil || len(st) != 0 {
		t.Fatalf("state after a failed Apply: %v %v", st, err)
	}
	// The retry stores everything, and evaluate sees the events as new again.
	var seen []event.Event
	r := apply(t, s, []event.Event{ev("a", 0), ev("b", 1)}, func(f []event.Event) (store.Effects, error) {
		seen = slices.Clone(f)
		return store.Effects{}, nil
	})
	if r.Stored != 2 || len(seen) != 2 {
		t.Fatalf("retry: %+v, evaluate saw %d", r, len(seen))
	}
}

func withAlerts(as ...alert.Alert) store.EvaluateFunc {
	return func([]event.Event) (store.Effects, error) { return store.Effects{Alerts: as}, nil }
}

func sampleAlert(id string) alert.Alert {
	return alert.Alert{
		ID: id, Check: "out-of-hours", Pattern: "no-shift", Severity: alert.SeverityMedium,
		Org: "st-martins", ActorID: "u-17", SubjectID: "c-0042",
		FirstSeen: t0, LastSeen: t0, EventIDs: []string{"lmc-1"}, EventCount: 1,
		DPIA: "st-martins-webster-court", Risks: []string{"R2"}, Explanation: "Viewed a record outside rostered hours.",
		RiskTitles: []string{"Access with no business need"}, Mitigation: "routine audits",
		ReferenceID: "0123456789abcdef0123456789abcdef",
	}
}

func testAlertVersions(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx := context.Background()
	a := sampleAlert("a-1")
	r := apply(t, s, nil, withAlerts(a))
	if r.Alerts != 1 {
		t.Fatalf("insert: Result.Alerts = %d, want 1", r.Alerts)
	}
	got, err := s.Alert(ctx, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 {
		t.Fatalf("new alert has version %d, want 1", got.Version)
	}
	got.Version = 0
	if !reflect.DeepEqual(got, a) && !alertEqual(got, a) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
	}
	// Unchanged: the version stays.
	r = apply(t, s, nil, withAlerts(a))
	if got, _ := s.Alert(ctx, "a-1"); got.Version != 1 || r.Alerts != 0 {
		t.Fatalf("unchanged upsert: version %d, Result.Alerts %d; want 1, 0", got.Version, r.Alerts)
	}
	// Grown: the version goes up by one per change.
	a.AddEvent("lmc-2", t0.Add(time.Minute))
	apply(t, s, []event.Event{ev("e1", 0)}, withAlerts(a))
	a.AddEvent("lmc-3", t0.Add(2*time.Minute))
	r = apply(t, s, []event.Event{ev("e2", 1)}, withAlerts(a))
	got, err = s.Alert(ctx, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || r.Alerts != 1 {
		t.Fatalf("after two changes: version %d, Result.Alerts %d; want 3, 1", got.Version, r.Alerts)
	}
	if !slices.Equal(got.EventIDs, []string{"lmc-1", "lmc-2", "lmc-3"}) || got.EventCount != 3 || !got.LastSeen.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("whole-row replace lost the growth: %+v", got)
	}
	// Grown under newer reference data: the alert names the newest.
	a.AddEvent("lmc-4", t0.Add(3*time.Minute))
	a.ReferenceID = "fedcba9876543210fedcba9876543210"
	apply(t, s, []event.Event{ev("e3", 2)}, withAlerts(a))
	if got, err = s.Alert(ctx, "a-1"); err != nil || got.Version != 4 || got.ReferenceID != a.ReferenceID {
		t.Fatalf("grown under newer reference data: version %d, reference %q, %v; want 4, %q", got.Version, got.ReferenceID, err, a.ReferenceID)
	}
}

// alertEqual compares alerts field by field, times as instants.
func alertEqual(a, b alert.Alert) bool {
	ta, tb := a.FirstSeen, b.FirstSeen
	la, lb := a.LastSeen, b.LastSeen
	a.FirstSeen, b.FirstSeen, a.LastSeen, b.LastSeen = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ta.Equal(tb) && la.Equal(lb) && reflect.DeepEqual(a, b)
}

func testAlertNotFound(t *testing.T, open Opener) {
	s := openClose(t, open)
	if _, err := s.Alert(context.Background(), "a-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Alert(missing) error = %v, want store.ErrNotFound", err)
	}
}

func withState(st ...store.StateEntry) store.EvaluateFunc {
	return func([]event.Event) (store.Effects, error) { return store.Effects{State: st}, nil }
}

func testState(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx := context.Background()
	apply(t, s, nil, withState(
		store.StateEntry{Key: "session/u-1", Value: []byte("one")},
		store.StateEntry{Key: "session/u-2", Value: []byte("two")},
		store.StateEntry{Key: "sessionx", Value: []byte("other")},
		store.StateEntry{Key: "burst/u-1", Value: []byte{0, 1, 2, 0xff}},
		store.StateEntry{Key: "empty", Value: []byte{}},
	))
	apply(t, s, nil, withState(
		store.StateEntry{Key: "session/u-1", Value: []byte("ONE")}, // overwrite
		store.StateEntry{Key: "session/u-2"},                       // delete
		store.StateEntry{Key: "never-set"},                         // delete of nothing is fine
	))
	load := func(prefix string) []store.StateEntry {
		t.Helper()
		st, err := s.LoadState(ctx, prefix)
		if err != nil {
			t.Fatalf("LoadState(%q): %v", prefix, err)
		}
		return st
	}
	if got, want := load("session/"), []store.StateEntry{{Key: "session/u-1", Value: []byte("ONE")}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadState(session/) = %q, want %q", got, want)
	}
	if got := load("burst/"); len(got) != 1 || !slices.Equal(got[0].Value, []byte{0, 1, 2, 0xff}) {
		t.Fatalf("binary value: %v", got)
	}
	if got := load("empty"); len(got) != 1 || got[0].Value == nil || len(got[0].Value) != 0 {
		t.Fatalf("an empty value must load as empty, not nil (nil means delete): %#v", got)
	}
	all := load("")
	keys := make([]string, len(all))
	for i, e := range all {
		keys[i] = e.Key
	}
	if want := []string{"burst/u-1", "empty", "session/u-1", "sessionx"}; !slices.Equal(keys, want) {
		t.Fatalf("LoadState(\"\") keys = %v, want %v", keys, want)
	}
	if got := load("nothing/"); len(got) != 0 {
		t.Fatalf("LoadState(nothing/) = %v", got)
	}
}

func pendingIDs(t *testing.T, s store.Store, receiver string, limit int) ([]string, []int64) {
	t.Helper()
	p, err := s.Pending(context.Background(), receiver, limit)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	var idList []string
	var versions []int64
	for _, a := range p {
		idList, versions = append(idList, a.ID), append(versions, a.Version)
	}
	return idList, versions
}

func testOutbox(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx := context.Background()
	a, b, c := sampleAlert("a-1"), sampleAlert("a-2"), sampleAlert("a-3")
	apply(t, s, nil, withAlerts(b))
	apply(t, s, nil, withAlerts(a, c))
	if got, _ := pendingIDs(t, s, "slack", 0); !slices.Equal(got, []string{"a-2", "a-1", "a-3"}) {
		t.Fatalf("Pending = %v, want oldest change first [a-2 a-1 a-3]", got)
	}
	if got, _ := pendingIDs(t, s, "slack", 2); !slices.Equal(got, []string{"a-2", "a-1"}) {
		t.Fatalf("Pending(limit 2) = %v", got)
	}
	for _, id := range []string{"a-1", "a-2"} {
		if err := s.MarkDelivered(ctx, "slack", id, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := pendingIDs(t, s, "slack", 0); !slices.Equal(got, []string{"a-3"}) {
		t.Fatalf("after delivery Pending = %v, want [a-3]", got)
	}
	// Another receiver is independent, and sees everything stored before it appeared.
	if got, _ := pendingIDs(t, s, "webhook", 0); len(got) != 3 {
		t.Fatalf("a new receiver must see all alerts, got %v", got)
	}
	// A new version re-appears, now as the newest change.
	a.AddEvent("lmc-9", t0.Add(time.Hour))
	apply(t, s, nil, withAlerts(a))
	gotIDs, versions := pendingIDs(t, s, "slack", 0)
	if !slices.Equal(gotIDs, []string{"a-3", "a-1"}) || versions[1] != 2 {
		t.Fatalf("after a change Pending = %v %v, want [a-3 a-1] with a-1 at version 2", gotIDs, versions)
	}
	// An unchanged upsert does not bring a delivered alert back.
	apply(t, s, nil, withAlerts(b))
	if got, _ := pendingIDs(t, s, "slack", 0); slices.Contains(got, "a-2") {
		t.Fatalf("an unchanged alert came back: %v", got)
	}
	// A late mark for an old version does not undo a newer one.
	if err := s.MarkDelivered(ctx, "slack", "a-1", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, "slack", "a-1", 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := pendingIDs(t, s, "slack", 0); !slices.Equal(got, []string{"a-3"}) {
		t.Fatalf("Pending = %v, want [a-3]", got)
	}
}

// testOutboxFailure: a refused alert leaves the queue with its reason
// recorded; Resend puts it back, once, and is audited; a later delivered
// version supersedes an old failure.
func testOutboxFailure(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openClose(t, open)
	fs, ok := s.(store.DeliveryFailures)
	if !ok {
		t.Fatalf("%T does not implement store.DeliveryFailures", s)
	}
	apply(t, s, nil, withAlerts(sampleAlert("a-1"), sampleAlert("a-2")))
	at := t0.Add(time.Hour)
	if err := s.MarkFailed(ctx, store.DeliveryFailure{Receiver: "slack", AlertID: "a-1", Version: 1, Reason: "msg_too_long", At: at}); err != nil {
		t.Fatal(err)
	}
	if got, _ := pendingIDs(t, s, "slack", 0); !slices.Equal(got, []string{"a-2"}) {
		t.Fatalf("after MarkFailed Pending = %v, want [a-2]", got)
	}
	if got, _ := pendingIDs(t, s, "webhook", 0); len(got) != 2 {
		t.Fatalf("another receiver's queue changed: %v", got)
	}
	want := []store.DeliveryFailure{{Receiver: "slack", AlertID: "a-1", Version: 1, Reason: "msg_too_long", At: at}}
	if got, err := fs.DeliveryFailures(ctx, "a-1"); err != nil || !slices.Equal(got, want) {
		t.Fatalf("DeliveryFailures = %+v, %v; want %+v", got, err, want)
	}
	if got, err := fs.DeliveryFailures(ctx, "a-2"); err != nil || len(got) != 0 {
		t.Fatalf("DeliveryFailures(a-2) = %+v, %v; want none", got, err)
	}
	if err := fs.Resend(ctx, "webhook", "a-1", audit.Entry{At: at, Actor: "ig", Action: "alert.resend", Object: "a-1"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Resend without a failure = %v, want ErrNotFound", err)
	}
	audit := audit.Entry{At: at, Actor: "ig-lead", Action: "alert.resend", Object: "a-1", Detail: `{"receiver":"slack"}`}
	if err := fs.Resend(ctx, "slack", "a-1", audit); err != nil {
		t.Fatal(err)
	}
	if got, _ := pendingIDs(t, s, "slack", 0); !slices.Equal(got, []string{"a-2", "a-1"}) && !slices.Equal(got, []string{"a-1", "a-2"}) {
		t.Fatalf("after Resend Pending = %v, want a-1 back", got)
	}
	if got, err := fs.DeliveryFailures(ctx, "a-1"); err != nil || len(got) != 0 {
		t.Fatalf("after Resend DeliveryFailures = %+v, %v; want none", got, err)
	}
	if err := fs.Resend(ctx, "slack", "a-1", audit); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Resend = %v, want ErrNotFound", err)
	}
	if as, ok := s.(store.Audit); ok {
		log, err := as.AuditLog(ctx, 1)
		if err != nil || len(log) != 1 || log[0].Action != "alert.resend" || log[0].Actor != "ig-lead" || log[0].Object != "a-1" {
			t.Fatalf("audit = %+v, %v", log, err)
		}
	}
	// A failure superseded by a later delivered version is not listed.
	if err := s.MarkFailed(ctx, store.DeliveryFailure{Receiver: "slack", AlertID: "a-2", Version: 1, Reason: "invalid_blocks", At: at}); err != nil {
		t.Fatal(err)
	}
	b := sampleAlert("a-2")
	b.AddEvent("lmc-9", t0.Add(2*time.Hour))
	apply(t, s, nil, withAlerts(b))
	if err := s.MarkDelivered(ctx, "slack", "a-2", 2); err != nil {
		t.Fatal(err)
	}
	if got, err := fs.DeliveryFailures(ctx, "a-2"); err != nil || len(got) != 0 {
		t.Fatalf("superseded failure listed: %+v, %v", got, err)
	}
}

func testOutboxReopen(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	apply(t, s, nil, withAlerts(sampleAlert("a-1"), sampleAlert("a-2")))
	if err := s.MarkDelivered(ctx, "slack", "a-1", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openClose(t, open)
	if got, v := pendingIDs(t, s, "slack", 0); !slices.Equal(got, []string{"a-2"}) || v[0] != 1 {
		t.Fatalf("after reopen Pending = %v %v, want [a-2] at version 1", got, v)
	}
	if a, err := s.Alert(ctx, "a-1"); err != nil || a.Version != 1 {
		t.Fatalf("after reopen Alert(a-1) = %+v, %v", a, err)
	}
}

func testScanEvents(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx := context.Background()
	mk := func(org, system, id, actor string, minute int) event.Event {
		e := ev(id, minute)
		e.Org, e.System, e.Actor.ID = org, system, actor
		return e
	}
	evs := []event.Event{
		mk("o1", "s1", "e5", "u-1", 5),
		mk("o1", "s1", "e1", "u-2", 1),
		mk("o2", "s1", "e3", "u-1", 3),
		mk("o1", "s2", "e3b", "u-1", 3), // same instant as o2/e3: key order breaks the tie
		mk("o1", "s1", "e3a", "u-1", 3),
		mk("o1", "s1", "e0", "u-1", 0),
	}
	apply(t, s, evs, nil)
	cases := []struct {
		name string
		f    store.EventFilter
		want []string
	}{
		{"all", store.EventFilter{}, []string{"o1/s1/e0", "o1/s1/e1", "o1/s1/e3a", "o1/s2/e3b", "o2/s1/e3", "o1/s1/e5"}},
		{"org", store.EventFilter{Org: "o1"}, []string{"o1/s1/e0", "o1/s1/e1", "o1/s1/e3a", "o1/s2/e3b", "o1/s1/e5"}},
		{"actor", store.EventFilter{ActorID: "u-2"}, []string{"o1/s1/e1"}},
		{"org+actor", store.EventFilter{Org: "o1", ActorID: "u-1"}, []string{"o1/s1/e0", "o1/s1/e3a", "o1/s2/e3b", "o1/s1/e5"}},
		{"from inclusive", store.EventFilter{From: t0.Add(3 * time.Minute)}, []string{"o1/s1/e3a", "o1/s2/e3b", "o2/s1/e3", "o1/s1/e5"}},
		{"to exclusive", store.EventFilter{To: t0.Add(3 * time.Minute)}, []string{"o1/s1/e0", "o1/s1/e1"}},
		{"window", store.EventFilter{Org: "o1", From: t0.Add(time.Minute), To: t0.Add(5 * time.Minute)}, []string{"o1/s1/e1", "o1/s1/e3a", "o1/s2/e3b"}},
		{"other zone same instant", store.EventFilter{From: t0.Add(3 * time.Minute).In(time.FixedZone("", -5*3600)), To: t0.Add(4 * time.Minute).In(time.FixedZone("", 3600))}, []string{"o1/s1/e3a", "o1/s2/e3b", "o2/s1/e3"}},
		{"none", store.EventFilter{Org: "o3"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ids(scan(t, s, c.f))
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("ScanEvents = %v, want %v", got, c.want)
			}
			if n := count(t, s, c.f); n != int64(len(c.want)) {
				t.Fatalf("CountEvents = %d, want %d", n, len(c.want))
			}
		})
	}
	// An error from fn stops the scan and comes back.
	stop := errors.New("stop")
	n := 0
	err := s.ScanEvents(ctx, store.EventFilter{}, func(event.Event) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("ScanEvents with a failing fn: err %v after %d calls", err, n)
	}
}

func testAlertsFilters(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx := context.Background()
	mk := func(id, org, check string, first, last int) alert.Alert {
		a := sampleAlert(id)
		a.Org, a.Check = org, check
		a.FirstSeen, a.LastSeen = t0.Add(time.Duration(first)*time.Hour), t0.Add(time.Duration(last)*time.Hour)
		return a
	}
	apply(t, s, nil, withAlerts(
		mk("a-c", "o1", "out-of-hours", 2, 3),
		mk("a-a", "o1", "shared-credential", 1, 1),
		mk("a-b", "o2", "out-of-hours", 2, 5),
		mk("a-d", "o1", "out-of-hours", 0, 9),
	))
	cases := []struct {
		name string
		f    store.AlertFilter
		want []string
	}{
		{"all, by first seen then id", store.AlertFilter{}, []string{"a-d", "a-a", "a-b", "a-c"}},
		{"org", store.AlertFilter{Org: "o1"}, []string{"a-d", "a-a", "a-c"}},
		{"check", store.AlertFilter{Check: "out-of-hours"}, []string{"a-d", "a-b", "a-c"}},
		{"since is on last seen", store.AlertFilter{Since: t0.Add(3 * time.Hour)}, []string{"a-d", "a-b", "a-c"}},
		{"limit", store.AlertFilter{Limit: 2}, []string{"a-d", "a-a"}},
		{"all filters", store.AlertFilter{Org: "o1", Check: "out-of-hours", Since: t0.Add(4 * time.Hour), Limit: 5}, []string{"a-d"}},
		{"none", store.AlertFilter{Org: "o9"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			as, err := s.Alerts(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range as {
				got = append(got, a.ID)
				if a.Version != 1 {
					t.Errorf("%s has version %d, want 1", a.ID, a.Version)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("Alerts = %v, want %v", got, c.want)
			}
		})
	}
}

// testRoundTrip stores events using every field and reads them back. The
// instant and the UTC offset the producer wrote are preserved (the zone's
// name is not: a named zone reads back as a fixed offset); an empty
// sensitivity list reads back as nil.
func testRoundTrip(t *testing.T, open Opener) {
	s := openClose(t, open)
	yes, no := true, false
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		london = time.FixedZone("BST", 3600) // no tzdata: still an offset zone
	}
	full := event.Event{
		ID: "lmc-000123", Time: time.Date(2026, 7, 2, 21, 14, 5, 123456789, london), Org: "st-martins", System: "logmycare",
		Action:  event.ActionShare,
		Actor:   event.Actor{ID: "u-17", Role: "support-worker", Team: "webster-court", Org: "partner-nhs"},
		Subject: event.Subject{ID: "c-0042", Sensitivity: []string{"safeguarding", "health", "ünïcödé \"quoted\" \\ \n"}},
		Record:  event.Record{Type: "care-plan", ID: "cp-981"},
		Session: event.Session{ID: "s-5521", Device: "tab-03", IP: "2001:db8::1", MFA: &yes},
		Outcome: event.OutcomeFailure,
	}
	mfaFalse := ev("mfa-false", 1)
	mfaFalse.Action, mfaFalse.Subject = event.ActionLogin, event.Subject{}
	mfaFalse.Session.MFA = &no
	mfaFalse.Time = mfaFalse.Time.In(time.FixedZone("", -(9*3600 + 30*60))) // -09:30
	mfaNil := ev("mfa-nil", 2)
	mfaNil.Session = event.Session{ID: "s-1"}
	farPast := ev("far-past", 3) // outside int64 nanoseconds
	farPast.Time = time.Date(1066, 10, 14, 9, 0, 0, 7, time.UTC)
	farFuture := ev("far-future", 4)
	farFuture.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 14*3600))
	// A patient acting through a portal: the kind is stored (issue 12).
	portal := ev("portal-patient", 5)
	portal.Actor = event.Actor{ID: "c-0042", Kind: event.ActorPatient}
	in := []event.Event{full, mfaFalse, mfaNil, farPast, farFuture, portal}
	apply(t, s, in, nil)
	byID := map[string]event.Event{}
	for _, e := range scan(t, s, store.EventFilter{}) {
		byID[e.ID] = e
	}
	for _, want := range in {
		got, ok := byID[want.ID]
		if !ok {
			t.Errorf("%s: not read back", want.ID)
			continue
		}
		_, wantOff := want.Time.Zone()
		_, gotOff := got.Time.Zone()
		if !got.Time.Equal(want.Time) || gotOff != wantOff {
			t.Errorf("%s: time %v (offset %d), want %v (offset %d)", want.ID, got.Time, gotOff, want.Time, wantOff)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if len(want.Subject.Sensitivity) == 0 {
			want.Subject.Sensitivity = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip\n got %s\nwant %s", want.ID, dump(got), dump(want))
		}
	}
	if mfa := byID["mfa-false"].Session.MFA; mfa == nil || *mfa {
		t.Errorf("MFA false came back as %v", mfa)
	}
	if mfa := byID["mfa-nil"].Session.MFA; mfa != nil {
		t.Errorf("MFA unset came back as %v", *mfa)
	}
	// Events outside the nanosecond range still order at the ends.
	all := ids(scan(t, s, store.EventFilter{}))
	if all[0] != "st-martins/logmycare/far-past" || all[len(all)-1] != "st-martins/logmycare/far-future" {
		t.Errorf("order with extreme times: %v", all)
	}
}

func dump(e event.Event) string {
	mfa := "nil"
	if e.Session.MFA != nil {
		mfa = fmt.Sprint(*e.Session.MFA)
	}
	return fmt.Sprintf("%+v mfa=%s", e, mfa)
}

func testContextCancelled(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	if _, err := s.Apply(ctx, []event.Event{ev("a", 0)}, nil, func([]event.Event) (store.Effects, error) {
		called = true
		return store.Effects{}, nil
	}); err == nil {
		t.Fatal("Apply with a cancelled context succeeded")
	}
	if called {
		t.Error("evaluate ran under a cancelled context")
	}
	if n := count(t, s, store.EventFilter{}); n != 0 {
		t.Fatalf("%d events stored under a cancelled context", n)
	}
	if err := s.ScanEvents(ctx, store.EventFilter{}, func(event.Event) error { return nil }); err == nil {
		t.Error("ScanEvents with a cancelled context succeeded")
	}
	if _, err := s.CountEvents(ctx, store.EventFilter{}); err == nil {
		t.Error("CountEvents with a cancelled context succeeded")
	}
	if _, err := s.Alerts(ctx, store.AlertFilter{}); err == nil {
		t.Error("Alerts with a cancelled context succeeded")
	}
	if _, err := s.Pending(ctx, "slack", 10); err == nil {
		t.Error("Pending with a cancelled context succeeded")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with a cancelled context succeeded")
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	// A context cancelled while evaluate runs aborts the whole batch.
	ctx, cancel = context.WithCancel(context.Background())
	_, err := s.Apply(ctx, []event.Event{ev("b", 0)}, nil, func([]event.Event) (store.Effects, error) {
		cancel()
		return store.Effects{State: []store.StateEntry{{Key: "k", Value: []byte("v")}}}, nil
	})
	if err == nil {
		t.Fatal("Apply whose context was cancelled mid-way succeeded")
	}
	if n := count(t, s, store.EventFilter{}); n != 0 {
		t.Fatalf("%d events stored after a mid-way cancellation", n)
	}
}

func testEmptyBatch(t *testing.T, open Opener) {
	s := openClose(t, open)
	r := apply(t, s, nil, nil)
	if !reflect.DeepEqual(r, store.Result{}) {
		t.Fatalf("empty Apply = %+v", r)
	}
	// State may be saved with no events at all.
	apply(t, s, []event.Event{}, withState(store.StateEntry{Key: "k", Value: []byte("v")}))
	if st, err := s.LoadState(context.Background(), "k"); err != nil || len(st) != 1 {
		t.Fatalf("LoadState = %v, %v", st, err)
	}
}

// testPositions: a batch's Kafka positions are one per event or none; any
// other count is refused with nothing stored, rather than dropped in
// silence as a context value's used to be.
func testPositions(t *testing.T, open Opener) {
	s := openClose(t, open)
	ctx := context.Background()
	evs := []event.Event{ev("p-1", 1), ev("p-2", 2)}
	pos := []store.Position{{Topic: "access", Partition: 0, Offset: 7}, {Topic: "access", Partition: 0, Offset: 8}}
	if _, err := s.Apply(ctx, evs, pos[:1], nil); err == nil {
		t.Fatal("Apply took 1 position for 2 events")
	}
	if n, err := s.CountEvents(ctx, store.EventFilter{}); err != nil || n != 0 {
		t.Fatalf("after the refused batch: %d events, %v", n, err)
	}
	if r, err := s.Apply(ctx, evs, pos, nil); err != nil || r.Stored != 2 {
		t.Fatalf("Apply with a position per event = %+v, %v", r, err)
	}
}
