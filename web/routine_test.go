package web_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/web"
)

// The fixture's events are in ISO week 2026-W10 (2–8 March).
const period = "2026-W10"

func sampleURL(team string) string { return "/audit/routine/" + org + "/" + team + "/" + period }

func TestRoutineAuditRoles(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ctx := t.Context()
	// Before the week has ended no sample is drawn.
	mgr, _ := f.login(t, "mgr-a")
	resp, body := get(t, mgr, f.srv.URL+sampleURL(teamA))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "has not ended yet") {
		t.Fatalf("sample of a running week: %s\n%s", resp.Status, body)
	}
	if _, err := f.store.AuditSample(ctx, org, teamA, period); err == nil {
		t.Fatal("a sample was drawn before its week ended")
	}

	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now()) // the feed has caught up with the week's end
	mgr, csrf := f.login(t, "mgr-a")
	resp, body = get(t, mgr, f.srv.URL+"/audit/routine")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, sampleURL(teamA)) || strings.Contains(body, teamB) {
		t.Errorf("manager's routine audits: %s\n%s", resp.Status, body)
	}
	resp, body = get(t, mgr, f.srv.URL+sampleURL(teamA))
	if resp.StatusCode != http.StatusOK || strings.Count(body, "Save reviews") != 1 || strings.Count(body, "<form method=\"post\" action=\""+sampleURL(teamA)) != 1 ||
		strings.Count(body, "Was access ") != 10 || !strings.Contains(body, "10 of the team's 12 accesses") {
		t.Fatalf("manager's own sample: %s\n%s", resp.Status, body)
	}
	assertAbsent(t, "manager's sample", body, subjectA, recordA, "c-0001", "cp-1 ", teamB, actorB)
	// The draw is stored and reproducible.
	stored, err := f.store.AuditSample(ctx, org, teamA, period)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // London is on GMT in early March
	again, err := routineaudit.DrawSample(ctx, f.store, org, stored.DPIA, teamA, period, from, from.AddDate(0, 0, 7), 10)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Items, stored.Items) || again.Population != 12 || again.Seed != stored.Seed {
		t.Errorf("draw not reproducible:\n%+v\n%+v", again, stored)
	}

	review := f.srv.URL + sampleURL(teamA)
	form := func(csrf, item, outcome string) url.Values {
		return url.Values{"csrf": {csrf}, "outcome-" + item: {outcome}, "note-" + item: {"asked on shift"}}
	}
	for name, v := range map[string]url.Values{
		"no token":    {"outcome-0": {routineaudit.ReviewRefer}},
		"wrong token": form(csrf[:len(csrf)-2]+"xx", "0", routineaudit.ReviewRefer),
	} {
		if resp, _ := post(t, mgr, review, v); resp.StatusCode != http.StatusForbidden {
			t.Errorf("review with %s: %s, want 403", name, resp.Status)
		}
	}
	if resp, _ := post(t, mgr, review, form(csrf, "0", "fine")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown outcome: %s", resp.Status)
	}
	// A decision on an item the sample does not hold decides nothing.
	if resp, _ := post(t, mgr, review, form(csrf, "99", routineaudit.ReviewQuery)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("item not in the sample: %s", resp.Status)
	}
	// Another team's sample does not exist for this manager, by any URL.
	for _, u := range []string{sampleURL(teamB), "/audit/routine/" + org + "/" + teamB + "/" + period + "/", "/audit/routine/" + org + "/no-such-team/" + period} {
		if resp, body := get(t, mgr, f.srv.URL+u); resp.StatusCode != http.StatusNotFound {
			t.Errorf("manager GET %s: %s", u, resp.Status)
		} else {
			assertAbsent(t, "manager GET "+u, body, actorB, subjectB)
		}
	}
	if resp, _ := post(t, mgr, f.srv.URL+sampleURL(teamB), form(csrf, "0", routineaudit.ReviewReasonable)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("manager review of another team: %s", resp.Status)
	}
	if rs, _ := f.store.AuditReviews(ctx, org, teamB, period); len(rs) != 0 {
		t.Fatalf("another team's sample was reviewed: %+v", rs)
	}

	for _, o := range []string{routineaudit.ReviewQuery, routineaudit.ReviewRefer} {
		if resp, _ := post(t, mgr, review, form(csrf, "0", o)); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("review %s: %s", o, resp.Status)
		}
	}
	_, body = get(t, mgr, f.srv.URL+sampleURL(teamA))
	if !strings.Contains(body, "Not reasonable: referred to the IG team") || !strings.Contains(body, "earlier:") {
		t.Error("the review and its history are not shown")
	}
	_, body = get(t, mgr, f.srv.URL+"/audit/routine")
	if !strings.Contains(body, "10%") || !strings.Contains(body, "app-bars") {
		t.Errorf("coverage not shown:\n%s", body)
	}
	rs, err := f.store.AuditReviews(ctx, org, teamA, period)
	if err != nil || len(rs) != 2 || rs[1].Reviewer != "mgr-a" || rs[1].Outcome != routineaudit.ReviewRefer || rs[1].Note != "asked on shift" {
		t.Fatalf("reviews stored: %+v %v", rs, err)
	}
	log, _ := f.sq.AuditLog(ctx, 10)
	if len(log) == 0 || log[0].Action != "routine-audit.refer" || log[0].Actor != "mgr-a" {
		t.Errorf("audit trail: %+v", log)
	}

	// The IG team reads every team's samples but does not review them.
	ig, igCSRF := f.login(t, "ig")
	_, body = get(t, ig, f.srv.URL+"/audit/routine")
	if !strings.Contains(body, sampleURL(teamA)) || !strings.Contains(body, sampleURL(teamB)) {
		t.Error("ig-team does not see both teams' audits")
	}
	resp, body = get(t, ig, f.srv.URL+sampleURL(teamB))
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "Save review") || strings.Contains(body, "<form method=\"post\" action=\""+sampleURL(teamB)) || !strings.Contains(body, subjectB) {
		t.Errorf("ig-team sample page: %s", resp.Status)
	}
	if resp, _ := post(t, ig, f.srv.URL+sampleURL(teamB), form(igCSRF, "0", routineaudit.ReviewReasonable)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ig-team review: %s, want 403", resp.Status)
	}
	// Admins see coverage numbers only.
	admin, _ := f.login(t, "admin")
	if resp, _ := get(t, admin, f.srv.URL+sampleURL(teamA)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin sample page: %s", resp.Status)
	}
	if resp, body := get(t, admin, f.srv.URL+"/audit/routine"); resp.StatusCode != http.StatusOK || strings.Contains(body, sampleURL(teamA)) {
		t.Errorf("admin routine audits: %s", resp.Status)
	}
	// Unauthenticated: nothing.
	resp, body = get(t, f.client(t), f.srv.URL+sampleURL(teamA))
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("unauthenticated sample page: %s", resp.Status)
	}
	assertAbsent(t, "unauthenticated sample page", body, actorA, teamA, subjectA)
	// The DPO sees who opened which sample.
	dpo, _ := f.login(t, "dpo")
	_, body = get(t, dpo, f.srv.URL+"/audit/views")
	if !strings.Contains(body, "sample") || !strings.Contains(body, sampleURL(teamB)) {
		t.Error("sample views are not in the DPO's log")
	}
	if got := f.metric(t, "dpiawatch_web_routine_audit_reviews_total"); got != 2 {
		t.Errorf("reviews metric %v", got)
	}
}

