package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
)

// The example check of docs/checks/adding-a-check.md, compiled and run here
// so that the walkthrough cannot drift from the code: keep the two alike.

// CheckRecordDeleted is the example check's stable name.
const CheckRecordDeleted = "record-deleted"

// RecordDeletedKnobs are the check's settings at one level; zero inherits.
type RecordDeletedKnobs struct {
	Exempt   *bool
	Severity alert.Severity // default medium
}

// RecordDeletedPolicy is the check's policy for one org: what
// OrgPolicy.Checks holds under its name.
type RecordDeletedPolicy struct {
	RecordDeletedKnobs
	Roles, Teams map[string]RecordDeletedKnobs
}

// rdPolicy is what the hot path reads for one (role, team).
type rdPolicy struct {
	exempt   bool
	severity alert.Severity
}

type rdResolver = Levels[rdPolicy]

func newRDResolver(p RecordDeletedPolicy) (*rdResolver, error) {
	return NewLevels(p.RecordDeletedKnobs, p.Roles, p.Teams, func(ls []RecordDeletedKnobs) (*rdPolicy, error) {
		pol := &rdPolicy{severity: alert.SeverityMedium}
		for _, k := range ls {
			if k.Exempt != nil {
				pol.exempt = *k.Exempt
			}
			if k.Severity != "" {
				pol.severity = k.Severity
			}
		}
		return pol, nil
	})
}

type recordDeleted struct{ slot int }

func (recordDeleted) Name() string { return CheckRecordDeleted }

func (c recordDeleted) Evaluate(ev *event.Event, v *Env, eps *Episodes) bool {
	if ev.Action != event.ActionDelete || ev.Outcome == event.OutcomeFailure {
		return false
	}
	p := Resolved[rdResolver](v, c.slot).Get(ev.Actor.Role, ev.Actor.Team)
	if !p.exempt {
		eps.Add(v, ev, Finding{Pattern: CheckRecordDeleted, Severity: p.severity, Gap: DefaultEpisodeGap,
			Lead: func() string {
				return Lead(ev, ev.Actor.Role, ev.Actor.Team, ev.Time.In(v.Location()), "who deleted a record")
			}})
	}
	return true
}

var recordDeletedRegistration = Registration{
	Name:  CheckRecordDeleted,
	Build: func(slot int) Check { return recordDeleted{slot: slot} },
	Policy: func(p any) (any, error) {
		pol, err := PolicyOf[RecordDeletedPolicy](CheckRecordDeleted, p)
		if err != nil {
			return nil, err
		}
		return newRDResolver(pol)
	},
}

// TestExampleCheck: a check registered with its own policy type runs with
// the policy an org gives it under its name in OrgPolicy.Checks — no field
// of OrgPolicy or of the engine's per-org runtime names it.
func TestExampleCheck(t *testing.T) {
	p := testPolicy()
	p.Checks = map[string]any{CheckRecordDeleted: RecordDeletedPolicy{
		RecordDeletedKnobs: RecordDeletedKnobs{Severity: alert.SeverityHigh},
		Roles:              map[string]RecordDeletedKnobs{"records-officer": {Exempt: new(true)}},
	}}
	e := newEngine(t, Options{Orgs: map[string]OrgPolicy{testOrg: p}, Lateness: NoLateness,
		Disabled: Checks(), extraRegistrations: []Registration{recordDeletedRegistration}})
	alerts := map[string]alert.Alert{}
	run(t, e, []event.Event{
		mkEvent("e1", "u-7", lt("2026-03-02 10:00:00"), event.ActionView, role("support-worker", "")),
		mkEvent("e2", "u-7", lt("2026-03-02 10:05:00"), event.ActionDelete, role("support-worker", "")),
		mkEvent("e3", "u-9", lt("2026-03-02 10:06:00"), event.ActionDelete, role("records-officer", "")),
		mkEvent("e4", "u-8", lt("2026-03-02 10:07:00"), event.ActionDelete, role("support-worker", ""), failed()),
	}, 10, alerts, nil)
	flush(e, alerts, nil)
	got := sortedAlerts(alerts)
	if len(got) != 1 {
		t.Fatalf("got %d alerts, want 1 (u-7's delete): %s", len(got), jsonOf(t, got))
	}
	a := got[0]
	if a.Check != CheckRecordDeleted || a.Pattern != CheckRecordDeleted || a.ActorID != "u-7" || a.Severity != alert.SeverityHigh ||
		!slices.Equal(a.EventIDs, []string{"e2"}) || !strings.Contains(a.Explanation, "who deleted a record") {
		t.Errorf("alert = %s", jsonOf(t, a))
	}
}

// TestCheckPolicyRefused: a policy under a name no registered check has, or
// of another check's type, is refused when the engine is built, instead of
// leaving a check on its defaults unnoticed.
func TestCheckPolicyRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks map[string]any
		want   string
	}{
		{"unknown check", map[string]any{"out-of-hour": OutOfHoursPolicy{}}, `org st-martins: policy for unknown check "out-of-hour"`},
		{"another check's type", map[string]any{CheckOutOfHours: BulkAccessPolicy{}},
			"org st-martins: out-of-hours policy: check out-of-hours: policy of type rules.BulkAccessPolicy, want *rules.OutOfHoursPolicy"},
		{"pointer to another check's type", map[string]any{CheckBulkAccess: &OutOfHoursPolicy{}},
			"org st-martins: bulk-access policy: check bulk-access: policy of type *rules.OutOfHoursPolicy, want *rules.BulkAccessPolicy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Orgs: map[string]OrgPolicy{testOrg: {DPIA: testDPIA, Checks: tc.checks}}})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("New: %v, want %s", err, tc.want)
			}
		})
	}
	for _, p := range []any{nil, OutOfHoursPolicy{}, &OutOfHoursPolicy{}, (*OutOfHoursPolicy)(nil)} {
		if _, err := New(Options{Orgs: map[string]OrgPolicy{testOrg: {DPIA: testDPIA, Checks: map[string]any{CheckOutOfHours: p}}}}); err != nil {
			t.Errorf("New with out-of-hours policy %#v: %v", p, err)
		}
	}
}
