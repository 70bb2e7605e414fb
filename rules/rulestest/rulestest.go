// Package rulestest helps test the rules engine and the checks: events and
// rosters built in a line, engines run batch by batch as the store would
// apply them, golden files, and the shared fixtures (a roster with shifts,
// relationships and sharing agreements, devices; streams of events) that
// the engine's tests and the checks' tests run against. Only tests import it.
package rulestest

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

var London = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// lt parses a wall-clock time in London; at parses RFC 3339.
func LT(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, London)
	if err != nil {
		panic(err)
	}
	return t
}

func At(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const (
	Org  = "st-martins"
	DPIA = "st-martins-webster-court"
)

func Risks() map[string][]rules.RiskRef {
	return map[string][]rules.RiskRef{"out-of-hours": {{
		ID:         "R2",
		Title:      "Passwords are guessed or shared inappropriately meaning unauthorized people could access data.",
		Mitigation: "Routine audits look for evidence of workers accessing records inappropriately.",
	}}}
}

func Policy() rules.OrgPolicy {
	return rules.OrgPolicy{DPIA: DPIA, OutOfHoursRoles: []string{"edt-worker"}, Risks: Risks()}
}

type EvOpt func(*event.Event)

func Role(r, team string) EvOpt { return func(e *event.Event) { e.Actor.Role, e.Actor.Team = r, team } }
func Subject(id string, tags ...string) EvOpt {
	return func(e *event.Event) { e.Subject = event.Subject{ID: id, Sensitivity: tags} }
}
func Record(typ string) EvOpt { return func(e *event.Event) { e.Record.Type = typ } }
func Failed() EvOpt           { return func(e *event.Event) { e.Outcome = event.OutcomeFailure } }
func InOrg(org string) EvOpt  { return func(e *event.Event) { e.Org = org } }
func Event(id, actor string, t time.Time, a event.Action, opts ...EvOpt) event.Event {
	e := event.Event{ID: id, Time: t, Org: Org, System: "logmycare", Action: a, Actor: event.Actor{ID: actor}, Outcome: event.OutcomeSuccess}
	if a.IsRecordAction() {
		e.Subject = event.Subject{ID: "c-0042"}
		e.Record = event.Record{Type: "care-plan", ID: "cp-981"}
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func Staff(id, r, team string) reference.Staff {
	return reference.Staff{ActorID: id, Org: Org, Role: r, Team: team}
}

func Shift(id string, start, end time.Time) reference.Shift {
	return reference.Shift{ActorID: id, Start: start, End: end}
}

// newTestEngine builds an Engine with the default lateness bound: what it
// finds shows after the frontier passes, or after Flush.
func NewTestEngine(t testing.TB, p rules.OrgPolicy, r rules.Roster) *rules.Engine {
	t.Helper()
	return NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{Org: p}, Roster: r})
}

// newPromptEngine judges every event on arrival (NoLateness), for tests of
// what each batch returns.
func NewPromptEngine(t testing.TB, p rules.OrgPolicy, r rules.Roster) *rules.Engine {
	t.Helper()
	return NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{Org: p}, Roster: r, Lateness: rules.NoLateness})
}