// TestTriageIsOneRecord: a UI decision is a store.Triages record (Slack
// and the API see it, and delivery is woken), and a Slack decision is the
// UI's status.
func TestTriageIsOneRecord(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ig, csrf := f.login(t, "ig")
	if resp, _ := post(t, ig, f.srv.URL+"/alerts/"+alertA+"/triage", url.Values{"csrf": {csrf}, "outcome": {web.OutcomeExplained}, "note": {"rota"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage: %s", resp.Status)
	}
	ts, err := f.store.Triages(t.Context(), alertA)
	if err != nil || len(ts) != 1 || ts[0].Source != alertview.TriageSource || ts[0].Actor != "ig" || ts[0].Outcome != triage.Explained {
		t.Fatalf("triages: %+v %v", ts, err)
	}
	if f.wakes.Load() != 1 {
		t.Errorf("delivery woken %d times", f.wakes.Load())
	}
	if p, _ := f.sq.PendingTriages(t.Context(), "slack", 0); len(p) != 1 {
		t.Errorf("the UI's decision is not pending for Slack: %+v", p)
	}
	if _, err := f.store.AddTriage(t.Context(), triage.Decision{AlertID: alertA, Outcome: triage.ConfirmedMisuse, Actor: "ig-slack", At: f.now.Now(), Source: "slack"}); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, ig, f.srv.URL+"/alerts/"+alertA)
	if !strings.Contains(body, "Confirmed misuse</strong> by Slack user ig-slack") {
		t.Errorf("the Slack decision is not the UI's status")
	}
}

func TestOverviewPictures(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	silent := alert.Alert{ID: "a-silent", Check: "feed-silent", Pattern: "no-events", Severity: alert.SeverityHigh, Org: org,
		FirstSeen: t0, LastSeen: t0.Add(time.Hour), EventIDs: []string{}, DPIA: "st-martins-webster-court", Risks: []string{"R4"},
		Explanation: "No events have arrived from logmycare for 1h0m0s (expected at least every 30m0s): access to records is not being watched."}
	if _, err := f.sq.Apply(t.Context(), nil, nil, func([]event.Event) (store.Effects, error) { return store.Effects{Alerts: []alert.Alert{silent}}, nil }); err != nil {
		t.Fatal(err)
	}
	ig, _ := f.login(t, "ig")
	_, body := get(t, ig, f.srv.URL+"/overview")
	for _, want := range []string{`class="app-spark"`, `class="app-bars"`, `class="app-heatmap"`, "Data feeds", "logmycare", ">18<", "silent", "/alerts/a-silent",
		"1 this week", teamA, teamB} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	mgr, _ := f.login(t, "mgr-a")
	_, body = get(t, mgr, f.srv.URL+"/overview")
	assertAbsent(t, "manager overview", body, teamB, "Data feeds", "a-silent")
	if !strings.Contains(body, `class="app-heatmap"`) {
		t.Error("manager overview lacks the heatmap")
	}
}

func TestAlertPageReference(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ended := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	d := &reference.Data{
		Staff: []reference.Staff{{ActorID: actorB, Org: org, Role: "support-worker", Team: teamB}},
		Relationships: []reference.Relationship{
			{Team: teamA, SubjectID: subjectB, Relation: "key-worker", ValidFrom: ended.AddDate(0, -2, 0), ValidTo: ended},
			{ActorID: "u-5", SubjectID: "c-9", Relation: "key-worker", ValidFrom: ended},
		},
	}
	if err := f.sq.SaveReference(t.Context(), t0.Add(-24*time.Hour), d); err != nil {
		t.Fatal(err)
	}
	ig, _ := f.login(t, "ig")
	_, body := get(t, ig, f.srv.URL+"/alerts/"+alertB)
	for _, want := range []string{"What the reference data said", "support-worker in team " + teamB, "key-worker of team " + teamA, "until 1 Mar 2026", "not in force"} {
		if !strings.Contains(body, want) {
			t.Errorf("alert page lacks %q", want)
		}
	}
	assertAbsent(t, "alert page", body, "c-9", "u-5")
}

func TestEvidenceExport(t *testing.T) {
	f := newFixture(t, fixtureOpts{evidence: true})
	ig, igCSRF := f.login(t, "ig")
	if resp, _ := get(t, ig, f.srv.URL+"/evidence"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ig-team export form: %s", resp.Status)
	}
	v := url.Values{"dpia": {"st-martins-webster-court"}, "from": {"2026-03-01"}, "to": {"2026-03-31"}, "identities": {"yes"}}
	v.Set("csrf", igCSRF)
	if resp, _ := post(t, ig, f.srv.URL+"/evidence", v); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ig-team export: %s", resp.Status)
	}
	dpo, csrf := f.login(t, "dpo")
	resp, body := get(t, dpo, f.srv.URL+"/evidence")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="st-martins-webster-court"`) {
		t.Fatalf("export form: %s", resp.Status)
	}
	// The form proposes the last complete calendar quarter before t0
	// (2 March 2026), as the CLI does.
	if !strings.Contains(body, `value="2025-10-01"`) || !strings.Contains(body, `value="2025-12-31"`) {
		t.Errorf("export form does not propose Q4 2025:\n%s", body)
	}
	v.Del("csrf")
	if resp, _ := post(t, dpo, f.srv.URL+"/evidence", v); resp.StatusCode != http.StatusForbidden {
		t.Errorf("export without token: %s", resp.Status)
	}
	v.Set("csrf", csrf)
	bad := url.Values{"csrf": {csrf}, "dpia": {"st-martins-webster-court"}, "from": {"2026-03-31"}, "to": {"2026-03-01"}}
	if resp, _ := post(t, dpo, f.srv.URL+"/evidence", bad); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("reversed period: %s", resp.Status)
	}
	body = f.exportPack(t, dpo, v)
	zr, err := zip.NewReader(bytes.NewReader([]byte(body)), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[zf.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	for _, want := range []string{"manifest.json", "report.html", "report.pdf", "evidence.json"} {
		if len(files[want]) == 0 {
			t.Errorf("pack lacks %s (has %d files)", want, len(files))
		}
	}
	var m struct {
		Identities  bool   `json:"identities"`
		RequestedBy string `json:"identities_requested_by"`
		GeneratedAt string `json:"generated_at"`
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil || !m.Identities || m.RequestedBy != "dpo" {
		t.Errorf("manifest: %+v %v", m, err)
	}
	// Every entry is dated with the export, not the zip format's zero
	// date (31 Dec 1979 in a file manager).
	gen, err := time.Parse(time.RFC3339, m.GeneratedAt)
	if err != nil {
		t.Fatalf("manifest generated_at %q: %v", m.GeneratedAt, err)
	}
	for _, zf := range zr.File {
		if !zf.Modified.Equal(gen) {
			t.Errorf("%s is dated %s in the zip, the export %s", zf.Name, zf.Modified, gen)
		}
	}
	log, _ := f.sq.AuditLog(t.Context(), 5)
	if len(log) == 0 || log[0].Action != "evidence.export-identities" || log[0].Actor != "dpo" {
		t.Errorf("identities request not in the audit trail: %+v", log)
	}
	_, body = get(t, dpo, f.srv.URL+"/audit/views")
	if !strings.Contains(body, "st-martins-webster-court 2026-03-01..2026-03-31 with identities") {
		t.Error("the export is not in the view log")
	}
	// Without the tick, no identities and no audit entry.
	v.Del("identities")
	f.exportPack(t, dpo, v)
	if log2, _ := f.sq.AuditLog(t.Context(), 5); len(log2) != len(log) {
		t.Errorf("an export without identities was audited as one with: %+v", log2)
	}
}
