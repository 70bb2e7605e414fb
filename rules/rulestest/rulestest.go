// Package rulestest helps test the rules engine and the checks: events and
// rosters built in a line, engines run batch by batch as the store would
// apply them, golden files, and the shared fixtures (a roster with shifts,
// relationships and sharing agreements, devices; streams of events) that
// the engine's tests and the checks' tests run against. Only tests import it.
package rulestest

import (
	"encoding/json"
	"flag"
	"maps"
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

// London is the timezone of the test orgs.
var London = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// LT parses a wall-clock time in London.
func LT(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, London)
	if err != nil {
		panic(err)
	}
	return t
}

// At parses RFC 3339.
func At(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The test org and its DPIA.
const (
	Org  = "st-martins"
	DPIA = "st-martins-webster-court"
)

// Risks are the DPIA risks the test org's out-of-hours alerts point to.
func Risks() map[string][]rules.RiskRef {
	return map[string][]rules.RiskRef{"out-of-hours": {{
		ID:         "R2",
		Title:      "Passwords are guessed or shared inappropriately meaning unauthorized people could access data.",
		Mitigation: "Routine audits look for evidence of workers accessing records inappropriately.",
	}}}
}

// Policy is the test org's policy: its DPIA, an out-of-hours role and Risks.
func Policy() rules.OrgPolicy {
	return rules.OrgPolicy{DPIA: DPIA, OutOfHoursRoles: []string{"edt-worker"}, Risks: Risks()}
}

// EvOpt changes an Event as it is built.
type EvOpt func(*event.Event)

// Role sets the actor's role and team; Subject the subject and its
// sensitivity tags; Record the record type; Failed the outcome; InOrg the
// org.
func Role(r, team string) EvOpt { return func(e *event.Event) { e.Actor.Role, e.Actor.Team = r, team } }
func Subject(id string, tags ...string) EvOpt {
	return func(e *event.Event) { e.Subject = event.Subject{ID: id, Sensitivity: tags} }
}
func Record(typ string) EvOpt { return func(e *event.Event) { e.Record.Type = typ } }
func Failed() EvOpt           { return func(e *event.Event) { e.Outcome = event.OutcomeFailure } }
func InOrg(org string) EvOpt  { return func(e *event.Event) { e.Org = org } }

// Event is an event of the test org, a successful action by actor at t on
// a care plan when the action is a record action, changed by opts.
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

// Staff is a staff record of the test org; Shift a rostered shift.
func Staff(id, r, team string) reference.Staff {
	return reference.Staff{ActorID: id, Org: Org, Role: r, Team: team}
}

func Shift(id string, start, end time.Time) reference.Shift {
	return reference.Shift{ActorID: id, Start: start, End: end}
}

// NewTestEngine builds an Engine with the default lateness bound: what it
// finds shows after the frontier passes, or after Flush.
func NewTestEngine(t testing.TB, p rules.OrgPolicy, r rules.Roster) *rules.Engine {
	t.Helper()
	return NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{Org: p}, Roster: r})
}

// NewPromptEngine judges every event on arrival (NoLateness), for tests of
// what each batch returns.
func NewPromptEngine(t testing.TB, p rules.OrgPolicy, r rules.Roster) *rules.Engine {
	t.Helper()
	return NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{Org: p}, Roster: r, Lateness: rules.NoLateness})
}

// NewEngine is rules.New, failing the test on an error.
func NewEngine(t testing.TB, o rules.Options) *rules.Engine {
	t.Helper()
	e, err := rules.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Flush applies e.Flush() to alerts and state as a replay's end would.
func Flush(e *rules.Engine, alerts map[string]alert.Alert, state map[string][]byte) {
	Apply(e.Flush(), alerts, state)
}

// Apply applies the effects of a batch to alerts and state, as the store
// would.
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

// Run processes events in batches of size n and returns the final version
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

// SortedAlerts orders alerts by FirstSeen then ID, as the store reads them.
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

// Entries are the state entries of a stored state, in key order.
func Entries(m map[string][]byte) []store.StateEntry {
	var out []store.StateEntry
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, store.StateEntry{Key: k, Value: m[k]})
	}
	return out
}

// JSONOf is v as indented JSON, for messages.
func JSONOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ProcessOne runs one event through a fresh engine, then flushes it, and
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

// CheckPolicy returns the policy of type P that p holds for the named check,
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

// WantKeys fails the test unless the keys of got are those of want, each
// set (true) or deleted (false).
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

// DiffAlerts fails the test where got differs from want.
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

// CPUTime is the process's user and system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// B2I is 1 for true.
func B2I(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Only keeps the entries whose key starts with prefix.
func Only(s []store.StateEntry, prefix string) []store.StateEntry {
	var out []store.StateEntry
	for _, e := range s {
		if strings.HasPrefix(e.Key, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// AlertMap indexes alerts by id.
func AlertMap(as []alert.Alert) map[string]alert.Alert {
	m := map[string]alert.Alert{}
	for _, a := range as {
		m[a.ID] = a
	}
	return m
}

// Update (-update) rewrites the golden files CheckGolden compares with.
var Update = flag.Bool("update", false, "rewrite golden files")

// CheckGolden compares got with testdata/name, rewriting it with -update.
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

// Slot is the slot of a registered check: where a check built by hand,
// outside an Engine, finds its policy in the engine's org runtimes.
func Slot(name string) int {
	i := slices.Index(rules.Checks(), name)
	if i < 0 {
		panic("no registered check " + name)
	}
	return i
}
