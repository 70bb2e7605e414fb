package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/web"
)

// Every URL the UI has, with the fixture's identifiers filled in, plus
// variants an attacker might try.
func allURLs() []string {
	return []string{
		"/", "/overview", "/alerts", "/alerts?team=" + teamB, "/alerts?org=" + org + "&status=open",
		"/alerts/" + alertA, "/alerts/" + alertB, "/alerts/" + alertB + "/", "/alerts.csv", "/alerts.csv?team=" + teamB,
		"/actors/" + org + "/" + actorA, "/actors/" + org + "/" + actorB, "/actors/" + org + "/" + actorB + "/",
		"/audit/views", "/ALERTS/" + alertB, "/alerts/%2e%2e/" + alertB, "//alerts/" + alertB, "/alerts/" + alertB + "?x=1",
		"/static/../alerts/" + alertB, "/no/such/page",
	}
}

func TestUnauthenticatedSeesNoPersonalData(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c := f.client(t)
	secrets := []string{subjectA, subjectB, recordA, recordB, actorA, actorB, alertA, alertB, teamA, teamB, pseudonymA, "10.2.0.14"}
	for _, u := range allURLs() {
		resp, body := get(t, c, f.srv.URL+u)
		assertAbsent(t, "GET "+u, body, secrets...)
		assertAbsent(t, "GET "+u+" Location", resp.Header.Get("Location"), secrets...)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200 without a session", u)
		}
	}
	for _, u := range []string{"/alerts/" + alertA + "/triage", "/logout", "/login"} {
		resp, body := post(t, c, f.srv.URL+u, url.Values{"outcome": {web.OutcomeFalsePositive}, "csrf": {"x"}})
		assertAbsent(t, "POST "+u, body, secrets...)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without a session: %s, want 403", u, resp.Status)
		}
	}
	if got, _ := f.store.WebAlert(t.Context(), alertA); got.Triage != nil {
		t.Error("an unauthenticated POST triaged an alert")
	}
	// The login page itself renders.
	resp, body := get(t, c, f.srv.URL+"/login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Sign in to dpiawatch") {
		t.Errorf("login page: %s", resp.Status)
	}
}

func TestManagerCannotSeeAnotherTeamByAnyURL(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c, csrf := f.login(t, "mgr-a")
	otherTeam := []string{alertB, actorB, subjectB, recordB, teamB}
	for _, u := range allURLs() {
		resp, body := get(t, c, f.srv.URL+u)
		assertAbsent(t, "manager GET "+u, body, otherTeam...)
		assertAbsent(t, "manager GET "+u, body, subjectA, recordA) // pseudonyms only, no record ids
		if strings.Contains(u, alertB) || strings.Contains(u, actorB) {
			if resp.StatusCode == http.StatusOK {
				t.Errorf("manager GET %s: 200", u)
			}
		}
	}
	resp, _ := post(t, c, f.srv.URL+"/alerts/"+alertB+"/triage", url.Values{"csrf": {csrf}, "outcome": {web.OutcomeFalsePositive}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("manager triage of another team's alert: %s, want 404", resp.Status)
	}
	// Their own team's alert is there, pseudonymous.
	resp, body := get(t, c, f.srv.URL+"/alerts/"+alertA)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, pseudonymA) || !strings.Contains(body, actorA) {
		t.Errorf("manager's own alert: %s, pseudonym shown: %v", resp.Status, strings.Contains(body, pseudonymA))
	}
	if strings.Contains(body, "Record outcome") {
		t.Error("a manager is offered triage")
	}
	// The actor page of their own worker compares with the peer.
	resp, body = get(t, c, f.srv.URL+"/actors/"+org+"/"+actorA)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<svg") || !strings.Contains(body, "other worker") {
		t.Errorf("manager's own worker page: %s", resp.Status)
	}

	// A manager whose teams have no alerts sees none, not all.
	c2, _ := f.login(t, "mgr-none")
	for _, u := range []string{"/alerts", "/overview", "/alerts/" + alertA} {
		_, body := get(t, c2, f.srv.URL+u)
		assertAbsent(t, "team-less manager GET "+u, body, alertA, alertB, actorA, actorB)
	}
	// An account limited to another org sees nothing of this one.
	c3, _ := f.login(t, "other-org")
	for _, u := range []string{"/alerts", "/alerts/" + alertA, "/actors/" + org + "/" + actorA} {
		_, body := get(t, c3, f.srv.URL+u)
		assertAbsent(t, "other-org GET "+u, body, alertA, alertB, actorA, actorB, subjectA)
	}
}

