package rules

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
)

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// lt parses a wall-clock time in London; at parses RFC 3339.
func lt(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, london)
	if err != nil {
		panic(err)
	}
	return t
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const (
	testOrg  = "st-martins"
	testDPIA = "st-martins-webster-court"
)

func testRisks() map[string][]RiskRef {
	return map[string][]RiskRef{CheckOutOfHours: {{
		ID:         "R2",
		Title:      "Passwords are guessed or shared inappropriately meaning unauthorized people could access data.",
		Mitigation: "Routine audits look for evidence of workers accessing records inappropriately.",
	}}}
}

func testPolicy() OrgPolicy {
	return OrgPolicy{DPIA: testDPIA, OutOfHoursRoles: []string{"edt-worker"}, Risks: testRisks()}
}

type evOpt func(*event.Event)

func role(r, team string) evOpt { return func(e *event.Event) { e.Actor.Role, e.Actor.Team = r, team } }
func subject(id string, tags ...string) evOpt {
	return func(e *event.Event) { e.Subject = event.Subject{ID: id, Sensitivity: tags} }
}
func record(typ string) evOpt { return func(e *event.Event) { e.Record.Type = typ } }
func failed() evOpt           { return func(e *event.Event) { e.Outcome = event.OutcomeFailure } }
func inOrg(org string) evOpt  { return func(e *event.Event) { e.Org = org } }
func mkEvent(id, actor string, t time.Time, a event.Action, opts ...evOpt) event.Event {
	e := event.Event{ID: id, Time: t, Org: testOrg, System: "logmycare", Action: a, Actor: event.Actor{ID: actor}, Outcome: event.OutcomeSuccess}
	if a.IsRecordAction() {
		e.Subject = event.Subject{ID: "c-0042"}
		e.Record = event.Record{Type: "care-plan", ID: "cp-981"}
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func staff(id, r, team string) reference.Staff {
	return reference.Staff{ActorID: id, Org: testOrg, Role: r, Team: team}
}

func shift(id string, start, end time.Time) reference.Shift {
	return reference.Shift{ActorID: id, Start: start, End: end}
}

// newTestEngine builds an Engine with the default lateness bound: what it
// finds shows after the frontier passes, or after Flush.
func newTestEngine(t testing.TB, p OrgPolicy, r Roster) *Engine {
	t.Helper()
	return newEngine(t, Options{Orgs: map[string]OrgPolicy{testOrg: p}, Roster: r})
}

// newPromptEngine judges every event on arrival (NoLateness), for tests of
// what each batch returns.
func newPromptEngine(t testing.TB, p OrgPolicy, r Roster) *Engine {
	t.Helper()
	return newEngine(t, Options{Orgs: map[string]OrgPolicy{testOrg: p}, Roster: r, Lateness: NoLateness})
}

func newEngine(t testing.TB, o Options) *Engine {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// flush applies e.Flush() to alerts and state as a replay's end would.
func flush(e *Engine, alerts map[string]alert.Alert, state map[string][]byte) {
	apply(e.Flush(), alerts, state)
}

func apply(fx store.Effects, alerts map[string]alert.Alert, state map[string][]byte) {
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
func run(t testing.TB, e *Engine, events []event.Event, n int, alerts map[string]alert.Alert, state map[string][]byte) {
	t.Helper()
	for len(events) > 0 {
		k := min(n, len(events))
		fx, err := e.Process(events[:k])
		if err != nil {
			t.Fatal(err)
		}
		events = events[k:]
		apply(fx, alerts, state)
	}
}

func sortedAlerts(m map[string]alert.Alert) []alert.Alert {
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

func entries(m map[string][]byte) []store.StateEntry {
	var out []store.StateEntry
	for _, k := range sortedKeys(m) {
		out = append(out, store.StateEntry{Key: k, Value: m[k]})
	}
	return out
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// processOne runs one event through a fresh engine, then flushes it, and
// returns the alerts.
func processOne(t *testing.T, p OrgPolicy, r Roster, ev event.Event) []alert.Alert {
	t.Helper()
	e := newTestEngine(t, p, r)
	fx, err := e.Process([]event.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	return append(fx.Alerts, e.Flush().Alerts...)
}

// checkPolicy returns the policy of type P that p holds for the named check,
// adding a zero one (the check's defaults) when it holds none, so that a
// test can change one knob in place.
func checkPolicy[P any](p *OrgPolicy, name string) *P {
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

func oohOf(p *OrgPolicy) *OutOfHoursPolicy {
	return checkPolicy[OutOfHoursPolicy](p, CheckOutOfHours)
}

func nbnOf(p *OrgPolicy) *NoBusinessNeedPolicy {
	return checkPolicy[NoBusinessNeedPolicy](p, CheckNoBusinessNeed)
}

func ulsOf(p *OrgPolicy) *UnlockedSessionPolicy {
	return checkPolicy[UnlockedSessionPolicy](p, CheckUnlockedSession)
}

func scOf(p *OrgPolicy) *SharedCredentialPolicy {
	return checkPolicy[SharedCredentialPolicy](p, CheckSharedCredential)
}

func bulkOf(p *OrgPolicy) *BulkAccessPolicy {
	return checkPolicy[BulkAccessPolicy](p, CheckBulkAccess)
}

// registrySlot is the slot of a registered check: where a check built by
// hand, outside an Engine, finds its policy in the engine's org runtimes.
func registrySlot(name string) int {
	i := slices.IndexFunc(registry, func(r Registration) bool { return r.Name == name })
	if i < 0 {
		panic("no registered check " + name)
	}
	return i
}
