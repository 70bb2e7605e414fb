package web_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/web"
)

// refB is subjectB's display reference in the alert-page tests.
const refB = "WC-R77"

// alertRefReference is sampleReference with subjectB's local reference
// and teamB's caseload of subjectB, which begins at t0+4m: after alertB's
// first event, before its last two.
func alertRefReference() *reference.Data {
	d := sampleReference()
	d.Subjects = append(d.Subjects, reference.Subject{Org: org, SubjectID: subjectB, DisplayRef: refB})
	d.Relationships = append(d.Relationships, reference.Relationship{Team: teamB, SubjectID: subjectB, Relation: "caseload", ValidFrom: t0.Add(4 * time.Minute)})
	return d
}

var (
	alertSubject = regexp.MustCompile(`(?s)Person whose record</dt><dd class="govuk-summary-list__value">(.*?)</dd>`)
	timelineRows = regexp.MustCompile(`(?s)<tr class="govuk-table__row(?: app-evidence)?">\s*<td class="govuk-table__cell">.*?</td>\s*<td class="govuk-table__cell">.*?</td>\s*<td class="govuk-table__cell">(.*?)</td>`)
	tags         = regexp.MustCompile(`<[^>]*>`)
)

// timelinePeople is the text of the Person cell of each row of the alert
// page's evidence timeline, in order.
func timelinePeople(body string) []string {
	_, tl, ok := strings.Cut(body, "Evidence timeline</h2>")
	if !ok {
		return nil
	}
	var people []string
	for _, m := range timelineRows.FindAllStringSubmatch(tl, -1) {
		people = append(people, html.UnescapeString(tags.ReplaceAllString(m[1], "")))
	}
	return people
}

// TestAlertPageShowsLocalRefsToTheEntitled: the alert page shows the
// person's local reference (subjects.csv) to the IG team always, beside
// the subject id; to a manager of the alert's team only where the worker
// or one of the manager's teams had a relationship with the person at the
// time (the alert's first event for the alert's person, each row's time
// for the timeline), as samples do; to the DPO never. The reference never
// reaches the server's log, the view log or the metrics.
func TestAlertPageShowsLocalRefsToTheEntitled(t *testing.T) {
	hash, err := web.HashPassword(password, cheap)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOpts{inForce: alertRefReference(),
		accounts: []web.Account{{Username: "mgr-b", Role: web.RoleManager, Teams: []string{teamB}, Password: hash}}})
	// actorA opens c-0001's record in alertA's timeline window: teamA's
	// caseload of c-0001 ended the day before, actorA has none of their own.
	if _, err := f.sq.Apply(t.Context(), []event.Event{ev("e-x1", actorA, teamA, "c-0001", "cp-1", t0.Add(10*time.Minute))}, nil,
		func([]event.Event) (store.Effects, error) { return store.Effects{}, nil }); err != nil {
		t.Fatal(err)
	}
	local := func(s string) string { return s + ` <span class="app-muted">(local reference)</span>` }
	pseud := pseudonym + ` <span class="app-muted">(pseudonym)</span>`
	rep := func(n int, s string) []string { return slices.Repeat([]string{s}, n) }
	for _, tc := range []struct {
		name, user, alert string
		code              int
		subject           string   // the "Person whose record" value
		timeline          []string // the timeline's Person cells
		absent            []string
	}{
		{"ig sees references beside ids", "ig", alertA, http.StatusOK,
			local(refA + " (" + subjectA + ")"),
			append(rep(6, refA+" ("+subjectA+")"+` (local reference)`), ref0001+" (c-0001) (local reference)"),
			[]string{refWilts, refB}},
		{"manager whose worker is the key worker", "mgr-a", alertA, http.StatusOK,
			local(refA),
			append(rep(6, refA+" (local reference)"), pseudonym),
			[]string{ref0001, refWilts, refB, subjectA, "c-0001"}},
		{"dpo sees ids only", "dpo", alertA, http.StatusOK,
			subjectA,
			append(rep(6, subjectA), "c-0001"),
			[]string{"WC-", refWilts}},
		{"ig, alertB", "ig", alertB, http.StatusOK,
			local(refB + " (" + subjectB + ")"),
			rep(6, refB+" ("+subjectB+") (local reference)"),
			[]string{refA, ref0001, refWilts}},
		{"manager of the alert's team, no relationship at first sight", "mgr-b", alertB, http.StatusOK,
			pseud,
			append(rep(4, pseudonym), rep(2, refB+" (local reference)")...),
			[]string{refA, ref0001, refWilts, subjectB}},
		{"dpo, alertB", "dpo", alertB, http.StatusOK,
			subjectB,
			rep(6, subjectB),
			[]string{"WC-", refWilts}},
		{"manager of another team", "mgr-a", alertB, http.StatusNotFound, "", nil,
			[]string{"WC-", subjectB, refWilts}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := f.login(t, tc.user)
			resp, body := get(t, c, f.srv.URL+"/alerts/"+tc.alert)
			if resp.StatusCode != tc.code {
				t.Fatalf("alert page: %s", resp.Status)
			}
			assertAbsent(t, tc.user+"'s alert page", body, tc.absent...)
			if tc.code != http.StatusOK {
				return
			}
			if m := alertSubject.FindStringSubmatch(body); m == nil || m[1] != tc.subject {
				t.Errorf("person whose record: got %q, want %q", m, tc.subject)
			}
			if got := timelinePeople(body); !slices.Equal(got, tc.timeline) {
				t.Errorf("timeline people:\n got %q\nwant %q", got, tc.timeline)
			}
		})
	}
	// The IG team's triage, sent back with an error and then recorded: the
	// page it comes back on shows the reference; the log, the audit trail
	// and the triage stored never hold it.
	ig, csrf := f.login(t, "ig")
	resp, body := post(t, ig, f.srv.URL+"/alerts/"+alertA+"/triage", url.Values{"csrf": {csrf}, "note": {"checked the rota"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, refA) {
		t.Fatalf("triage without an outcome: %s, reference shown: %v", resp.Status, strings.Contains(body, refA))
	}
	resp, _ = post(t, ig, f.srv.URL+"/alerts/"+alertA+"/triage", url.Values{"csrf": {csrf}, "outcome": {web.OutcomeExplained}, "note": {"checked the rota"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage: %s", resp.Status)
	}
	dpo, _ := f.login(t, "dpo")
	_, views := get(t, dpo, f.srv.URL+"/audit/views")
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var stored strings.Builder
	log, _ := f.sq.AuditLog(t.Context(), 100)
	for _, e := range log {
		stored.WriteString(e.Detail + e.Action + e.Object)
	}
	a, err := f.store.WebAlert(t.Context(), alertA)
	if err != nil || a.Triage == nil {
		t.Fatalf("the triage was not stored: %v", err)
	}
	stored.WriteString(a.Triage.Note + a.Triage.Outcome + a.Triage.By)
	for where, text := range map[string]string{"view log": views, "metrics": fmt.Sprint(mfs), "store": stored.String(), "log": f.logs.String()} {
		assertAbsent(t, where, text, refA, ref0001, refB, refWilts)
	}
	if !strings.Contains(f.logs.String(), alertA) {
		t.Error("the server did not log the triage: the log check proves nothing")
	}
}