func NewEngine(t testing.TB, o rules.Options) *rules.Engine {
	t.Helper()
	e, err := rules.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// flush applies e.Flush() to alerts and state as a replay's end would.
func Flush(e *rules.Engine, alerts map[string]alert.Alert, state map[string][]byte) {
	Apply(e.Flush(), alerts, state)
}

func Apply(fx store.Effects, alerts map[string]alert.Alert, state map[string][]byte) {
	for _, a := range fx.Alerts {
		if alerts != nil {
			alerts[a.ID] = a
		}
	}
	for _, s := range fx.State {
		if state == nil {
			continue
		}
		if s.Value == nil {
			delete(state, s.Key)
		} else {
			state[s.Key] = s.Value
		}
	}
}

// run processes events in batches of size n and returns the final version
// of every alert, ordered by FirstSeen then ID (as the store reads them),
// and the saved state as it would stand in the store.
func Run(t testing.TB, e *rules.Engine, events []event.Event, n int, alerts map[string]alert.Alert, state map[string][]byte) {
	t.Helper()
	for len(events) > 0 {
		k := min(n, len(events))
		fx, err := e.Process(events[:k])
		if err != nil {
			t.Fatal(err)
		}
		events = events[k:]
		Apply(fx, alerts, state)
	}
}

func SortedAlerts(m map[string]alert.Alert) []alert.Alert {
	out := make([]alert.Alert, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].FirstSeen.Equal(out[j].FirstSeen) {
			return out[i].FirstSeen.Before(out[j].FirstSeen)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func Entries(m map[string][]byte) []store.StateEntry {
	var out []store.StateEntry
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, store.StateEntry{Key: k, Value: m[k]})
	}
	return out
}

func JSONOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// processOne runs one event through a fresh engine, then flushes it, and
// returns the alerts.
func ProcessOne(t *testing.T, p rules.OrgPolicy, r rules.Roster, ev event.Event) []alert.Alert {
	t.Helper()
	e := NewTestEngine(t, p, r)
	fx, err := e.Process([]event.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	return append(fx.Alerts, e.Flush().Alerts...)
}

// checkPolicy returns the policy of type P that p holds for the named check,
// adding a zero one (the check's defaults) when it holds none, so that a
// test can change one knob in place.
func CheckPolicy[P any](p *rules.OrgPolicy, name string) *P {
	if p.Checks == nil {
		p.Checks = map[string]any{}
	}
	if pp, ok := p.Checks[name].(*P); ok {
		return pp
	}
	pp := new(P)
	p.Checks[name] = pp
	return pp
}

// fakeRoster is an in-memory Roster for tests: staff by actor id and each
// actor's shifts sorted by start, searched by binary search as a real index
// would.
// Relationships and sharing agreements are answered by a real
// reference.Index over the rows given to withRelations.
type FakeRoster struct {
	staff  map[string]reference.Staff
	shifts map[string][]reference.Shift
	*reference.Index
}

// withRelations adds relationship rows and sharing agreements.
func (r *FakeRoster) WithRelations(rels []reference.Relationship, agreements []reference.SharingAgreement) *FakeRoster {
	r.Index = reference.NewIndex(&reference.Data{Relationships: rels, SharingAgreements: agreements})
	return r
}

func NewFakeRoster(Staff []reference.Staff, shifts []reference.Shift) *FakeRoster {
	r := &FakeRoster{staff: map[string]reference.Staff{}, shifts: map[string][]reference.Shift{}, Index: reference.NewIndex(&reference.Data{})}
	for _, s := range Staff {
		r.staff[s.ActorID] = s
	}
	for _, s := range shifts {
		r.shifts[s.ActorID] = append(r.shifts[s.ActorID], s)
	}
	for _, l := range r.shifts {
		sort.Slice(l, func(i, j int) bool { return l[i].Start.Before(l[j].Start) })
	}
	return r
}

func (r *FakeRoster) Staff(id string) (reference.Staff, bool) { s, ok := r.staff[id]; return s, ok }

func (r *FakeRoster) HasShifts(id string) bool { return len(r.shifts[id]) > 0 }

func (r *FakeRoster) ShiftAt(id string, t time.Time, grace time.Duration) (reference.Shift, bool) {
	l := r.shifts[id]
	// First shift starting after t+grace; every candidate lies before it.
	i := sort.Search(len(l), func(i int) bool { return l[i].Start.Add(-grace).After(t) })
	for j := i - 1; j >= 0 && j >= i-4; j-- { // shifts overlap little
		if !t.After(l[j].End.Add(grace)) {
			return l[j], true
		}
	}
	return reference.Shift{}, false
}

func (r *FakeRoster) NearestShift(id string, t time.Time) (reference.Shift, bool) {
	l := r.shifts[id]
	if len(l) == 0 {
		return reference.Shift{}, false
	}
	i := sort.Search(len(l), func(i int) bool { return l[i].Start.After(t) })
	best, bestD := reference.Shift{}, time.Duration(-1)
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(l) {
			continue
		}
		d := distance(l[j], t)
		if bestD < 0 || d < bestD {
			best, bestD = l[j], d
		}
	}
	return best, true
}

func distance(s reference.Shift, t time.Time) time.Duration {
	switch {
	case t.Before(s.Start):
		return s.Start.Sub(t)
	case t.After(s.End):
		return t.Sub(s.End)
	}
	return 0
}

// sat is a Saturday evening: everything below is out of hours for u-40
// (no shifts) and u-41.
func Sat(clock string) time.Time { return LT("2026-03-07 " + clock + ":00") }

func WantKeys(t *testing.T, got []store.StateEntry, want map[string]bool) {
	t.Helper()
	have := map[string]bool{}
	for _, s := range got {
		have[s.Key] = s.Value != nil
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("state keys (true: set, false: deleted) %v, want %v", have, want)
	}
}

// stream is a realistic, seeded mix of events over several days: shift
// workers and office staff, in and out of hours, some late, some sensitive.
func Stream(seed uint64, n int) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	actors := []string{"u-17", "u-21", "u-40", "u-41", "u-42", "u-50", "u-51", "u-99"}
	actions := []event.Action{event.ActionLogin, event.ActionView, event.ActionView, event.ActionView, event.ActionSearch,
		event.ActionUpdate, event.ActionLogout, event.ActionLock, event.ActionUnlock, event.ActionLoginFailed, event.ActionExport}
	t := LT("2026-03-06 06:00:00")
	out := make([]event.Event, 0, n)
	for i := range n {
		t = t.Add(time.Duration(rng.IntN(12)) * time.Minute)
		at := t
		if rng.IntN(10) == 0 { // late by up to 2h
			at = t.Add(-time.Duration(rng.IntN(120)) * time.Minute)
		}
		var opts []EvOpt
		if rng.IntN(8) == 0 {
			opts = append(opts, Subject(fmt.Sprintf("c-%d", rng.IntN(40)), "safeguarding"))
		} else {
			opts = append(opts, Subject(fmt.Sprintf("c-%d", rng.IntN(40))))
		}
		a := actions[rng.IntN(len(actions))]
		ev := Event(fmt.Sprintf("e%05d", i), actors[rng.IntN(len(actors))], at, a, opts...)
		if !a.IsRecordAction() {
			ev.Subject = event.Subject{}
		}
		out = append(out, ev)
	}
	return out
}

