package rules

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// The relationships and agreements the no-business-need cases run against.
var (
	nbnStaff = append([]reference.Staff{
		staff("u-30", "social-worker", "team-a"),
		{ActorID: "u-90", Org: "nhs-trust", Role: "district-nurse", Team: "community", External: true},
		{ActorID: "u-92", Org: "st-martins", Role: "agency-carer", External: true},
	}, judgeStaff...)
	nbnRelations = func() []reference.Relationship {
		rels := []reference.Relationship{
			{Team: "webster-court", SubjectID: "c-1", Relation: "allocation", ValidFrom: lt("2026-01-01 00:00:00")},
			{ActorID: "u-30", SubjectID: "c-2", Relation: "caseload", ValidFrom: lt("2026-03-01 00:00:00"), ValidTo: lt("2026-03-10 00:00:00")},
			{Team: "team-a", SubjectID: "c-3", Relation: "referral", ValidFrom: lt("2026-04-01 00:00:00")},
			{Team: "team-a", SubjectID: "c-2", Relation: "allocation", ValidFrom: lt("2026-01-01 00:00:00"), ValidTo: lt("2026-02-02 14:30:00")},
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
			rels = append(rels, reference.Relationship{ActorID: "u-40", SubjectID: fmt.Sprintf("c-%d", i), Relation: "caseload", ValidTo: lt("2026-03-07 00:00:00")})
		}
		return rels
	}()
	nbnAgreements = []reference.SharingAgreement{{
		PartnerOrg: "nhs-trust", Org: testOrg, RecordTypes: []string{"care-plan", "assessment"}, Actions: []string{"view", "search"},
		ValidFrom: lt("2026-01-01 00:00:00"), ValidTo: lt("2026-06-01 00:00:00"),
	}}
)