func TestRolesSeeWhatTheyMay(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ig, _ := f.login(t, "ig")
	_, body := get(t, ig, f.srv.URL+"/alerts")
	for _, want := range []string{alertA, alertB, actorB, subjectB} {
		if !strings.Contains(body, want) {
			t.Errorf("ig-team queue lacks %q", want)
		}
	}
	_, body = get(t, ig, f.srv.URL+"/alerts/"+alertB)
	for _, want := range []string{subjectB, recordB, "Record outcome", "evidence"} {
		if !strings.Contains(body, want) {
			t.Errorf("ig-team alert page lacks %q", want)
		}
	}
	if resp, body := get(t, ig, f.srv.URL+"/actors/"+org+"/"+actorB); resp.StatusCode != http.StatusOK || !strings.Contains(body, "<svg") {
		t.Errorf("ig-team actor page: %s", resp.Status)
	}
	if resp, _ := get(t, ig, f.srv.URL+"/audit/views"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ig-team view log: %s", resp.Status)
	}
	if resp, _ := get(t, ig, f.srv.URL+"/alerts.csv"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ig-team export: %s", resp.Status)
	}

	admin, _ := f.login(t, "admin")
	_, body = get(t, admin, f.srv.URL+"/alerts/"+alertA)
	assertAbsent(t, "admin alert page", body, subjectA, recordA, "Record outcome")
	if resp, _ := get(t, admin, f.srv.URL+"/actors/"+org+"/"+actorA); resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin actor page: %s", resp.Status)
	}

	dpo, _ := f.login(t, "dpo")
	resp, body := get(t, dpo, f.srv.URL+"/alerts.csv?status=open")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, alertA) || !strings.Contains(body, alertB) ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("dpo export: %s %q", resp.Status, body)
	}
	// Views by ig-team and admin above are in the DPO's log, with who.
	_, body = get(t, dpo, f.srv.URL+"/audit/views")
	for _, want := range []string{">ig<", ">admin<", alertA, alertB, actorB} {
		if !strings.Contains(body, want) {
			t.Errorf("view log lacks %q", want)
		}
	}
	views, err := f.store.WebViews(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) < 3 {
		t.Errorf("recorded %d views, want at least 3", len(views))
	}
	if got := f.metric(t, "dpiawatch_web_record_views_total"); got < 3 {
		t.Errorf("views metric %v", got)
	}
}