func DiffAlerts(t *testing.T, want, got map[string]alert.Alert) {
	t.Helper()
	n := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("missing %s: %s", id, JSONOf(t, w))
		} else if JSONOf(t, g) != JSONOf(t, w) {
			t.Errorf("differs %s:\n got %s\nwant %s", id, JSONOf(t, g), JSONOf(t, w))
		}
		if n++; n > 5 {
			return
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("extra %s: %s", id, JSONOf(t, g))
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func B2I(b bool) int {
	if b {
		return 1
	}
	return 0
}

// shuffled returns events 30s apart in event time, in an arrival order
// where none comes more than spread after a later one.
func Shuffled(n int, spread time.Duration, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]event.Event, n)
	arrive := make(map[string]time.Time, n)
	base := LT("2026-03-10 09:00:00")
	for i := range out {
		out[i] = Event(fmt.Sprintf("e%04d", i), "u-40", base.Add(time.Duration(i)*30*time.Second), event.ActionView)
		arrive[out[i].ID] = out[i].Time.Add(time.Duration(rng.Int64N(int64(spread))))
	}
	slices.SortFunc(out, func(a, b event.Event) int { return arrive[a.ID].Compare(arrive[b.ID]) })
	return out
}

func Only(s []store.StateEntry, prefix string) []store.StateEntry {
	var out []store.StateEntry
	for _, e := range s {
		if strings.HasPrefix(e.Key, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func AlertMap(as []alert.Alert) map[string]alert.Alert {
	m := map[string]alert.Alert{}
	for _, a := range as {
		m[a.ID] = a
	}
	return m
}

var Update = flag.Bool("update", false, "rewrite golden files")

func CheckGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *Update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// The devices the unlocked-session cases run on.
var ULSDevices = []reference.Device{
	{DeviceID: "tab-01", Org: Org, Kind: reference.DeviceSharedTablet, AssignedTo: "webster-court"},
	{DeviceID: "tab-02", Org: Org, Kind: reference.DeviceSharedTablet, AssignedTo: "webster-court"},
	{DeviceID: "pc-01", Org: Org, Kind: reference.DeviceDesktop},
	{DeviceID: "lap-17", Org: Org, Kind: reference.DeviceLaptop, AssignedTo: "u-17"},
	{DeviceID: "mob-40", Org: Org, Kind: reference.DeviceMobile, AssignedTo: "u-40"},
}

func ULSRoster() *FakeRoster {
	r := NewFakeRoster(JudgeStaff, JudgeShifts)
	r.Index = reference.NewIndex(&reference.Data{Devices: ULSDevices, Relationships: NBNRelations, SharingAgreements: NBNAgreements})
	return r
}

// withSessions gives a stream's events sessions on devices: each actor
// works on one device at a time and sometimes moves on, so that gaps,
// handovers, locks and logouts of the stream exercise unlocked-session.
func WithSessions(events []event.Event, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 9))
	devs := []string{"tab-01", "tab-02", "pc-01", "x-9"}
	cur := map[string]int{}
	for i := range events {
		ev := &events[i]
		a := ev.Actor.ID
		if _, ok := cur[a]; !ok || rng.IntN(12) == 0 {
			cur[a] = rng.IntN(len(devs) * 3)
		}
		n := cur[a]
		ev.Session = event.Session{ID: fmt.Sprintf("%s-s%d", a, n), Device: devs[n%len(devs)]}
		if rng.IntN(20) == 0 {
			ev.Session.ID = ""
		}
	}
	return events
}

// withBulkSweeps inserts into a stream two sweeps of 40 distinct subjects
// (20s apart, from the time of the event they follow) by u-41, at
// positions 1480 and 2480 of the arrival order: the generic restart test
// cuts inside the first. Record actions are then judged by every check.
func WithBulkSweeps(events []event.Event) []event.Event {
	out := slices.Clone(events)
	for s, at := range []int{2480, 1480} { // the later first, so that 1480 stays put
		if at >= len(out) {
			continue
		}
		base := out[at-1].Time
		var sweep []event.Event
		for i := range 40 {
			sweep = append(sweep, Event(fmt.Sprintf("sweep%d-%02d", s, i), "u-41", base.Add(time.Duration(i)*20*time.Second),
				event.ActionView, Subject(fmt.Sprintf("c-%d", 500+100*s+i))))
		}
		out = slices.Insert(out, at, sweep...)
	}
	return out
}

// The roster the judgement cases run against.
var (
	JudgeStaff = []reference.Staff{
		Staff("u-17", "support-worker", "webster-court"),
		Staff("u-21", "night-carer", "webster-court"),
		Staff("u-40", "manager", "office"),
		Staff("u-41", "manager", "finance"),
		Staff("u-42", "waking-night", "nights"),
		Staff("u-50", "edt-worker", "edt"),
		Staff("u-51", "edt-worker", "edt"),
	}
	JudgeShifts = []reference.Shift{
		Shift("u-17", LT("2026-03-07 14:00:00"), LT("2026-03-07 22:00:00")),
		Shift("u-17", LT("2026-04-03 09:00:00"), LT("2026-04-03 17:00:00")), // Good Friday
		Shift("u-21", LT("2026-03-06 22:00:00"), LT("2026-03-07 08:00:00")),
		// Across spring-forward: 10 wall-clock hours, 9 real ones.
		Shift("u-21", LT("2026-03-28 22:00:00"), LT("2026-03-29 08:00:00")),
		// Across fall-back: 10 wall-clock hours, 11 real ones.
		Shift("u-21", At("2026-10-24T21:00:00Z"), At("2026-10-25T08:00:00Z")),
		Shift("u-51", LT("2026-03-10 17:00:00"), LT("2026-03-11 09:00:00")),
	}
)

// The relationships and agreements the no-business-need cases, and the
// streams of the engine tests, run against.
var (
	NBNRelations = func() []reference.Relationship {
		rels := []reference.Relationship{
			{Team: "webster-court", SubjectID: "c-1", Relation: "allocation", ValidFrom: LT("2026-01-01 00:00:00")},
			{ActorID: "u-30", SubjectID: "c-2", Relation: "caseload", ValidFrom: LT("2026-03-01 00:00:00"), ValidTo: LT("2026-03-10 00:00:00")},
			{Team: "team-a", SubjectID: "c-3", Relation: "referral", ValidFrom: LT("2026-04-01 00:00:00")},
			{Team: "team-a", SubjectID: "c-2", Relation: "allocation", ValidFrom: LT("2026-01-01 00:00:00"), ValidTo: LT("2026-02-02 14:30:00")},
			{ActorID: "u-90", SubjectID: "c-4", Relation: "referral"},
			{ActorID: "u-91", SubjectID: "c-4", Relation: "referral"},
			{ActorID: "u-92", SubjectID: "c-1", Relation: "delegated"},
		}
		// For the streams of the engine tests: the first 20 subjects are
		// webster-court's, u-40 had five until the stream began.
		for i := range 20 {
			rels = append(rels, reference.Relationship{Team: "webster-court", SubjectID: fmt.Sprintf("c-%d", i), Relation: "allocation"})
		}
		for i := 20; i < 25; i++ {
			rels = append(rels, reference.Relationship{ActorID: "u-40", SubjectID: fmt.Sprintf("c-%d", i), Relation: "caseload", ValidTo: LT("2026-03-07 00:00:00")})
		}
		return rels
	}()
	NBNAgreements = []reference.SharingAgreement{{
		PartnerOrg: "nhs-trust", Org: Org, RecordTypes: []string{"care-plan", "assessment"}, Actions: []string{"view", "search"},
		ValidFrom: LT("2026-01-01 00:00:00"), ValidTo: LT("2026-06-01 00:00:00"),
	}}
)

// Slot is the slot of a registered check: where a check built by hand,
// outside an Engine, finds its policy in the engine's org runtimes.
func Slot(name string) int {
	i := slices.Index(rules.Checks(), name)
	if i < 0 {
		panic("no registered check " + name)
	}
	return i
}
