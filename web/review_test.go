package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/routineaudit"
)

// Display references of the fixture's people (subjects.csv); each must
// reach only the viewers entitled to it.
const (
	refA      = "WC-R14"  // subjectA: actorA is their key worker
	ref0001   = "WC-R03"  // c-0001: teamA's caseload ended before the week
	refWilts  = "WILTS-9" // subjectA's id in another org: never St Martins'
	pseudonym = "subj-bbbbbbbbbbbb"
)

// sampleReference is the reference data in force for the sample tests:
// actorA (teamA) is subjectA's key worker and on shift at t0; actorA2's
// team had c-0001 on its caseload until the day before the accesses, and
// actorA2 has a shift only on another day.
func sampleReference() *reference.Data {
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &reference.Data{
		Staff: []reference.Staff{
			{ActorID: actorA, Org: org, Role: "support-worker", Team: teamA, ActiveFrom: jan},
			{ActorID: actorA2, Org: org, Role: "senior-carer", Team: teamA, ActiveFrom: jan},
		},
		Relationships: []reference.Relationship{
			{ActorID: actorA, SubjectID: subjectA, Relation: "key-worker", ValidFrom: jan},
			{Team: teamA, SubjectID: "c-0001", Relation: "caseload", ValidFrom: jan, ValidTo: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		},
		Shifts: []reference.Shift{
			{ActorID: actorA, Start: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 2, 22, 0, 0, 0, time.UTC)},
			{ActorID: actorA2, Start: time.Date(2026, 3, 3, 7, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 3, 15, 0, 0, 0, time.UTC)},
		},
		Subjects: []reference.Subject{
			{Org: org, SubjectID: subjectA, DisplayRef: refA},
			{Org: org, SubjectID: "c-0001", DisplayRef: ref0001},
			{Org: "wiltshire-council", SubjectID: subjectA, DisplayRef: refWilts},
		},
	}
}

// TestSampleShowsWhatAManagerJudgesBy: each sampled access says who it
// was about (the local reference only where the viewer is entitled to
// it), the worker's relationship to them and shift at the time of the
// access, and what was done in words; the seed is for the DPO and the IG
// team only.
func TestSampleShowsWhatAManagerJudgesBy(t *testing.T) {
	f := newFixture(t, fixtureOpts{inForce: sampleReference()})
	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now())
	for _, tc := range []struct {
		user         string
		want, absent []string
	}{
		{"mgr-a",
			[]string{refA + ` <span class="govuk-body-s app-muted">(local reference)`, pseudonym + ` <span class="govuk-body-s app-muted">(pseudonym)`,
				"Key worker (the worker&#39;s own)", "None on record at the time", "On shift, 14:00–22:00", "Outside their rostered shifts",
				"Viewed care plan", "support worker", "senior carer"},
			[]string{ref0001, refWilts, subjectA, "c-0001", "Seed", "SHA-256", "reproducibility"}},
		{"ig",
			[]string{refA + " (" + subjectA + ")", ref0001 + " (c-0001)", "Key worker (the worker&#39;s own)", "Seed <code>", `id="reproducibility"`},
			[]string{refWilts, "Save reviews"}},
		{"dpo",
			[]string{subjectA, "c-0001", "Seed <code>", "None on record at the time"},
			[]string{refA, ref0001, refWilts, "Save reviews"}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			c, _ := f.login(t, tc.user)
			resp, body := get(t, c, f.srv.URL+sampleURL(teamA))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("sample: %s", resp.Status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("the sample lacks %q", w)
				}
			}
			assertAbsent(t, tc.user+"'s sample", body, tc.absent...)
		})
	}
	// Without reference data in force, a manager sees pseudonyms and no
	// relationship or shift (nothing to judge them by is made up).
	bare := newFixture(t, fixtureOpts{})
	bare.now.Add(7 * 24 * time.Hour)
	bare.complete(t, bare.now.Now())
	mgr, _ := bare.login(t, "mgr-a")
	_, body := get(t, mgr, bare.srv.URL+sampleURL(teamA))
	if !strings.Contains(body, pseudonymA) || strings.Contains(body, "Relationship at the time") || strings.Contains(body, "On shift") {
		t.Errorf("sample without reference data:\n%s", body)
	}
}