func TestNoBusinessNeedJudgement(t *testing.T) {
	view := event.ActionView
	d := func(s string) time.Time { return lt("2026-" + s) }
	partner := func(org string) evOpt { return func(e *event.Event) { e.Actor.Org = org } }
	cases := []struct {
		name     string
		policy   func(*OrgPolicy)
		roster   func(*fakeRoster) *fakeRoster
		ev       event.Event
		patterns []string // sorted; none when the access had a business need
		severity alert.Severity
	}{
		// Relationships: the actor's own, or their team's, in force.
		{name: "team relationship covers a member", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-1"))},
		{name: "own relationship", ev: mkEvent("e1", "u-30", d("03-05 10:00:00"), view, subject("c-2"))},
		{name: "exactly at valid_from", ev: mkEvent("e1", "u-30", d("03-01 00:00:00"), view, subject("c-2"))},
		{name: "a second before valid_to", ev: mkEvent("e1", "u-30", d("03-09 23:59:59"), view, subject("c-2"))},
		{name: "exactly at valid_to is outside", ev: mkEvent("e1", "u-30", d("03-10 00:00:00"), view, subject("c-2")), patterns: []string{PatternRelationshipEnded}},
		{name: "ended: nearest is the latest to end", ev: mkEvent("e1", "u-30", d("03-12 10:00:00"), view, subject("c-2")), patterns: []string{PatternRelationshipEnded}},
		{name: "ended team relationship", ev: mkEvent("e1", "u-30", d("02-20 10:00:00"), view, subject("c-2")), patterns: []string{PatternRelationshipEnded}},
		{name: "not yet started", ev: mkEvent("e1", "u-30", d("03-12 10:00:00"), view, subject("c-3")), patterns: []string{PatternNoRelationship}},
		{name: "no relationship at all", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99")), patterns: []string{PatternNoRelationship}},
		{name: "another team's subject", ev: mkEvent("e1", "u-40", d("03-05 10:00:00"), view, subject("c-1")), patterns: []string{PatternNoRelationship}},
		{name: "roster team beats the event's", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-1"), role("", "other"))},
		{name: "roster team does not borrow the event's", ev: mkEvent("e1", "u-40", d("03-05 10:00:00"), view, subject("c-1"), role("", "webster-court")), patterns: []string{PatternNoRelationship}},
		{name: "event team when not in roster", ev: mkEvent("e1", "u-99", d("03-05 10:00:00"), view, subject("c-1"), role("agency-carer", "webster-court"))},

		// Which events are judged.
		{name: "failed view", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99"), failed())},
		{name: "login", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), event.ActionLogin)},
		{name: "search", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), event.ActionSearch, subject("c-99")), patterns: []string{PatternNoRelationship}},
		{name: "share", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), event.ActionShare, subject("c-99")), patterns: []string{PatternNoRelationship}},
		{name: "no relationship data loaded", roster: func(r *fakeRoster) *fakeRoster { return r.withRelations(nil, nil) },
			ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99"))},

		// Partner agencies: their agreement bounds them as well.
		{name: "partner within agreement", ev: mkEvent("e1", "u-90", d("03-05 10:00:00"), view, subject("c-4"), partner("nhs-trust"))},
		{name: "partner action outside", ev: mkEvent("e1", "u-90", d("03-05 10:00:00"), event.ActionExport, subject("c-4"), partner("nhs-trust")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner record type outside", ev: mkEvent("e1", "u-90", d("03-05 10:00:00"), view, subject("c-4"), partner("nhs-trust"), record("finance")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner agreement exactly at valid_to", ev: mkEvent("e1", "u-90", d("06-01 00:00:00"), view, subject("c-4"), partner("nhs-trust")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner agreement before valid_from", ev: mkEvent("e1", "u-90", lt("2025-12-31 23:59:59"), view, subject("c-4"), partner("nhs-trust")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "partner without relationship and outside agreement", ev: mkEvent("e1", "u-90", d("03-05 10:00:00"), event.ActionExport, subject("c-9")),
			patterns: []string{PatternNoRelationship, PatternOutsideSharingAgreement}},
		{name: "external flag from the roster, org from staff", ev: mkEvent("e1", "u-90", d("03-05 10:00:00"), view, subject("c-4"))},
		{name: "partner by actor.org only", ev: mkEvent("e1", "u-91", d("03-05 10:00:00"), view, subject("c-4"), partner("nhs-trust"))},
		{name: "partner org without agreement", ev: mkEvent("e1", "u-91", d("03-05 10:00:00"), view, subject("c-4"), partner("police")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "external staff of the org itself has no agreement", ev: mkEvent("e1", "u-92", d("03-05 10:00:00"), view, subject("c-1")),
			patterns: []string{PatternOutsideSharingAgreement}},
		{name: "own org in actor.org is not a partner", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-1"), partner(testOrg))},

		// Knobs.
		{name: "exempt role", ev: mkEvent("e1", "u-40", d("03-05 10:00:00"), view, subject("c-99")),
			policy: func(p *OrgPolicy) {
				nbnOf(p).Roles = map[string]NoBusinessNeedKnobs{"manager": {Exempt: new(true)}}
			}},
		{name: "team beats role: not exempt", ev: mkEvent("e1", "u-40", d("03-05 10:00:00"), view, subject("c-99")), patterns: []string{PatternNoRelationship},
			policy: func(p *OrgPolicy) {
				nbnOf(p).Roles = map[string]NoBusinessNeedKnobs{"manager": {Exempt: new(true)}}
				nbnOf(p).Teams = map[string]NoBusinessNeedKnobs{"office": {Exempt: new(false)}}
			}},
		{name: "after_end allowance inside", ev: mkEvent("e1", "u-30", d("03-10 23:59:59"), view, subject("c-2")),
			policy: func(p *OrgPolicy) { nbnOf(p).AfterEnd = new(24 * time.Hour) }},
		{name: "after_end allowance exactly over", ev: mkEvent("e1", "u-30", d("03-11 00:00:00"), view, subject("c-2")), patterns: []string{PatternRelationshipEnded},
			policy: func(p *OrgPolicy) { nbnOf(p).AfterEnd = new(24 * time.Hour) }},
		{name: "after_end does not help a relationship yet to start", ev: mkEvent("e1", "u-30", d("03-31 23:00:00"), view, subject("c-3")), patterns: []string{PatternNoRelationship},
			policy: func(p *OrgPolicy) { nbnOf(p).AfterEnd = new(24 * time.Hour) }},

		// Severity: configured, raised for sensitive subjects, or the DPIA's score.
		{name: "configured severity", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityLow,
			policy: func(p *OrgPolicy) { nbnOf(p).Severity = alert.SeverityLow }},
		{name: "sensitive subject raises severity", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99", "safeguarding")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityHigh},
		{name: "DPIA score beats configured severity", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityHigh,
			policy: func(p *OrgPolicy) {
				nbnOf(p).Severity = alert.SeverityLow
				p.Risks[CheckNoBusinessNeed] = []RiskRef{{ID: "R1", Title: "Inappropriate access to system", Score: "medium"}, {ID: "R4", Title: "Misuse of data by users", Score: "High"}}
			}},
		{name: "DPIA score raised for a sensitive subject", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99", "looked-after")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityCritical,
			policy: func(p *OrgPolicy) { p.Risks[CheckNoBusinessNeed] = []RiskRef{{ID: "R1", Score: "high"}} }},
		{name: "unscored risks keep the configured severity", ev: mkEvent("e1", "u-17", d("03-05 10:00:00"), view, subject("c-99")), patterns: []string{PatternNoRelationship}, severity: alert.SeverityLow,
			policy: func(p *OrgPolicy) {
				nbnOf(p).Severity = alert.SeverityLow
				p.Risks[CheckNoBusinessNeed] = []RiskRef{{ID: "R2"}}
			}},
	}
	var golden strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			p.Risks = map[string][]RiskRef{}
			if tc.policy != nil {
				tc.policy(&p)
			}
			r := newFakeRoster(nbnStaff, nil).withRelations(nbnRelations, nbnAgreements)
			if tc.roster != nil {
				r = tc.roster(r)
			}
			var got []alert.Alert
			for _, a := range processOne(t, p, r, tc.ev) {
				if a.Check == CheckNoBusinessNeed {
					got = append(got, a)
				}
			}
			var patterns []string
			for _, a := range sortedAlerts(alertMap(got)) {
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
	checkGolden(t, "no-business-need.golden", golden.String())
}

// TestNoBusinessNeedEpisodes: one actor browsing several records they have
// no business with is one alert, whatever the subjects; patterns and actors
// stay apart; a pause longer than the gap starts a new alert.
func TestNoBusinessNeedEpisodes(t *testing.T) {
	r := newFakeRoster(nbnStaff, nil).withRelations(nbnRelations, nbnAgreements)
	d := func(s string) time.Time { return lt("2026-03-09 " + s) }
	events := []event.Event{
		mkEvent("e1", "u-17", d("10:00:00"), event.ActionView, subject("c-97")),
		mkEvent("e2", "u-17", d("10:03:00"), event.ActionView, subject("c-1")), // has a need
		mkEvent("e3", "u-17", d("10:05:00"), event.ActionView, subject("c-98", "safeguarding")),
		mkEvent("e4", "u-40", d("10:06:00"), event.ActionView, subject("c-20")), // ended: another actor and pattern
		mkEvent("e5", "u-17", d("10:50:00"), event.ActionView, subject("c-99")),
		mkEvent("e6", "u-17", d("12:00:00"), event.ActionView, subject("c-96")), // beyond the gap
	}
	for _, batch := range []int{1, 2, 6} {
		alerts := map[string]alert.Alert{}
		p := testPolicy()
		p.Risks = map[string][]RiskRef{}
		e := newTestEngine(t, p, r)
		run(t, e, events, batch, alerts, nil)
		flush(e, alerts, nil)
		var got []string
		for _, a := range sortedAlerts(alerts) {
			if a.Check == CheckNoBusinessNeed {
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
