package outofhours

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

func TestOutOfHoursJudgement(t *testing.T) {
	view := event.ActionView
	cases := []struct {
		name     string
		policy   func(*rules.OrgPolicy)
		ev       event.Event
		pattern  string // "" when in hours
		severity alert.Severity
	}{
		// Rostered shifts, 30 minutes' grace.
		{name: "inside shift", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 18:00:00"), view)},
		{name: "after shift beyond grace", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 23:14:00"), view), pattern: PatternOutsideShift},
		{name: "grace after end exactly 30m", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 22:30:00"), view)},
		{name: "grace after end 30m1s", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 22:30:01"), view), pattern: PatternOutsideShift},
		{name: "grace before start exactly 30m", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 13:30:00"), view)},
		{name: "before start beyond grace", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 13:29:59"), view), pattern: PatternOutsideShift},
		{name: "shift worker in default hours but off shift", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-09 10:00:00"), view), pattern: PatternOutsideShift},
		{name: "night shift before midnight", ev: rulestest.Event("e1", "u-21", rulestest.LT("2026-03-06 23:30:00"), view)},
		{name: "night shift after midnight", ev: rulestest.Event("e1", "u-21", rulestest.LT("2026-03-07 03:00:00"), view)},
		{name: "night shift ended", ev: rulestest.Event("e1", "u-21", rulestest.LT("2026-03-07 08:45:00"), view), pattern: PatternOutsideShift},

		// DST, shifts: the roster holds instants, the explanation wall-clock times.
		{name: "spring-forward night shift at 02:30 BST", ev: rulestest.Event("e1", "u-21", rulestest.At("2026-03-29T01:30:00Z"), view)},
		{name: "spring-forward night shift in grace 08:20 BST", ev: rulestest.Event("e1", "u-21", rulestest.At("2026-03-29T07:20:00Z"), view)},
		{name: "spring-forward night shift ended 08:31 BST", ev: rulestest.Event("e1", "u-21", rulestest.At("2026-03-29T07:31:00Z"), view), pattern: PatternOutsideShift},
		{name: "fall-back night shift first 01:30", ev: rulestest.Event("e1", "u-21", rulestest.At("2026-10-25T00:30:00Z"), view)},
		{name: "fall-back night shift second 01:30", ev: rulestest.Event("e1", "u-21", rulestest.At("2026-10-25T01:30:00Z"), view)},
		{name: "fall-back night shift ended 08:31 GMT", ev: rulestest.Event("e1", "u-21", rulestest.At("2026-10-25T08:31:00Z"), view), pattern: PatternOutsideShift},

		// DST, default working hours: 08:00 local on each side of the change.
		{name: "spring-forward Friday 07:30 GMT", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-03-27T07:30:00Z"), view), pattern: PatternOutsideWorkingHours},
		{name: "spring-forward Friday 08:00 GMT", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-03-27T08:00:00Z"), view)},
		{name: "spring-forward Monday 07:59 BST", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-03-30T06:59:00Z"), view), pattern: PatternOutsideWorkingHours},
		{name: "spring-forward Monday 08:30 BST", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-03-30T07:30:00Z"), view)},
		{name: "fall-back Friday 08:30 BST", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-10-23T07:30:00Z"), view)},
		{name: "fall-back Friday 07:59 BST", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-10-23T06:59:00Z"), view), pattern: PatternOutsideWorkingHours},
		{name: "fall-back Monday 07:30 GMT", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-10-26T07:30:00Z"), view), pattern: PatternOutsideWorkingHours},
		{name: "fall-back Monday 08:00 GMT", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-10-26T08:00:00Z"), view)},
		{name: "fall-back first 01:30", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-10-25T00:30:00Z"), view), pattern: PatternOutsideWorkingHours},
		{name: "fall-back second 01:30", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-10-25T01:30:00Z"), view), pattern: PatternOutsideWorkingHours},

		// Default working hours: edges, weekends, actors unknown to the roster.
		{name: "default hours start exactly", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 08:00:00"), view)},
		{name: "default hours just before start", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 07:59:59"), view), pattern: PatternOutsideWorkingHours},
		{name: "default hours end exactly", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 18:00:00"), view)},
		{name: "default hours just after end", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 18:00:01"), view), pattern: PatternOutsideWorkingHours},
		{name: "Saturday", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 10:00:00"), view), pattern: PatternOutsideWorkingHours},
		{name: "Sunday", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-08 12:00:00"), view), pattern: PatternOutsideWorkingHours},
		{name: "unknown actor weekday", ev: rulestest.Event("e1", "u-99", rulestest.LT("2026-03-10 10:00:00"), view, rulestest.Role("agency-worker", ""))},
		{name: "unknown actor evening", ev: rulestest.Event("e1", "u-99", rulestest.LT("2026-03-10 20:00:00"), view, rulestest.Role("agency-worker", "")), pattern: PatternOutsideWorkingHours},

		// Bank holidays of England and Wales.
		{name: "Good Friday", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-04-03 10:00:00"), view), pattern: PatternBankHoliday},
		{name: "Easter Monday", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-04-06 10:00:00"), view), pattern: PatternBankHoliday},
		{name: "Christmas substitute Monday", ev: rulestest.Event("e1", "u-40", rulestest.LT("2027-12-27 10:00:00"), view), pattern: PatternBankHoliday},
		{name: "Boxing Day substitute Tuesday", ev: rulestest.Event("e1", "u-40", rulestest.LT("2027-12-28 10:00:00"), view), pattern: PatternBankHoliday},
		{name: "day after the substitutes", ev: rulestest.Event("e1", "u-40", rulestest.LT("2027-12-29 10:00:00"), view)},
		{name: "bank holiday evening", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-08-31 19:40:00"), view), pattern: PatternOutsideWorkingHours},
		{name: "bank holidays off", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-04-03 10:00:00"), view),
			policy: func(p *rules.OrgPolicy) { oohOf(p).BankHolidays = new(false) }},
		{name: "shift worker on a bank holiday", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-04-03 10:00:00"), view)},

		// Out-of-hours roles: shifts only.
		{name: "ooh role without shifts in office hours", ev: rulestest.Event("e1", "u-50", rulestest.LT("2026-03-10 10:00:00"), view), pattern: PatternOutsideShift},
		{name: "ooh role on shift at night", ev: rulestest.Event("e1", "u-51", rulestest.LT("2026-03-11 03:00:00"), view)},
		{name: "ooh role off shift in office hours", ev: rulestest.Event("e1", "u-51", rulestest.LT("2026-03-10 10:00:00"), view), pattern: PatternOutsideShift},
		{name: "ooh role from the event when not in roster", ev: rulestest.Event("e1", "u-52", rulestest.LT("2026-03-10 10:00:00"), view, rulestest.Role("edt-worker", "edt")), pattern: PatternOutsideShift},
		{name: "roster role wins over the event", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 10:00:00"), view, rulestest.Role("edt-worker", "edt"))},

		// Overrides: team over role over org over defaults, knob by knob.
		{name: "role override no shift grace", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 22:10:00"), view), pattern: PatternOutsideShift,
			policy: func(p *rules.OrgPolicy) {
				oohOf(p).Roles = map[string]Knobs{"support-worker": {ShiftGrace: new(time.Duration(0))}}
			}},
		{name: "team override beats role", ev: rulestest.Event("e1", "u-17", rulestest.LT("2026-03-07 22:40:00"), view),
			policy: func(p *rules.OrgPolicy) {
				oohOf(p).Roles = map[string]Knobs{"support-worker": {ShiftGrace: new(time.Duration(0))}}
				oohOf(p).Teams = map[string]Knobs{"webster-court": {ShiftGrace: new(45 * time.Minute)}}
			}},
		{name: "team override Saturday working", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 10:00:00"), view),
			policy: func(p *rules.OrgPolicy) {
				oohOf(p).Teams = map[string]Knobs{"office": {WorkingDays: []time.Weekday{1, 2, 3, 4, 5, 6}}}
			}},
		{name: "team start beats role start", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 07:30:00"), view), policy: managerStarts},
		{name: "role start without team override", ev: rulestest.Event("e1", "u-41", rulestest.LT("2026-03-10 08:30:00"), view), pattern: PatternOutsideWorkingHours, policy: managerStarts},
		{name: "org hours grace inside", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 18:15:00"), view),
			policy: func(p *rules.OrgPolicy) { oohOf(p).HoursGrace = new(15 * time.Minute) }},
		{name: "org hours grace beyond", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-10 18:15:01"), view), pattern: PatternOutsideWorkingHours,
			policy: func(p *rules.OrgPolicy) { oohOf(p).HoursGrace = new(15 * time.Minute) }},
		{name: "overnight hours at 03:00", ev: rulestest.Event("e1", "u-42", rulestest.LT("2026-03-10 03:00:00"), view), policy: nightHours},
		{name: "overnight hours at noon", ev: rulestest.Event("e1", "u-42", rulestest.LT("2026-03-10 12:00:00"), view), pattern: PatternOutsideWorkingHours, policy: nightHours},
		{name: "other timezone", ev: rulestest.Event("e1", "u-40", rulestest.At("2026-03-10T15:30:00Z"), view), pattern: PatternOutsideWorkingHours,
			policy: func(p *rules.OrgPolicy) { p.Timezone = time.FixedZone("UTC+3", 3*3600) }},

		// Which events are access.
		{name: "logout is not access", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionLogout)},
		{name: "lock is not access", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionLock)},
		{name: "timeout is not access", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionTimeout)},
		{name: "failed login is not access", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionLoginFailed)},
		{name: "failed view is not access", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), view, rulestest.Failed())},
		{name: "login", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionLogin), pattern: PatternOutsideWorkingHours},
		{name: "unlock", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionUnlock), pattern: PatternOutsideWorkingHours},
		{name: "search", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionSearch), pattern: PatternOutsideWorkingHours},
		{name: "export of an assessment", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), event.ActionExport, rulestest.Record("assessment")), pattern: PatternOutsideWorkingHours},
		{name: "free-text record type left out", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), view, rulestest.Record("Notes on Jane Doe")), pattern: PatternOutsideWorkingHours},

		// Severity.
		{name: "sensitive subject raises severity", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), view, rulestest.Subject("c-7", "safeguarding")),
			pattern: PatternOutsideWorkingHours, severity: alert.SeverityHigh},
		{name: "base high and sensitive", ev: rulestest.Event("e1", "u-40", rulestest.LT("2026-03-07 23:00:00"), view, rulestest.Subject("c-7", "safeguarding")),
			pattern: PatternOutsideWorkingHours, severity: alert.SeverityCritical,
			policy: func(p *rules.OrgPolicy) { oohOf(p).Severity = alert.SeverityHigh }},
	}
	roster := rulestest.NewFakeRoster(rulestest.JudgeStaff, rulestest.JudgeShifts)
	var golden strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rulestest.Policy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			// The other checks run too (an unknown actor is also shared-
			// credential's unknown-account): only this check's alerts count.
			got := slices.DeleteFunc(rulestest.ProcessOne(t, p, roster, tc.ev), func(a alert.Alert) bool { return a.Check != Name })
			if tc.pattern == "" {
				if len(got) != 0 {
					t.Fatalf("want in hours, got %s: %s", got[0].Pattern, got[0].Explanation)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one %s alert, got %d", tc.pattern, len(got))
			}
			a := got[0]
			want := tc.severity
			if want == "" {
				want = alert.SeverityMedium
			}
			if a.Pattern != tc.pattern || a.Severity != want || a.Check != Name {
				t.Errorf("got %s/%s/%s, want %s/%s/%s", a.Check, a.Pattern, a.Severity, Name, tc.pattern, want)
			}
			if strings.Contains(a.Explanation, tc.ev.Subject.ID) && tc.ev.Subject.ID != "" {
				t.Errorf("explanation names the subject: %s", a.Explanation)
			}
			fmt.Fprintf(&golden, "%s\n\t%s %s\n\t%s\n", tc.name, a.Pattern, a.Severity, a.Explanation)
		})
	}
	rulestest.CheckGolden(t, "out-of-hours.golden", golden.String())
}

func managerStarts(p *rules.OrgPolicy) {
	oohOf(p).Roles = map[string]Knobs{"manager": {Start: &Clock{9, 0}}}
	oohOf(p).Teams = map[string]Knobs{"office": {Start: &Clock{7, 0}}}
}

func nightHours(p *rules.OrgPolicy) {
	oohOf(p).Teams = map[string]Knobs{"nights": {
		Start: &Clock{20, 0}, End: &Clock{8, 0}, WorkingDays: []time.Weekday{0, 1, 2, 3, 4, 5, 6},
	}}
}

func TestPolicyValidation(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
	}{
		{"negative grace", Policy{Knobs: Knobs{ShiftGrace: new(-time.Minute)}}},
		{"huge grace", Policy{Knobs: Knobs{HoursGrace: new(13 * time.Hour)}}},
		{"bad severity", Policy{Knobs: Knobs{Severity: "urgent"}}},
		{"bad clock", Policy{Knobs: Knobs{End: &Clock{24, 0}}}},
		{"empty hours", Policy{Knobs: Knobs{Start: &Clock{8, 0}, End: &Clock{8, 0}}}},
		{"bad day", Policy{Knobs: Knobs{WorkingDays: []time.Weekday{7}}}},
		{"bad role override", Policy{Roles: map[string]Knobs{"x": {EpisodeGap: -time.Hour}}}},
		{"bad team override", Policy{Teams: map[string]Knobs{"x": {Severity: "loud"}}}},
		{"empty team", Policy{Teams: map[string]Knobs{"": {}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.New(rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: {Checks: map[string]any{Name: tc.p}}}})
			if err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if _, err := rules.New(rules.Options{}); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
}

func TestParseClock(t *testing.T) {
	for in, want := range map[string]Clock{"08:00": {8, 0}, "23:59": {23, 59}, "00:05": {0, 5}} {
		got, err := ParseClock(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseClock(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "8", "24:00", "12:60", "noon"} {
		if _, err := ParseClock(in); err == nil {
			t.Errorf("ParseClock(%q): want an error", in)
		}
	}
}

func TestDaysText(t *testing.T) {
	cases := map[string][]time.Weekday{
		"Mon–Fri":       {1, 2, 3, 4, 5},
		"every day":     {0, 1, 2, 3, 4, 5, 6},
		"Mon, Wed":      {1, 3},
		"Sat, Sun":      {6, 0},
		"Fri–Sun":       {5, 6, 0},
		"Mon, Tue, Sun": {0, 1, 2},
		"no days":       {},
	}
	for want, days := range cases {
		var set [7]bool
		for _, d := range days {
			set[d] = true
		}
		if got := daysText(set); got != want {
			t.Errorf("daysText(%v) = %q, want %q", days, got, want)
		}
	}
}

func TestSpan(t *testing.T) {
	cases := map[time.Duration]string{
		20 * time.Second: "under a minute", 45 * time.Minute: "45m", 74 * time.Minute: "1h14m",
		2 * time.Hour: "2h", 36 * time.Hour: "1d12h", 48 * time.Hour: "2d",
	}
	for d, want := range cases {
		if got := rules.Span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
}

// oohOf is the policy p holds for this check, added with its defaults when
// it holds none, for a test to change in place.
func oohOf(p *rules.OrgPolicy) *Policy { return rulestest.CheckPolicy[Policy](p, Name) }
