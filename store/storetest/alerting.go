package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// RunAlerting runs the contract of store.AlertingStore (message refs,
// triage, silences, audit) against stores open returns, which must
// implement it.
func RunAlerting(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"MessageRefNeverGoesBack", testMessageRefNeverGoesBack},
		{"TriageOutboxAndAudit", testTriageOutboxAndAudit},
		{"TriagesSurviveReopen", testTriagesSurviveReopen},
		{"TriageActionsRoundTrip", testTriageActionsRoundTrip},
		{"AlertNotesAudited", testAlertNotesAudited},
		{"SilencesListUnexpired", testSilencesListUnexpired},
		{"SilenceReplacedAndAudited", testSilenceReplaced},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open)
		})
	}
}

func openAlerting(t *testing.T, open Opener) store.AlertingStore {
	t.Helper()
	s := openClose(t, open)
	as, ok := s.(store.AlertingStore)
	if !ok {
		t.Fatalf("%T does not implement store.AlertingStore", s)
	}
	return as
}

func testMessageRefNeverGoesBack(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openAlerting(t, open)
	if _, err := s.MessageRef(ctx, "slack", "a-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing ref: %v, want ErrNotFound", err)
	}
	for _, v := range []int64{2, 1} {
		if err := s.PutMessageRef(ctx, store.MessageRef{Receiver: "slack", AlertID: "a-1", Channel: "C1", TS: "1.2", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := s.MessageRef(ctx, "slack", "a-1")
	if err != nil || ref.Version != 2 || ref.TS != "1.2" || ref.Channel != "C1" || ref.Receiver != "slack" || ref.AlertID != "a-1" {
		t.Fatalf("ref = %+v, %v; want version 2 kept", ref, err)
	}
	// The same version may be rewritten (a digest reposted elsewhere).
	if err := s.PutMessageRef(ctx, store.MessageRef{Receiver: "slack", AlertID: "a-1", Channel: "C2", TS: "3.4", Version: 2, Digest: true}); err != nil {
		t.Fatal(err)
	}
	if ref, err = s.MessageRef(ctx, "slack", "a-1"); err != nil || ref.Channel != "C2" || ref.TS != "3.4" || !ref.Digest {
		t.Fatalf("ref after rewrite = %+v, %v", ref, err)
	}
	// Refs are per receiver.
	if _, err := s.MessageRef(ctx, "slack-ig", "a-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other receiver's ref: %v, want ErrNotFound", err)
	}
}

var triageAt = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func testTriageOutboxAndAudit(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openAlerting(t, open)
	t1, err := s.AddTriage(ctx, triage.Decision{AlertID: "a-1", Outcome: triage.Acknowledged, Actor: "ig-jo", At: triageAt, Source: "api"})
	if err != nil || t1.Seq == 0 {
		t.Fatalf("add: %+v %v", t1, err)
	}
	t2, err := s.AddTriage(ctx, triage.Decision{AlertID: "a-1", Outcome: triage.Explained, Actor: "ig-jo", At: triageAt.Add(time.Minute), Note: "covering a shift", Source: "slack"})
	if err != nil || t2.Seq <= t1.Seq {
		t.Fatalf("second add: %+v %v; want a seq above %d", t2, err, t1.Seq)
	}
	if _, err := s.AddTriage(ctx, triage.Decision{AlertID: "a-2", Outcome: triage.FalsePositive, Actor: "ig-sam", At: triageAt, Source: "api"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Triages(ctx, "a-1")
	if err != nil || len(got) != 2 {
		t.Fatalf("triages = %+v, %v; want 2", got, err)
	}
	if got[0] != t1 || got[1] != t2 || got[1].Note != "covering a shift" || !got[0].At.Equal(triageAt) {
		t.Fatalf("triages = %+v, want %+v, %+v", got, t1, t2)
	}
	if none, err := s.Triages(ctx, "a-9"); err != nil || len(none) != 0 {
		t.Fatalf("triages of an untriaged alert = %+v, %v", none, err)
	}

	p, err := s.PendingTriages(ctx, "slack", 10)
	if err != nil || len(p) != 3 || p[0].Seq != t1.Seq || p[1].Seq != t2.Seq {
		t.Fatalf("pending = %+v, %v; want all 3, oldest first", p, err)
	}
	if p, _ := s.PendingTriages(ctx, "slack", 1); len(p) != 1 || p[0].Seq != t1.Seq {
		t.Fatalf("pending limit 1 = %+v", p)
	}
	for range 2 { // marking twice is harmless
		if err := s.MarkTriageDelivered(ctx, "slack", t1.Seq); err != nil {
			t.Fatal(err)
		}
	}
	p, _ = s.PendingTriages(ctx, "slack", 10)
	if len(p) != 2 || p[0].Outcome != triage.Explained {
		t.Fatalf("pending after mark = %+v", p)
	}
	if p, _ := s.PendingTriages(ctx, "webhook", 0); len(p) != 3 {
		t.Fatalf("another receiver's pending = %d, want 3 (limit 0: all)", len(p))
	}

	// Each triage wrote its audit entry with it.
	log, err := s.AuditLog(ctx, 0)
	if err != nil || len(log) != 3 {
		t.Fatalf("audit = %+v, %v; want 3 entries", log, err)
	}
	e := log[1] // newest first: a-2, then t2
	if e.Action != "triage.explained" || e.Actor != "ig-jo" || e.Object != "a-1" || !e.At.Equal(t2.At) || e.Seq <= log[2].Seq {
		t.Fatalf("audit entry = %+v", e)
	}
	var detail struct {
		Seq    int64  `json:"seq"`
		Source string `json:"source"`
		Note   string `json:"note"`
	}
	if err := json.Unmarshal([]byte(e.Detail), &detail); err != nil || detail.Seq != t2.Seq || detail.Source != "slack" || detail.Note != "covering a shift" {
		t.Fatalf("audit detail %q: %+v %v", e.Detail, detail, err)
	}
	if log, _ := s.AuditLog(ctx, 1); len(log) != 1 || log[0].Object != "a-2" {
		t.Fatalf("audit limit 1 = %+v", log)
	}
}

func testTriagesSurviveReopen(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openAlerting(t, open)
	t1, err := s.AddTriage(ctx, triage.Decision{AlertID: "a-1", Outcome: triage.ConfirmedMisuse, Actor: "ig-jo", At: triageAt, Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.(store.Store).Close(); err != nil {
		t.Fatal(err)
	}
	s = openAlerting(t, open)
	if p, err := s.PendingTriages(ctx, "slack", 10); err != nil || len(p) != 1 || p[0] != t1 {
		t.Fatalf("pending after reopen = %+v, %v; want %+v", p, err, t1)
	}
	// Seqs keep growing across restarts.
	t2, err := s.AddTriage(ctx, triage.Decision{AlertID: "a-1", Outcome: triage.Explained, Actor: "ig-jo", At: triageAt, Source: "api"})
	if err != nil || t2.Seq <= t1.Seq {
		t.Fatalf("triage after reopen: %+v %v; want seq above %d", t2, err, t1.Seq)
	}
}

// testTriageActionsRoundTrip: a decision's action (owner, due day,
// status) is stored and read back exactly; a decision that says nothing
// about the action (Slack, the API) keeps the previous one; a zero action
// clears it; decisions stored without one read as none.
func testTriageActionsRoundTrip(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openAlerting(t, open)
	add := func(d triage.Decision) triage.Decision {
		t.Helper()
		d.AlertID, d.Actor, d.Source = "a-1", "ig-jo", "web"
		got, err := s.AddTriage(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	act := &triage.Action{Owner: "Registered manager, Webster Court", Due: "2026-03-16", Status: triage.ActionOpen}
	t0 := add(triage.Decision{Outcome: triage.Acknowledged, At: triageAt})
	t1 := add(triage.Decision{Outcome: triage.ConfirmedMisuse, At: triageAt.Add(time.Minute), Action: act})
	t2 := add(triage.Decision{Outcome: triage.ConfirmedMisuse, At: triageAt.Add(2 * time.Minute)}) // as Slack records one
	done := &triage.Action{Owner: act.Owner, Due: act.Due, Status: triage.ActionDone}
	t3 := add(triage.Decision{Outcome: triage.ConfirmedMisuse, At: triageAt.Add(3 * time.Minute), Action: done})
	t4 := add(triage.Decision{Outcome: triage.Explained, At: triageAt.Add(4 * time.Minute), Action: &triage.Action{}})
	if t0.Action != nil || !reflect.DeepEqual(t2.Action, act) || t4.Action != nil {
		t.Fatalf("returned actions %v, %v, %v; want none, the previous one kept, none", t0.Action, t2.Action, t4.Action)
	}
	got, err := s.Triages(ctx, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []*triage.Action{nil, act, act, done, nil}
	if len(got) != len(want) {
		t.Fatalf("triages = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		if !reflect.DeepEqual(got[i].Action, w) {
			t.Errorf("triage %d action = %+v, want %+v", i, got[i].Action, w)
		}
	}
	if got[1].Seq != t1.Seq || got[3].Seq != t3.Seq {
		t.Fatalf("triages out of order: %+v", got)
	}
	// The action is in the audit entry of the decision that recorded it.
	log, err := s.AuditLog(ctx, 0)
	if err != nil || len(log) != 5 {
		t.Fatalf("audit = %+v, %v", log, err)
	}
	var detail struct {
		Action *triage.Action `json:"action"`
	}
	if err := json.Unmarshal([]byte(log[1].Detail), &detail); err != nil || !reflect.DeepEqual(detail.Action, done) {
		t.Fatalf("audit detail %q: %+v %v; want the done action", log[1].Detail, detail.Action, err)
	}
	detail.Action = nil
	if err := json.Unmarshal([]byte(log[0].Detail), &detail); err != nil || detail.Action != nil {
		t.Fatalf("audit detail of the cleared action %q: %+v %v", log[0].Detail, detail.Action, err)
	}
}

// testAlertNotesAudited: managers' notes are kept per alert, oldest first,
// each with its audit entry, and are no triage.
func testAlertNotesAudited(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openAlerting(t, open)
	ns, ok := s.(store.AlertNotes)
	if !ok {
		t.Fatalf("%T does not implement store.AlertNotes", s)
	}
	n1, err := ns.AddAlertNote(ctx, triage.Note{AlertID: "a-1", Actor: "mgr-ann", At: triageAt, Text: "Expected: covering a colleague's caseload."})
	if err != nil || n1.Seq == 0 {
		t.Fatalf("add note: %+v %v", n1, err)
	}
	n2, err := ns.AddAlertNote(ctx, triage.Note{AlertID: "a-1", Actor: "mgr-bo", At: triageAt.Add(time.Hour), Text: "Rota confirms the shift."})
	if err != nil || n2.Seq <= n1.Seq {
		t.Fatalf("second note: %+v %v; want a seq above %d", n2, err, n1.Seq)
	}
	if _, err := ns.AddAlertNote(ctx, triage.Note{AlertID: "a-2", Actor: "mgr-ann", At: triageAt, Text: "other"}); err != nil {
		t.Fatal(err)
	}
	got, err := ns.AlertNotes(ctx, "a-1")
	if err != nil || len(got) != 2 || got[0] != n1 || got[1] != n2 || !got[0].At.Equal(triageAt) {
		t.Fatalf("notes = %+v, %v; want %+v, %+v", got, err, n1, n2)
	}
	if none, err := ns.AlertNotes(ctx, "a-9"); err != nil || len(none) != 0 {
		t.Fatalf("notes of another alert = %+v, %v", none, err)
	}
	if tr, err := s.Triages(ctx, "a-1"); err != nil || len(tr) != 0 {
		t.Fatalf("a note made a triage: %+v, %v", tr, err)
	}
	log, err := s.AuditLog(ctx, 0)
	if err != nil || len(log) != 3 {
		t.Fatalf("audit = %+v, %v; want 3 entries", log, err)
	}
	e := log[1]
	var detail struct {
		Seq  int64  `json:"seq"`
		Note string `json:"note"`
	}
	if e.Action != "alert.note" || e.Actor != "mgr-bo" || e.Object != "a-1" || !e.At.Equal(n2.At) ||
		json.Unmarshal([]byte(e.Detail), &detail) != nil || detail.Seq != n2.Seq || detail.Note != n2.Text {
		t.Fatalf("audit entry = %+v", e)
	}
}

func testSilencesListUnexpired(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openAlerting(t, open)
	now := triageAt
	for i, end := range []time.Time{now.Add(-time.Hour), now.Add(time.Hour)} {
		sl := silence.Silence{ID: string(rune('a' + i)), Matchers: []string{`check="out-of-hours"`}, StartsAt: now.Add(-2 * time.Hour), EndsAt: end, CreatedBy: "ig-jo", Comment: "rota change", UpdatedAt: now}
		if err := s.PutSilence(ctx, sl, audit.Entry{At: now, Actor: "ig-jo", Action: "silence.create", Object: sl.ID}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListSilences(ctx, now)
	if err != nil || len(got) != 1 || got[0].ID != "b" || got[0].Matchers[0] != `check="out-of-hours"` || got[0].Comment != "rota change" || !got[0].EndsAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("silences = %+v, %v", got, err)
	}
	if all, _ := s.ListSilences(ctx, time.Time{}); len(all) != 2 || all[0].ID != "a" {
		t.Fatalf("all = %+v", all)
	}
	if _, err := s.Silence(ctx, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing silence: %v", err)
	}
	if log, _ := s.AuditLog(ctx, 1); len(log) != 1 || log[0].Object != "b" || log[0].Action != "silence.create" {
		t.Fatalf("audit = %+v", log)
	}
}

func testSilenceReplaced(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openAlerting(t, open)
	now := triageAt
	sl := silence.Silence{ID: "s1", Matchers: []string{`actor="u-17"`}, StartsAt: now, EndsAt: now.Add(24 * time.Hour), CreatedBy: "ig-jo", Comment: "agency shift", UpdatedAt: now}
	if err := s.PutSilence(ctx, sl, audit.Entry{At: now, Actor: "ig-jo", Action: "silence.create", Object: "s1", Detail: `{"comment":"agency shift"}`}); err != nil {
		t.Fatal(err)
	}
	// Expired: EndsAt moved to now; the silence is replaced, never deleted.
	exp := sl
	exp.EndsAt, exp.UpdatedAt = now.Add(time.Hour), now.Add(time.Hour)
	if err := s.PutSilence(ctx, exp, audit.Entry{At: exp.UpdatedAt, Actor: "ig-sam", Action: "silence.expire", Object: "s1"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Silence(ctx, "s1")
	if err != nil || !got.EndsAt.Equal(exp.EndsAt) || !got.UpdatedAt.Equal(exp.UpdatedAt) || got.CreatedBy != "ig-jo" {
		t.Fatalf("silence = %+v, %v; want the expired version", got, err)
	}
	if l, _ := s.ListSilences(ctx, now.Add(2*time.Hour)); len(l) != 0 {
		t.Fatalf("an expired silence is listed: %+v", l)
	}
	if l, _ := s.ListSilences(ctx, now); len(l) != 1 {
		t.Fatalf("silences ending after now = %d, want 1 (one silence, two versions)", len(l))
	}
	log, err := s.AuditLog(ctx, 0)
	if err != nil || len(log) != 2 || log[0].Action != "silence.expire" || log[0].Actor != "ig-sam" || log[1].Detail != `{"comment":"agency shift"}` {
		t.Fatalf("audit = %+v, %v", log, err)
	}
}

// RunReferenceSnapshots runs the contract of store.ReferenceSnapshots
// against stores open returns, which must implement it.
func RunReferenceSnapshots(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("SnapshotsByLoadTime", func(t *testing.T) { testReferenceSnapshots(t, open) })
	t.Run("SnapshotsByID", func(t *testing.T) { testReferenceByID(t, open) })
	t.Run("SnapshotsHoldNoDisplayRefs", func(t *testing.T) { testReferenceNoDisplayRefs(t, open) })
}

// testReferenceNoDisplayRefs: subjects.csv's display references (personal
// data only the web UI shows) are never stored with a snapshot, and do not
// change what the data is named by: the checks never judge by them.
func testReferenceNoDisplayRefs(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	st := openClose(t, open)
	s, ok := st.(store.ReferenceSnapshots)
	if !ok {
		t.Fatalf("%T does not implement store.ReferenceSnapshots", st)
	}
	plain := referenceData()
	withRefs := referenceData()
	withRefs.Subjects = []reference.Subject{{Org: "st-martins", SubjectID: "c-0042", DisplayRef: "WC-R14 Jo Bloggs"}}
	idPlain, _ := store.ReferenceID(plain)
	if id, _ := store.ReferenceID(withRefs); id != idPlain {
		t.Fatalf("display references change the data's ID: %s, %s", id, idPlain)
	}
	at := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	if err := s.SaveReference(ctx, at, withRefs); err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func() (store.ReferenceSnapshot, error){
		"ReferenceAt":   func() (store.ReferenceSnapshot, error) { return s.ReferenceAt(ctx, at) },
		"ReferenceByID": func() (store.ReferenceSnapshot, error) { return s.ReferenceByID(ctx, idPlain) },
	} {
		snap, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(snap.Data.Subjects) != 0 || snap.ID != idPlain {
			t.Errorf("%s: snapshot %s holds display references: %+v", name, snap.ID, snap.Data.Subjects)
		}
		sameReference(t, snap.Data, plain)
	}
}

// referenceData is a small but complete set: every kind, open and closed
// validity, a zone other than UTC, a team relationship.
func referenceData() *reference.Data {
	bst := time.FixedZone("", 3600)
	return &reference.Data{
		Staff: []reference.Staff{
			{ActorID: "u-17", Org: "st-martins", Role: "support-worker", Team: "webster-court", ActiveFrom: time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC)},
			{ActorID: "u-3", Org: "st-martins", Role: "manager", Team: "webster-court", External: true,
				ActiveFrom: time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC), ActiveTo: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		},
		Relationships: []reference.Relationship{
			{ActorID: "u-17", SubjectID: "c-0042", Relation: "keyworker", ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
			{Team: "webster-court", SubjectID: "c-0043", Relation: "placement", ValidFrom: time.Date(2025, 6, 1, 0, 0, 0, 0, bst), ValidTo: time.Date(2026, 6, 1, 0, 0, 0, 0, bst)},
		},
		Shifts:   []reference.Shift{{ActorID: "u-17", Start: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 2, 15, 30, 0, 0, time.UTC)}},
		Absences: []reference.Absence{{ActorID: "u-3", Start: time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC), Kind: "leave"}},
		Devices:  []reference.Device{{DeviceID: "tab-1", Org: "st-martins", Kind: reference.DeviceSharedTablet, AssignedTo: "webster-court", Location: "office"}},
		SharingAgreements: []reference.SharingAgreement{{PartnerOrg: "nhs-wilts", Org: "st-martins", RecordTypes: []string{"care-plan"}, Actions: []string{"*"},
			ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
}

func sameReference(t *testing.T, got, want *reference.Data) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("reference data:\n got %s\nwant %s", g, w)
	}
}

func testReferenceSnapshots(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	st := openClose(t, open)
	s, ok := st.(store.ReferenceSnapshots)
	if !ok {
		t.Fatalf("%T does not implement store.ReferenceSnapshots", st)
	}
	t1 := time.Date(2026, 3, 1, 6, 0, 0, 123456789, time.UTC)
	if _, err := s.ReferenceAt(ctx, t1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before any load: %v, want ErrNotFound", err)
	}
	v1 := referenceData()
	if err := s.SaveReference(ctx, t1, v1); err != nil {
		t.Fatal(err)
	}
	// The rota changes; then it is changed back.
	v2 := referenceData()
	v2.Shifts = append(v2.Shifts, reference.Shift{ActorID: "u-3", Start: time.Date(2026, 3, 3, 7, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC)})
	t2, t3 := t1.Add(time.Hour), t1.Add(2*time.Hour)
	for _, l := range []struct {
		at time.Time
		d  *reference.Data
	}{{t2, v2}, {t2.Add(time.Minute), v2}, {t3, v1}} { // the second is a reload without change
		if err := s.SaveReference(ctx, l.at, l.d); err != nil {
			t.Fatal(err)
		}
	}
	id1, _ := store.ReferenceID(v1)
	id2, _ := store.ReferenceID(v2)
	for _, c := range []struct {
		at     time.Time
		loaded time.Time
		id     string
		want   *reference.Data
	}{
		{t1, t1, id1, v1},
		{t2.Add(-time.Nanosecond), t1, id1, v1},
		{t2.Add(30 * time.Minute), t2, id2, v2}, // not t2+1m: that reload changed nothing
		{t3.Add(24 * time.Hour), t3, id1, v1},
	} {
		snap, err := s.ReferenceAt(ctx, c.at)
		if err != nil {
			t.Fatalf("ReferenceAt(%s): %v", c.at, err)
		}
		if snap.ID != c.id || !snap.LoadedAt.Equal(c.loaded) {
			t.Fatalf("ReferenceAt(%s) = %s loaded %s, want %s loaded %s", c.at, snap.ID, snap.LoadedAt, c.id, c.loaded)
		}
		sameReference(t, snap.Data, c.want)
		if id, _ := store.ReferenceID(snap.Data); id != c.id {
			t.Fatalf("data read back has ID %s, want %s", id, c.id)
		}
	}
	// Empty reference data is a snapshot too (everything was removed).
	empty := &reference.Data{}
	if err := s.SaveReference(ctx, t3.Add(time.Hour), empty); err != nil {
		t.Fatal(err)
	}
	snap, err := s.ReferenceAt(ctx, t3.Add(2*time.Hour))
	idEmpty, _ := store.ReferenceID(empty)
	if err != nil || snap.ID != idEmpty || len(snap.Data.Staff)+len(snap.Data.Shifts) != 0 {
		t.Fatalf("empty snapshot: %+v, %v", snap, err)
	}
}

// testReferenceByID: a snapshot is found by its content's ID (what an
// alert's ReferenceID names), whenever it was loaded, with its first load
// time; an ID never saved is not found.
func testReferenceByID(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	st := openClose(t, open)
	s, ok := st.(store.ReferenceSnapshots)
	if !ok {
		t.Fatalf("%T does not implement store.ReferenceSnapshots", st)
	}
	v1 := referenceData()
	v2 := referenceData()
	v2.Absences = append(v2.Absences, reference.Absence{ActorID: "u-17", Start: time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC), Kind: "sickness"})
	id1, _ := store.ReferenceID(v1)
	id2, _ := store.ReferenceID(v2)
	if _, err := s.ReferenceByID(ctx, id1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before any load: %v, want ErrNotFound", err)
	}
	t1 := time.Date(2026, 3, 1, 6, 0, 0, 123456789, time.UTC)
	t2, t3 := t1.Add(time.Hour), t1.Add(2*time.Hour)
	for _, l := range []struct {
		at time.Time
		d  *reference.Data
	}{{t1, v1}, {t2, v2}, {t3, v1}} { // v1 put in force twice
		if err := s.SaveReference(ctx, l.at, l.d); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		id     string
		loaded time.Time
		want   *reference.Data
	}{
		{"loaded twice: the first load", id1, t1, v1},
		{"loaded once", id2, t2, v2},
		{"never saved", "ffffffffffffffffffffffffffffffff", time.Time{}, nil},
		{"empty id", "", time.Time{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			snap, err := s.ReferenceByID(ctx, c.id)
			if c.want == nil {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("ReferenceByID(%q) = %+v, %v; want ErrNotFound", c.id, snap, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReferenceByID(%s): %v", c.id, err)
			}
			if snap.ID != c.id || !snap.LoadedAt.Equal(c.loaded) {
				t.Fatalf("ReferenceByID(%s) = %s loaded %s, want loaded %s", c.id, snap.ID, snap.LoadedAt, c.loaded)
			}
			sameReference(t, snap.Data, c.want)
		})
	}
}
