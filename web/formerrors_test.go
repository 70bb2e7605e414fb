package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFormErrors: a form sent with something wrong comes back as the same
// page with a GOV.UK error summary whose links reach the fields, the field
// marked, and what was typed kept (issue 13: an empty triage submit used to
// answer a plain-text "Bad request" and lose the note).
func TestFormErrors(t *testing.T) {
	f := newFixture(t, fixtureOpts{evidence: true})
	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now()) // the week is over: managers review its sample
	long := strings.Repeat("x", 2001)
	for _, tc := range []struct {
		name, user, path string
		form             url.Values
		// links are the summary's links; want is in the page too.
		links, want []string
	}{
		{"empty triage", "ig", "/alerts/" + alertA + "/triage", url.Values{"note": {"discussed with the worker's manager"}},
			[]string{"#outcome-0"}, []string{`id="outcome-0"`, ">discussed with the worker&#39;s manager</textarea>", `id="outcome-error"`}},
		{"triage note too long", "ig", "/alerts/" + alertA + "/triage", url.Values{"outcome": {"explained"}, "note": {long}},
			[]string{"#note"}, []string{`value="explained" checked`, ">" + long + "</textarea>", "govuk-textarea--error"}},
		{"review note without a decision", "mgr-a", sampleURL(teamA), url.Values{"outcome-0": {"reasonable"}, "note-3": {"asked the supervisor"}, "note-5": {long}},
			[]string{"#review-3-0", "#note-5"}, []string{`id="review-3-0"`, ">asked the supervisor</textarea>", `id="review-3-error"`, `id="note-5-error"`,
				`name="outcome-0" type="radio" value="reasonable" checked`, "Choose a decision for access 4, or clear its note"}},
		{"empty review form", "mgr-a", sampleURL(teamA), url.Values{},
			[]string{"#review-0-0"}, []string{"Choose a decision for at least one access"}},
		{"export without dates", "dpo", "/evidence", url.Values{"dpia": {"st-martins-webster-court"}, "from": {"1 March"}, "to": {"2026-03-31"}},
			[]string{"#from"}, []string{`id="from"`, `value="1 March"`, `value="2026-03-31"`, "govuk-input--error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, csrf := f.login(t, tc.user)
			tc.form.Set("csrf", csrf)
			resp, body := post(t, c, f.srv.URL+tc.path, tc.form)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
			}
			for _, want := range append([]string{"<title>Error: ", `class="govuk-error-summary"`, "There is a problem"}, tc.want...) {
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %s", want)
				}
			}
			for _, l := range tc.links {
				if !strings.Contains(body, `<li><a href="`+l+`">`) {
					t.Errorf("the error summary does not link to %s", l)
				}
				if !strings.Contains(body, `id="`+l[1:]+`"`) {
					t.Errorf("no field %s on the page", l)
				}
			}
		})
	}
	if a, err := f.store.WebAlert(t.Context(), alertA); err != nil || a.Triage != nil {
		t.Errorf("a form with errors triaged the alert: %+v %v", a.Triage, err)
	}
}

// TestErrorPagesArePages: every refusal is a page in the service's layout
// with a way on, never the plain text it used to be.
func TestErrorPagesArePages(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ig, igCSRF := f.login(t, "ig")
	dpo, dpoCSRF := f.login(t, "dpo")
	anon := f.client(t)
	for _, tc := range []struct {
		name string
		do   func() (*http.Response, string)
		code int
		want string
	}{
		{"no such page", func() (*http.Response, string) { return get(t, ig, f.srv.URL+"/no/such/page") }, 404, "Page not found"},
		{"no such page, signed out", func() (*http.Response, string) { return get(t, anon, f.srv.URL+"/no/such/page") }, 404, "Go to the sign-in page"},
		{"unclean path", func() (*http.Response, string) { return get(t, ig, f.srv.URL+"/alerts/x/../"+alertA) }, 404, "Page not found"},
		{"role cannot triage", func() (*http.Response, string) {
			return post(t, dpo, f.srv.URL+"/alerts/"+alertA+"/triage", url.Values{"csrf": {dpoCSRF}, "outcome": {"explained"}})
		}, 403, "You cannot triage alerts"},
		{"nothing to re-send", func() (*http.Response, string) {
			return post(t, ig, f.srv.URL+"/alerts/"+alertA+"/resend", url.Values{"csrf": {igCSRF}, "receiver": {"nobody"}})
		}, 400, "Nothing to re-send"},
		{"stale form", func() (*http.Response, string) {
			return post(t, ig, f.srv.URL+"/alerts/"+alertA+"/triage", url.Values{"csrf": {"forged"}, "outcome": {"explained"}})
		}, 403, "Your page had expired"},
		{"signed out post", func() (*http.Response, string) {
			return post(t, anon, f.srv.URL+"/alerts/"+alertA+"/triage", url.Values{"csrf": {"x"}, "outcome": {"explained"}})
		}, 403, "You are signed out"},
		{"stale sign-in form", func() (*http.Response, string) {
			return post(t, anon, f.srv.URL+"/login", url.Values{"username": {"ig"}, "password": {password}})
		}, 403, "Your sign-in page had expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.do()
			if resp.StatusCode != tc.code {
				t.Errorf("status %s, want %d", resp.Status, tc.code)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `<main class="govuk-main-wrapper"`) ||
				!strings.Contains(body, "<h1") || !strings.Contains(body, tc.want) {
				t.Errorf("not the page saying %q (%s):\n%s", tc.want, resp.Header.Get("Content-Type"), body)
			}
		})
	}
}