// metric sums every series of a counter.
func (f *fixture) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// metricWith is metric's sum over the series whose label is value.
func (f *fixture) metricWith(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c, csrf := f.login(t, "ig")
	triage := f.srv.URL + "/alerts/" + alertA + "/triage"
	for name, form := range map[string]url.Values{
		"missing": {"outcome": {web.OutcomeFalsePositive}},
		"empty":   {"outcome": {web.OutcomeFalsePositive}, "csrf": {""}},
		"wrong":   {"outcome": {web.OutcomeFalsePositive}, "csrf": {csrf[:len(csrf)-2] + "xx"}},
	} {
		resp, _ := post(t, c, triage, form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s token: %s, want 403", name, resp.Status)
		}
	}
	// Another session's token is no good either.
	_, other := f.login(t, "ig")
	if resp, _ := post(t, c, triage, url.Values{"outcome": {web.OutcomeFalsePositive}, "csrf": {other}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another session's token: %s", resp.Status)
	}
	// A cross-site request with the right token is refused by origin.
	req, _ := http.NewRequest(http.MethodPost, triage, strings.NewReader(url.Values{"outcome": {web.OutcomeFalsePositive}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %s", resp.Status)
	}
	if got, _ := f.store.WebAlert(t.Context(), alertA); got.Triage != nil {
		t.Fatalf("a rejected request triaged the alert: %+v", got.Triage)
	}
	// Logout needs the token too.
	if resp, _ := post(t, c, f.srv.URL+"/logout", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without token: %s", resp.Status)
	}
	// Login without the login cookie's token.
	if resp, _ := post(t, f.client(t), f.srv.URL+"/login", url.Values{"username": {"ig"}, "password": {password}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without token: %s", resp.Status)
	}
	// With the token, the triage round trip works and is shown.
	resp2, _ := post(t, c, triage, url.Values{"outcome": {web.OutcomeFalsePositive}, "csrf": {csrf}, "note": {"rota changed"}})
	if resp2.StatusCode != http.StatusSeeOther {
		t.Fatalf("triage with token: %s", resp2.Status)
	}
	got, err := f.store.WebAlert(t.Context(), alertA)
	if err != nil || got.Triage == nil || got.Triage.Outcome != web.OutcomeFalsePositive || got.Triage.By != "ig" || got.Triage.Note != "rota changed" {
		t.Fatalf("triage stored: %+v, %v", got.Triage, err)
	}
	_, body := get(t, c, f.srv.URL+"/alerts?status=triaged")
	if !strings.Contains(body, alertA) || strings.Contains(body, alertB) {
		t.Error("status=triaged filter")
	}
	_, body = get(t, c, f.srv.URL+"/alerts?status=open")
	if strings.Contains(body, alertA) || !strings.Contains(body, alertB) {
		t.Error("status=open filter")
	}
	if resp, _ := post(t, c, f.srv.URL+"/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %s", resp.Status)
	}
	if resp, _ := get(t, c, f.srv.URL+"/alerts"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %s", resp.Status)
	}
}

func TestSecurityHeadersAndCookies(t *testing.T) {
	for _, tc := range []struct {
		name, ext string
		secure    bool
	}{{"http", "", false}, {"https", "https://dpiawatch.example.org", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{externalURL: tc.ext})
			c := f.client(t)
			resp, body := get(t, c, f.srv.URL+"/login")
			h := resp.Header
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
				!strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("CSP %q", csp)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			if got := h.Get("Strict-Transport-Security") != ""; got != tc.secure {
				t.Errorf("HSTS present %v, want %v", got, tc.secure)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
				t.Error("inline script or style in the page")
			}
			// Log in by hand (a Secure cookie is not replayed over the test's http).
			var token string
			for _, ck := range resp.Cookies() {
				if strings.HasSuffix(ck.Name, "dpiawatch_login") {
					token = ck.Value
				}
			}
			form := url.Values{"csrf": {csrfOf(t, body)}, "username": {"ig"}, "password": {password}}
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			name := "dpiawatch_login"
			if tc.secure {
				name = "__Host-dpiawatch_login"
			}
			req.AddCookie(&http.Cookie{Name: name, Value: token})
			resp, err := f.client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var session *http.Cookie
			for _, ck := range resp.Cookies() {
				if strings.HasSuffix(ck.Name, "dpiawatch_session") {
					session = ck
				}
			}
			if session == nil {
				t.Fatalf("no session cookie: %s", resp.Status)
			}
			if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure != tc.secure || session.Path != "/" ||
				strings.HasPrefix(session.Name, "__Host-") != tc.secure || len(session.Value) < 40 {
				t.Errorf("session cookie %+v", session)
			}
		})
	}
}

func TestLoginThrottle(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c := f.client(t)
	attempt := func(pw string) int {
		_, body := get(t, c, f.srv.URL+"/login")
		resp, body := post(t, c, f.srv.URL+"/login", url.Values{"csrf": {csrfOf(t, body)}, "username": {"ig"}, "password": {pw}})
		assertAbsent(t, "login", body, "correct horse")
		return resp.StatusCode
	}
	for i := range 5 {
		if code := attempt("wrong password " + string(rune('a'+i))); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	// The sixth attempt, even with the right password, must wait.
	if code := attempt(password); code != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt: %d, want 429", code)
	}
	f.now.Add(2 * time.Second)
	if code := attempt("still wrong password"); code != http.StatusUnauthorized {
		t.Fatalf("after the wait: %d", code)
	}
	// The backoff doubled: 1s is not enough now.
	f.now.Add(1500 * time.Millisecond)
	if code := attempt(password); code != http.StatusTooManyRequests {
		t.Fatalf("within the doubled wait: %d", code)
	}
	f.now.Add(time.Second)
	if code := attempt(password); code != http.StatusSeeOther {
		t.Fatalf("after the doubled wait, right password: %d", code)
	}
	// Another account from the same address is not locked by one account's failures.
	_, body := get(t, c, f.srv.URL+"/login")
	if resp, _ := post(t, c, f.srv.URL+"/login", url.Values{"csrf": {csrfOf(t, body)}, "username": {"dpo"}, "password": {password}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("other account: %s", resp.Status)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c, _ := f.login(t, "ig")
	f.now.Add(29 * time.Minute)
	if resp, _ := get(t, c, f.srv.URL+"/alerts"); resp.StatusCode != http.StatusOK {
		t.Fatalf("within idle timeout: %s", resp.Status)
	}
	f.now.Add(31 * time.Minute)
	if resp, _ := get(t, c, f.srv.URL+"/alerts"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after idle timeout: %s", resp.Status)
	}
	// Absolute lifetime: active all along, still ends after 8h.
	c, _ = f.login(t, "ig")
	for range 17 {
		f.now.Add(29 * time.Minute)
		get(t, c, f.srv.URL+"/overview")
	}
	if resp, _ := get(t, c, f.srv.URL+"/overview"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after 8h: %s", resp.Status)
	}
}

func TestQueueFiltersAndOverview(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c, _ := f.login(t, "ig")
	for q, want := range map[string][2]bool{ // alertA shown, alertB shown
		"":                              {true, true},
		"check=out-of-hours":            {true, false},
		"risk=R3":                       {false, true},
		"severity=high":                 {false, true},
		"team=" + teamA:                 {true, false},
		"org=wiltshire-council":         {false, false},
		"status=confirmed-misuse":       {false, false},
		"team=x' OR 1=1 --":             {false, false},
		"severity=medium&risk=R4":       {true, false},
		"org=" + org + "&team=" + teamB: {false, true},
	} {
		_, body := get(t, c, f.srv.URL+"/alerts?"+strings.ReplaceAll(q, " ", "+"))
		if got := [2]bool{strings.Contains(body, alertA), strings.Contains(body, alertB)}; got != want {
			t.Errorf("?%s: shown %v, want %v", q, got, want)
		}
	}
	_, body := get(t, c, f.srv.URL+"/overview")
	for _, want := range []string{"Access with no business need", "Misuse by users", "Out-of-hours access", "No business need", "St Martins"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := web.HashPassword(password, cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q", h)
	}
	for pw, want := range map[string]bool{password: true, password + " ": false, "": false} {
		if ok, err := web.VerifyPassword(h, pw); ok != want || err != nil {
			t.Errorf("verify %q: %v %v", pw, ok, err)
		}
	}
	if _, err := web.HashPassword("short", cheap); err == nil {
		t.Error("a short password was accepted")
	}
	if _, err := web.VerifyPassword("$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x"); err == nil {
		t.Error("a hash demanding 95 GiB was accepted")
	}
}

func TestAccountsFile(t *testing.T) {
	h, _ := web.HashPassword(password, cheap)
	path := t.TempDir() + "/accounts.yaml"
	a, err := web.LoadAccounts(path)
	if err != nil || a.Len() != 0 {
		t.Fatalf("missing file: %v", err)
	}
	if err := a.Put(web.Account{Username: "m", Role: web.RoleManager, Password: h}); err == nil {
		t.Error("a manager without teams was accepted")
	}
	if err := a.Put(web.Account{Username: "m", Role: web.RoleManager, Teams: []string{teamA}, Password: h}); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := web.LoadAccounts(path)
	if err != nil || b.Len() != 1 {
		t.Fatalf("reload: %v", err)
	}
	if acct, ok := b.Authenticate("M", password); !ok || acct.Teams[0] != teamA {
		t.Errorf("authenticate after reload: %v %+v", ok, acct)
	}
	if _, err := web.ParseAccounts([]byte("users:\n- username: x\n  role: dpo\n  password: $argon2id$x\n  pasword: y\n")); err == nil {
		t.Error("an unknown key was accepted")
	}
}