// TestSampleReviewForm: one form for the whole sample, one decision per
// access; a partial save stores only the decisions made and changed,
// says how many, and the progress shows on the sample and on the list.
func TestSampleReviewForm(t *testing.T) {
	f := newFixture(t, fixtureOpts{inForce: sampleReference()})
	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now())
	mgr, csrf := f.login(t, "mgr-a")
	u := f.srv.URL + sampleURL(teamA)
	_, body := get(t, mgr, u)
	if !strings.Contains(body, "0 of 10 reviewed") {
		t.Errorf("progress before any review:\n%s", body)
	}
	saved := func(v url.Values, want int) string {
		t.Helper()
		v.Set("csrf", csrf)
		resp, _ := post(t, mgr, u, v)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "saved=") {
			t.Fatalf("save: %s %s", resp.Status, loc)
		}
		_, page := get(t, mgr, f.srv.URL+loc)
		return page
	}
	page := saved(url.Values{"outcome-0": {routineaudit.ReviewReasonable}, "outcome-3": {routineaudit.ReviewRefer}, "note-3": {"not on the rota that day"},
		"outcome-7": {routineaudit.ReviewQuery}, "outcome-8": {routineaudit.ReviewReasonable}}, 4)
	for _, w := range []string{"govuk-notification-banner--success", "Reviews saved: 4 accesses", "4 of 10 reviewed",
		`name="outcome-3" type="radio" value="refer" checked`, ">not on the rota that day</textarea>"} {
		if !strings.Contains(page, w) {
			t.Errorf("after the save the sample lacks %q", w)
		}
	}
	_, list := get(t, mgr, f.srv.URL+"/audit/routine")
	if !strings.Contains(list, "4 of 10 reviewed") {
		t.Errorf("the routine-audit list lacks the progress:\n%s", list)
	}
	// The same form sent again (as the page fills it in) changes nothing
	// and stores nothing.
	page = saved(url.Values{"outcome-0": {routineaudit.ReviewReasonable}, "outcome-3": {routineaudit.ReviewRefer}, "note-3": {"not on the rota that day"},
		"outcome-7": {routineaudit.ReviewQuery}, "outcome-8": {routineaudit.ReviewReasonable}}, 0)
	if !strings.Contains(page, "No changes to save") || !strings.Contains(page, "4 of 10 reviewed") {
		t.Errorf("an unchanged form:\n%s", page)
	}
	// One decision changed, one added: two saved.
	page = saved(url.Values{"outcome-0": {routineaudit.ReviewQuery}, "outcome-3": {routineaudit.ReviewRefer}, "note-3": {"not on the rota that day"},
		"outcome-7": {routineaudit.ReviewQuery}, "outcome-8": {routineaudit.ReviewReasonable}, "outcome-9": {routineaudit.ReviewReasonable}}, 2)
	if !strings.Contains(page, "Reviews saved: 2 accesses") || !strings.Contains(page, "5 of 10 reviewed") {
		t.Errorf("a changed form:\n%s", page)
	}
	rs, err := f.store.AuditReviews(t.Context(), org, teamA, period)
	if err != nil || len(rs) != 6 {
		t.Fatalf("reviews stored: %d %v", len(rs), err)
	}
	if got := f.metric(t, "dpiawatch_web_routine_audit_reviews_total"); got != 6 {
		t.Errorf("reviews metric %v", got)
	}
	// A form with an error stores nothing, not even its valid decisions.
	v := url.Values{"csrf": {csrf}, "outcome-1": {routineaudit.ReviewReasonable}, "outcome-2": {"fine"}}
	if resp, body := post(t, mgr, u, v); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `<li><a href="#review-2-0">`) ||
		!strings.Contains(body, `name="outcome-1" type="radio" value="reasonable" checked`) {
		t.Errorf("a form with an unknown outcome: %s", resp.Status)
	}
	if rs2, _ := f.store.AuditReviews(t.Context(), org, teamA, period); len(rs2) != len(rs) {
		t.Errorf("a form with errors stored %d reviews", len(rs2)-len(rs))
	}
	// Saved= from the address bar says no more than the sample holds.
	_, body = get(t, mgr, u+"?saved=999")
	if strings.Contains(body, "Reviews saved") {
		t.Error("a banner for more reviews than the sample holds")
	}
}

// TestSampleNeverStoresOrLogsDisplayRefs: display references reach the
// sample page only; the reviews stored, the audit trail, the view log, the
// metrics and the server's log (at debug level) never hold one.
func TestSampleNeverStoresOrLogsDisplayRefs(t *testing.T) {
	f := newFixture(t, fixtureOpts{inForce: sampleReference()})
	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now())
	mgr, csrf := f.login(t, "mgr-a")
	u := f.srv.URL + sampleURL(teamA)
	if _, body := get(t, mgr, u); !strings.Contains(body, refA) {
		t.Fatal("the manager does not see the reference: the test would prove nothing")
	}
	v := url.Values{"csrf": {csrf}}
	for i := range 10 {
		v.Set("outcome-"+strconv.Itoa(i), routineaudit.ReviewReasonable)
	}
	if resp, _ := post(t, mgr, u, v); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %s", resp.Status)
	}
	dpo, _ := f.login(t, "dpo")
	_, views := get(t, dpo, f.srv.URL+"/audit/views")
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	metrics := fmt.Sprint(mfs)
	rs, _ := f.store.AuditReviews(t.Context(), org, teamA, period)
	var stored strings.Builder
	for _, r := range rs {
		stored.WriteString(r.Note + r.Reviewer + r.Outcome)
	}
	log, _ := f.sq.AuditLog(t.Context(), 100)
	for _, e := range log {
		stored.WriteString(e.Detail + e.Action + e.Object)
	}
	for where, text := range map[string]string{"view log": views, "metrics": metrics, "store": stored.String(), "log": f.logs.String()} {
		assertAbsent(t, where, text, refA, ref0001, refWilts)
	}
	if f.logs.Len() == 0 {
		t.Error("the server logged nothing: the log check proves nothing")
	}
}
