package nobusinessneed

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

// The relationships and agreements the no-business-need cases run against.
var (
	nbnStaff = append([]reference.Staff{
		rulestest.Staff("u-30", "social-worker", "team-a"),
		{ActorID: "u-90", Org: "nhs-trust", Role: "district-nurse", Team: "community", External: true},
		{ActorID: "u-92", Org: "st-martins", Role: "agency-carer", External: true},
	}, rulestest.JudgeStaff...)
)

func TestNoBusinessNeedJudgement(t *testing.T) {
	view := event.ActionView
	d := func(s string) time.Time { return rulestest.LT("2026-" + s) }
	partner := func(org string) rulestest.EvOpt { return func(e *event.Event) { e.Actor.Org = org } }
	cases := []struct {
		name     string
		policy   func(*rules.OrgPolicy)
		roster   func(*rulestest.FakeRoster) *rulestest.FakeRoster
		ev       event.Event
		patterns []string // sorted; none when the access had a business need
		severity alert.Severity
	}{
		// Relationships: the actor's own, or their team's, in force.
		{name: "team relationship covers a member", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-1"))},
		{name: "own relationship", ev: rulestest.Event("e1", "u-30", d("03-05 10:00:00"), view, rulestest.Subject("c-2"))},
		{name: "exactly at valid_from", ev: rulestest.Event("e1", "u-30", d("03-01 00:00:00"), view, rulestest.Subject("c-2"))},
		{name: "a second before valid_to", ev: rulestest.Event("e1", "u-30", d("03-09 23:59:59"), view, rulestest.Subject("c-2"))},
		{name: "exactly at valid_to is outside", ev: rulestest.Event("e1", "u-30", d("03-10 00:00:00"), view, rulestest.Subject("c-2")), patterns: []string{PatternRelationshipEnded}},
		{name: "ended: nearest is the latest to end", ev: rulestest.Event("e1", "u-30", d("03-12 10:00:00"), view, rulestest.Subject("c-2")), patterns: []string{PatternRelationshipEnded}},
		{name: "ended team relationship", ev: rulestest.Event("e1", "u-30", d("02-20 10:00:00"), view, rulestest.Subject("c-2")), patterns: []string{PatternRelationshipEnded}},
		{name: "not yet started", ev: rulestest.Event("e1", "u-30", d("03-12 10:00:00"), view, rulestest.Subject("c-3")), patterns: []string{PatternNoRelationship}},
		{name: "no relationship at all", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99")), patterns: []string{PatternNoRelationship}},
		{name: "another team's subject", ev: rulestest.Event("e1", "u-40", d("03-05 10:00:00"), view, rulestest.Subject("c-1")), patterns: []string{PatternNoRelationship}},
		{name: "roster team beats the event's", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-1"), rulestest.Role("", "other"))},
		{name: "roster team does not borrow the event's", ev: rulestest.Event("e1", "u-40", d("03-05 10:00:00"), view, rulestest.Subject("c-1"), rulestest.Role("", "webster-court")), patterns: []string{PatternNoRelationship}},
		{name: "event team when not in roster", ev: rulestest.Event("e1", "u-99", d("03-05 10:00:00"), view, rulestest.Subject("c-1"), rulestest.Role("agency-carer", "webster-court"))},

		// Which events are judged.
		{name: "failed view", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99"), rulestest.Failed())},
		{name: "login", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), event.ActionLogin)},
		{name: "search", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), event.ActionSearch, rulestest.Subject("c-99")), patterns: []string{PatternNoRelationship}},
		{name: "share", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), event.ActionShare, rulestest.Subject("c-99")), patterns: []string{PatternNoRelationship}},
		{name: "no relationship data loaded", roster: func(r *rulestest.FakeRoster) *rulestest.FakeRoster { return r.WithRelations(nil, nil) },
			ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99"))},

		// Partner agencies: their agreement bounds them as well.
		{name: "partner within agreement", ev: rulestest.Event("e1", "u-90", d("03-05 10:00:00"), view, rulestest.Subject("c-4"), partner("nhs-trust"))},
		{name: "partner action outside", ev: rulestest.Event("e1", "u-90", d("03-05 10:00:00"), event.ActionExport, rulestest.Subject("c-4"), partner("nhs-trust")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner record type outside", ev: rulestest.Event("e1", "u-90", d("03-05 10:00:00"), view, rulestest.Subject("c-4"), partner("nhs-trust"), rulestest.Record("finance")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner agreement exactly at valid_to", ev: rulestest.Event("e1", "u-90", d("06-01 00:00:00"), view, rulestest.Subject("c-4"), partner("nhs-trust")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner agreement before valid_from", ev: rulestest.Event("e1", "u-90", rulestest.LT("2025-12-31 23:59:59"), view, rulestest.Subject("c-4"), partner("nhs-trust")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner without relationship and outside agreement", ev: rulestest.Event("e1", "u-90", d("03-05 10:00:00"), event.ActionExport, rulestest.Subject("c-9")),
			patterns: []string{PatternNoRelationship, PatternOutsideSharingAgreement}},
		{name: "external flag from the roster, org from staff", ev: rulestest.Event("e1", "u-90", d("03-05 10:00:00"), view, rulestest.Subject("c-4"))},
		{name: "partner by actor.org only", ev: rulestest.Event("e1", "u-91", d("03-05 10:00:00"), view, rulestest.Subject("c-4"), partner("nhs-trust"))},
		{name: "partner org without agreement", ev: rulestest.Event("e1", "u-91", d("03-05 10:00:00"), view, rulestest.Subject("c-4"), partner("police")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "external staff of the org itself has no agreement", ev: rulestest.Event("e1", "u-92", d("03-05 10:00:00"), view, rulestest.Subject("c-1")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "own org in actor.org is not a partner", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-1"), partner(rulestest.Org))},

		// Knobs.
		{name: "exempt role", ev: rulestest.Event("e1", "u-40", d("03-05 10:00:00"), view, rulestest.Subject("c-99")),
			policy: func(p *rules.OrgPolicy) {
				nbnOf(p).Roles = map[string]Knobs{"manager": {Exempt: new(true)}}
			}},
		{name: "team beats role: not exempt", ev: rulestest.Event("e1", "u-40", d("03-05 10:00:00"), view, rulestest.Subject("c-99")), patterns: []string{PatternNoRelationship},
			policy: func(p *rules.OrgPolicy) {
				nbnOf(p).Roles = map[string]Knobs{"manager": {Exempt: new(true)}}
				nbnOf(p).Teams = map[string]Knobs{"office": {Exempt: new(false)}}
			}},
		{name: "after_end allowance inside", ev: rulestest.Event("e1", "u-30", d("03-10 23:59:59"), view, rulestest.Subject("c-2")),
			policy: func(p *rules.OrgPolicy) { nbnOf(p).AfterEnd = new(24 * time.Hour) }},
		{name: "after_end allowance exactly over", ev: rulestest.Event("e1", "u-30", d("03-11 00:00:00"), view, rulestest.Subject("c-2")), patterns: []string{PatternRelationshipEnded},
			policy: func(p *rules.OrgPolicy) { nbnOf(p).AfterEnd = new(24 * time.Hour) }},
		{name: "after_end does not help a relationship yet to start", ev: rulestest.Event("e1", "u-30", d("03-31 23:00:00"), view, rulestest.Subject("c-3")), patterns: []string{PatternNoRelationship},
			policy: func(p *rules.OrgPolicy) { nbnOf(p).AfterEnd = new(24 * time.Hour) }},

		// Severity: configured, raised for sensitive subjects, or the DPIA's score.
		{name: "configured severity", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityLow,
			policy: func(p *rules.OrgPolicy) { nbnOf(p).Severity = alert.SeverityLow }},
		{name: "sensitive subject raises severity", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99", "safeguarding")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityHigh},
		{name: "DPIA score beats configured severity", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityHigh,
			policy: func(p *rules.OrgPolicy) {
				nbnOf(p).Severity = alert.SeverityLow
				p.Risks[Name] = []rules.RiskRef{{ID: "R1", Title: "Inappropriate access to system", Score: "medium"}, {ID: "R4", Title: "Misuse of data by users", Score: "High"}}
			}},
		{name: "DPIA score raised for a sensitive subject", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99", "looked-after")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityCritical,
			policy: func(p *rules.OrgPolicy) { p.Risks[Name] = []rules.RiskRef{{ID: "R1", Score: "high"}} }},
		{name: "unscored risks keep the configured severity", ev: rulestest.Event("e1", "u-17", d("03-05 10:00:00"), view, rulestest.Subject("c-99")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityLow,
			policy: func(p *rules.OrgPolicy) {
				nbnOf(p).Severity = alert.SeverityLow
				p.Risks[Name] = []rules.RiskRef{{ID: "R2"}}
			}},
	}
	var golden strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rulestest.Policy()
			p.Risks = map[string][]rules.RiskRef{}
			if tc.policy != nil {
				tc.policy(&p)
			}
			r := rulestest.NewFakeRoster(nbnStaff, nil).WithRelations(rulestest.NBNRelations, rulestest.NBNAgreements)
			if tc.roster != nil {
				r = tc.roster(r)
			}
			var got []alert.Alert
			for _, a := range rulestest.ProcessOne(t, p, r, tc.ev) {
				if a.Check == Name {
					got = append(got, a)
				}
			}
			var patterns []string
			for _, a := range rulestest.SortedAlerts(rulestest.AlertMap(got)) {
				patterns = append(patterns, a.Pattern)
			}
			if len(patterns) > 1 && patterns[0] > patterns[1] {
				patterns[0], patterns[1] = patterns[1], patterns[0]
			}
			if !reflect.DeepEqual(patterns, tc.patterns) {
				t.Fatalf("patterns %v, want %v", patterns, tc.patterns)
			}
			want := tc.severity
			if want == "" {
				want = alert.SeverityMedium
			}
			for _, a := range got {
				if a.Severity != want {
					t.Errorf("%s: severity %s, want %s", a.Pattern, a.Severity, want)
				}
				if strings.Contains(a.Explanation, tc.ev.Subject.ID) {
					t.Errorf("explanation names the subject: %s", a.Explanation)
				}
				if a.SubjectID != tc.ev.Subject.ID || !reflect.DeepEqual(a.EventIDs, []string{"e1"}) {
					t.Errorf("alert %s/%v, want subject %s and event e1", a.SubjectID, a.EventIDs, tc.ev.Subject.ID)
				}
				fmt.Fprintf(&golden, "%s\n\t%s %s\n\t%s\n", tc.name, a.Pattern, a.Severity, a.Explanation)
			}
		})
	}
	rulestest.CheckGolden(t, "no-business-need.golden", golden.String())
}

// TestNoBusinessNeedEpisodes: one actor browsing several records they have
// no business with is one alert, whatever the subjects; patterns and actors
// stay apart; a pause longer than the gap starts a new alert.
func TestNoBusinessNeedEpisodes(t *testing.T) {
	r := rulestest.NewFakeRoster(nbnStaff, nil).WithRelations(rulestest.NBNRelations, rulestest.NBNAgreements)
	d := func(s string) time.Time { return rulestest.LT("2026-03-09 " + s) }
	events := []event.Event{
		rulestest.Event("e1", "u-17", d("10:00:00"), event.ActionView, rulestest.Subject("c-97")),
		rulestest.Event("e2", "u-17", d("10:03:00"), event.ActionView, rulestest.Subject("c-1")), // has a need
		rulestest.Event("e3", "u-17", d("10:05:00"), event.ActionView, rulestest.Subject("c-98", "safeguarding")),
		rulestest.Event("e4", "u-40", d("10:06:00"), event.ActionView, rulestest.Subject("c-20")), // ended: another actor and pattern
		rulestest.Event("e5", "u-17", d("10:50:00"), event.ActionView, rulestest.Subject("c-99")),
		rulestest.Event("e6", "u-17", d("12:00:00"), event.ActionView, rulestest.Subject("c-96")), // beyond the gap
	}
	for _, batch := range []int{1, 2, 6} {
		alerts := map[string]alert.Alert{}
		p := rulestest.Policy()
		p.Risks = map[string][]rules.RiskRef{}
		e := rulestest.NewTestEngine(t, p, r)
		rulestest.Run(t, e, events, batch, alerts, nil)
		rulestest.Flush(e, alerts, nil)
		var got []string
		for _, a := range rulestest.SortedAlerts(alerts) {
			if a.Check == Name {
				got = append(got, fmt.Sprintf("%s %s %s %v %s", a.ActorID, a.Pattern, a.SubjectID, a.EventIDs, a.Severity))
			}
		}
		want := []string{
			"u-17 no-relationship c-97 [e1 e3 e5] high",
			"u-40 relationship-ended c-20 [e4] medium",
			"u-17 no-relationship c-96 [e6] medium",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("batch %d:\n got %q\nwant %q", batch, got, want)
		}
	}
}

// nbnOf is the policy p holds for this check, added with its defaults when
// it holds none, for a test to change in place.
func nbnOf(p *rules.OrgPolicy) *Policy { return rulestest.CheckPolicy[Policy](p, Name) }

// TestNoBusinessNeedPatternRisks: an alert takes the risks (titles,
// mitigation, and the severity of their scores) of its own pattern where
// the DPIA mapping names the pattern, [] included, and its check's
// otherwise. One partner export with neither a relationship nor an
// agreement raises both patterns at once.
func TestNoBusinessNeedPatternRisks(t *testing.T) {
	ev := rulestest.Event("e1", "u-90", rulestest.LT("2026-03-05 10:00:00"), event.ActionExport, rulestest.Subject("c-9"))
	checkRisks := []rules.RiskRef{{ID: "R2", Title: "Passwords are guessed or shared", Mitigation: "Reminders not to share passwords."}}
	type got struct {
		risks, titles []string
		mitigation    string
		severity      alert.Severity
	}
	cases := []struct {
		name    string
		pattern map[string]map[string][]rules.RiskRef // check → pattern → risks
		want    map[string]got                        // by pattern
	}{
		{name: "no pattern mapping: both take the check's",
			want: map[string]got{
				PatternNoRelationship:          {[]string{"R2"}, []string{"Passwords are guessed or shared"}, "Reminders not to share passwords.", alert.SeverityMedium},
				PatternOutsideSharingAgreement: {[]string{"R2"}, []string{"Passwords are guessed or shared"}, "Reminders not to share passwords.", alert.SeverityMedium},
			}},
		{name: "pattern mapped to no risk: not covered by the DPIA",
			pattern: map[string]map[string][]rules.RiskRef{Name: {PatternOutsideSharingAgreement: {}}},
			want: map[string]got{
				PatternNoRelationship:          {[]string{"R2"}, []string{"Passwords are guessed or shared"}, "Reminders not to share passwords.", alert.SeverityMedium},
				PatternOutsideSharingAgreement: {[]string{}, nil, "", alert.SeverityMedium},
			}},
		{name: "pattern mapped to a scored risk: its risk, mitigation and severity",
			pattern: map[string]map[string][]rules.RiskRef{Name: {PatternOutsideSharingAgreement: {{ID: "R1", Title: "Inappropriate access to system", Mitigation: "Routine audits", Score: "high"}}}},
			want: map[string]got{
				PatternNoRelationship:          {[]string{"R2"}, []string{"Passwords are guessed or shared"}, "Reminders not to share passwords.", alert.SeverityMedium},
				PatternOutsideSharingAgreement: {[]string{"R1"}, []string{"Inappropriate access to system"}, "Routine audits", alert.SeverityHigh},
			}},
		{name: "another check's pattern mapping changes nothing here",
			pattern: map[string]map[string][]rules.RiskRef{"bulk-access": {PatternOutsideSharingAgreement: {}}},
			want: map[string]got{
				PatternNoRelationship:          {[]string{"R2"}, []string{"Passwords are guessed or shared"}, "Reminders not to share passwords.", alert.SeverityMedium},
				PatternOutsideSharingAgreement: {[]string{"R2"}, []string{"Passwords are guessed or shared"}, "Reminders not to share passwords.", alert.SeverityMedium},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rulestest.Policy()
			p.Risks = map[string][]rules.RiskRef{Name: checkRisks}
			p.PatternRisks = tc.pattern
			r := rulestest.NewFakeRoster(nbnStaff, nil).WithRelations(rulestest.NBNRelations, rulestest.NBNAgreements)
			seen := map[string]got{}
			for _, a := range rulestest.ProcessOne(t, p, r, ev) {
				if a.Check == Name {
					seen[a.Pattern] = got{a.Risks, a.RiskTitles, a.Mitigation, a.Severity}
				}
			}
			if !reflect.DeepEqual(seen, tc.want) {
				t.Errorf("alerts by pattern:\n got %+v\nwant %+v", seen, tc.want)
			}
		})
	}
}
