package web_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/triage"
)

// TestManagerNotes: a manager adds context to an alert about their own
// team; it is recorded in the audit trail (who, when, text) and shown in
// the alert's history to the IG team, the DPO and that manager. A manager
// cannot note another team's alert (not found, as every URL of it), nor
// triage or re-send (403, nothing stored); other roles cannot note. An
// empty or over-long note comes back with an error summary, what was
// typed kept.
func TestManagerNotes(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	mgr, mgrCSRF := f.login(t, "mgr-a")
	ig, igCSRF := f.login(t, "ig")
	dpo, _ := f.login(t, "dpo")
	const text = "Expected: covering a colleague's caseload that evening."
	notes := func(id string) []triage.Note {
		t.Helper()
		ns, err := f.sq.AlertNotes(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}

	// The manager sees the note form and no triage form.
	_, page := get(t, mgr, f.srv.URL+"/alerts/"+alertA)
	if !strings.Contains(page, `action="/alerts/`+alertA+`/note"`) || strings.Contains(page, "Record outcome") {
		t.Fatalf("a manager's alert page: note form %v, triage form %v",
			strings.Contains(page, "/note\""), strings.Contains(page, "Record outcome"))
	}
	if _, page := get(t, ig, f.srv.URL+"/alerts/"+alertA); strings.Contains(page, `/note"`) {
		t.Error("the IG team's alert page has the managers' note form")
	}

	for _, tc := range []struct {
		name, note, link, kept string
	}{
		{"empty", "   ", "#context-note", "Enter a note"},
		{"too long", strings.Repeat("é", triage.MaxNoteRunes+1), "#context-note", ">" + strings.Repeat("é", triage.MaxNoteRunes+1) + "</textarea>"},
	} {
		resp, body := post(t, mgr, f.srv.URL+"/alerts/"+alertA+"/note", url.Values{"csrf": {mgrCSRF}, "context-note": {tc.note}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `class="govuk-error-summary"`) ||
			!strings.Contains(body, `<li><a href="`+tc.link+`">`) || !strings.Contains(body, tc.kept) {
			t.Errorf("%s note: %s, want 400 with an error summary linking %s and %q", tc.name, resp.Status, tc.link, tc.kept)
		}
	}
	if ns := notes(alertA); len(ns) != 0 {
		t.Fatalf("a refused note was stored: %+v", ns)
	}

	resp, _ := post(t, mgr, f.srv.URL+"/alerts/"+alertA+"/note", url.Values{"csrf": {mgrCSRF}, "context-note": {"  " + text + "\n"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/alerts/"+alertA+"#history" {
		t.Fatalf("note: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	ns := notes(alertA)
	if len(ns) != 1 || ns[0].Text != text || ns[0].Actor != "mgr-a" || !ns[0].At.Equal(f.now.Now()) {
		t.Fatalf("notes = %+v", ns)
	}
	log, err := f.sq.AuditLog(t.Context(), 1)
	if err != nil || len(log) != 1 || log[0].Action != "alert.note" || log[0].Actor != "mgr-a" || log[0].Object != alertA ||
		!log[0].At.Equal(f.now.Now()) || !strings.Contains(log[0].Detail, "covering a colleague") {
		t.Fatalf("audit = %+v, %v", log, err)
	}
	if a, err := f.store.WebAlert(t.Context(), alertA); err != nil || a.Triage != nil {
		t.Fatalf("a note changed the alert's status: %+v %v", a.Triage, err)
	}
	for who, c := range map[string]*http.Client{"mgr-a": mgr, "ig": ig, "dpo": dpo} {
		_, page := get(t, c, f.srv.URL+"/alerts/"+alertA)
		if !strings.Contains(page, html.EscapeString(text)) || !strings.Contains(page, "by manager mgr-a, Mon 2 Mar 2026 23:14") {
			t.Errorf("%s does not see the note in the alert's history", who)
		}
	}

	// Outside the manager's teams: not found, nothing stored.
	resp, body := post(t, mgr, f.srv.URL+"/alerts/"+alertB+"/note", url.Values{"csrf": {mgrCSRF}, "context-note": {text}})
	if resp.StatusCode != http.StatusNotFound || strings.Contains(body, actorB) {
		t.Errorf("note on another team's alert: %s", resp.Status)
	}
	// No triage powers: triage and re-send are refused.
	for _, path := range []string{"/triage", "/resend"} {
		resp, body := post(t, mgr, f.srv.URL+"/alerts/"+alertA+path, url.Values{"csrf": {mgrCSRF}, "outcome": {"explained"}, "note": {"fine"}, "receiver": {"slack"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Only the IG team can") {
			t.Errorf("manager POST %s: %s", path, resp.Status)
		}
	}
	if ts, err := f.sq.Triages(t.Context(), alertA); err != nil || len(ts) != 0 {
		t.Errorf("a manager's triage was stored: %+v %v", ts, err)
	}
	// Other roles do not note.
	resp, _ = post(t, ig, f.srv.URL+"/alerts/"+alertA+"/note", url.Values{"csrf": {igCSRF}, "context-note": {"from the IG team"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("IG team note: %s, want 403", resp.Status)
	}
	if ns := notes(alertA); len(ns) != 1 {
		t.Errorf("notes after the refusals = %+v, want the manager's one", ns)
	}
	if ns := notes(alertB); len(ns) != 0 {
		t.Errorf("another team's alert got a note: %+v", ns)
	}
}

// TestTriageAction: the IG team records an action owner, due date and
// status with a decision; the alert page and the queue show it, the queue
// marks it overdue once its day has passed unless done; a due date that
// is no date comes back with an error summary, what was typed kept.
func TestTriageAction(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ig, csrf := f.login(t, "ig")
	triageURL := f.srv.URL + "/alerts/" + alertA + "/triage"
	form := func(owner, day, month, year, status string) url.Values {
		return url.Values{"csrf": {csrf}, "outcome": {"confirmed-misuse"}, "owner": {owner},
			"due-day": {day}, "due-month": {month}, "due-year": {year}, "action_status": {status}}
	}
	for _, tc := range []struct {
		name string
		form url.Values
		link string
		kept []string
	}{
		{"no such day", form("Registered manager", "31", "4", "2026", "open"), "#due-day", []string{`value="31"`, `value="Registered manager"`}},
		{"year typo", form("", "4", "3", "206", "open"), "#due-day", []string{`value="206"`}},
		{"owner too long", form(strings.Repeat("a", triage.MaxOwnerRunes+1), "", "", "", "open"), "#owner", nil},
		{"bad status", form("Registered manager", "", "", "", "later"), "#action-status-0", nil},
	} {
		resp, body := post(t, ig, triageURL, tc.form)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `<li><a href="`+tc.link+`">`) {
			t.Errorf("%s: %s, want 400 linking %s", tc.name, resp.Status, tc.link)
		}
		for _, k := range tc.kept {
			if !strings.Contains(body, k) {
				t.Errorf("%s: the form lost %s", tc.name, k)
			}
		}
	}
	if ts, _ := f.sq.Triages(t.Context(), alertA); len(ts) != 0 {
		t.Fatalf("a refused form was stored: %+v", ts)
	}

	// Now (fixture clock) is Mon 2 Mar 2026, 23:14 in London.
	resp, _ := post(t, ig, triageURL, form(" Registered manager, Webster Court ", "4", "3", "2026", "open"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage with action: %s", resp.Status)
	}
	a, err := f.store.WebAlert(t.Context(), alertA)
	want := triage.Action{Owner: "Registered manager, Webster Court", Due: "2026-03-04", Status: triage.ActionOpen}
	if err != nil || a.Triage == nil || a.Triage.Action == nil || *a.Triage.Action != want {
		t.Fatalf("stored action = %+v, %v; want %+v", a.Triage, err, want)
	}
	_, page := get(t, ig, f.srv.URL+"/alerts/"+alertA)
	for _, w := range []string{"Registered manager, Webster Court, due 4 Mar 2026 · Open", `value="Registered manager, Webster Court"`, `id="due-day" name="due-day" type="text" inputmode="numeric" value="4"`} {
		if !strings.Contains(page, w) {
			t.Errorf("alert page lacks %q", w)
		}
	}
	if strings.Contains(page, "overdue") {
		t.Error("an action due in two days is shown overdue")
	}
	_, queue := get(t, ig, f.srv.URL+"/alerts?status=all")
	if !strings.Contains(queue, "Action open, due 4 Mar 2026") || strings.Contains(queue, ">overdue<") {
		t.Errorf("queue before the due day lacks the action or marks it overdue")
	}

	// Three days on, past the due day: overdue in the queue and on the page.
	f.now.Add(3 * 24 * time.Hour)
	ig, csrf = f.login(t, "ig") // the session idled out
	_, queue = get(t, ig, f.srv.URL+"/alerts?status=all")
	if !strings.Contains(queue, `Action open, due 4 Mar 2026</span> <strong class="govuk-tag govuk-tag--red">overdue</strong>`) {
		t.Errorf("queue after the due day does not mark the action overdue")
	}
	// Done: no longer overdue.
	if resp, _ := post(t, ig, triageURL, form("Registered manager, Webster Court", "4", "3", "2026", "done")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("mark done: %s", resp.Status)
	}
	_, queue = get(t, ig, f.srv.URL+"/alerts?status=all")
	if !strings.Contains(queue, "Action done, due 4 Mar 2026") || strings.Contains(queue, ">overdue<") {
		t.Errorf("a done action: queue lacks it or still marks it overdue")
	}
	// The history lists both decisions with their actions, newest first.
	_, page = get(t, ig, f.srv.URL+"/alerts/"+alertA)
	i, j := strings.Index(page, "due 4 Mar 2026 · Done"), strings.LastIndex(page, "due 4 Mar 2026 · Open")
	if i < 0 || j < 0 || i > j {
		t.Errorf("history: done at %d, open at %d; want both, the newest first", i, j)
	}
	// Empty owner and date clear the action.
	if resp, _ := post(t, ig, triageURL, form("", "", "", "", "open")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: %s", resp.Status)
	}
	if a, _ := f.store.WebAlert(t.Context(), alertA); a.Triage == nil || a.Triage.Action != nil {
		t.Errorf("cleared action = %+v", a.Triage)
	}
}
