package web_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/testwait"
	"github.com/dpiawatch/dpiawatch/web"
)

// accountsWriter returns a func that saves accounts to path as `dpiawatch
// user add` does (atomically). Passwords are given in clear and hashed once
// per user and password: an account written again unchanged keeps its hash.
func accountsWriter(t *testing.T, path string) func(accts ...web.Account) {
	hashes := map[string]string{}
	return func(accts ...web.Account) {
		t.Helper()
		set, err := web.ParseAccounts(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range accts {
			key := a.Username + "\x00" + a.Password
			if hashes[key] == "" {
				if hashes[key], err = web.HashPassword(a.Password, cheap); err != nil {
					t.Fatal(err)
				}
			}
			a.Password = hashes[key]
			if err := set.Put(a); err != nil {
				t.Fatal(err)
			}
		}
		if err := set.Save(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAccountsReload (issue 16, item 7): a change to the accounts file takes
// effect without a restart, for new logins and for the sessions open: a
// changed password, role or team, a disabled and a removed account each end
// the account's sessions. A broken file keeps the previous accounts.
func TestAccountsReload(t *testing.T) {
	const newPassword = "a new passphrase for ig"
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	writeAccounts := accountsWriter(t, path)
	writeAccounts(
		web.Account{Username: "ig", Role: web.RoleIGTeam, Password: password},
		web.Account{Username: "mgr-a", Role: web.RoleManager, Teams: []string{teamA}, Password: password},
		web.Account{Username: "dpo", Role: web.RoleDPO, Password: password},
		web.Account{Username: "admin", Role: web.RoleAdmin, Password: password},
		web.Account{Username: "other-org", Role: web.RoleIGTeam, Orgs: []string{org}, Password: password},
	)
	f := newFixture(t, fixtureOpts{accountsFile: path})
	go func() { _ = f.web.Run(t.Context()) }()

	open := func(c *http.Client) bool {
		resp, _ := get(t, c, f.srv.URL+"/alerts")
		return resp.StatusCode == http.StatusOK
	}
	sessions := map[string]*http.Client{}
	for _, u := range []string{"ig", "mgr-a", "dpo", "admin", "other-org"} {
		sessions[u], _ = f.login(t, u)
	}
	if _, body := get(t, sessions["ig"], f.srv.URL+"/alerts"); !strings.Contains(body, subjectA) {
		t.Fatal("ig-team does not see subject ids before the change")
	}

	// ig: new password and demoted to a manager of the other team; mgr-a:
	// a team changed; dpo: disabled; admin: removed; other-org: unchanged.
	writeAccounts(
		web.Account{Username: "ig", Role: web.RoleManager, Teams: []string{teamB}, Password: newPassword},
		web.Account{Username: "mgr-a", Role: web.RoleManager, Teams: []string{teamB}, Password: password},
		web.Account{Username: "dpo", Role: web.RoleDPO, Password: password, Disabled: true},
		web.Account{Username: "other-org", Role: web.RoleIGTeam, Orgs: []string{org}, Password: password},
	)
	testwait.For(t, 10*time.Second, "ig's session to end after the accounts file changed", func() bool { return !open(sessions["ig"]) })
	for _, u := range []string{"mgr-a", "dpo", "admin"} {
		if open(sessions[u]) {
			t.Errorf("%s: the session outlived a change to the account", u)
		}
	}
	if !open(sessions["other-org"]) {
		t.Error("an unchanged account's session was ended")
	}
	for _, tc := range []struct {
		user, pass string
		want       int
	}{
		{"ig", password, http.StatusUnauthorized},
		{"ig", newPassword, http.StatusSeeOther},
		{"mgr-a", password, http.StatusSeeOther},
		{"dpo", password, http.StatusUnauthorized},
		{"admin", password, http.StatusUnauthorized},
	} {
		if got := f.tryLogin(t, "192.0.2.10", "", tc.user, tc.pass).Code; got != tc.want {
			t.Errorf("login %s with %q: %d, want %d", tc.user, tc.pass, got, tc.want)
		}
	}
	c := f.client(t)
	f.loginAs(t, c, "ig", newPassword)
	if _, body := get(t, c, f.srv.URL+"/alerts"); strings.Contains(body, subjectA) || !strings.Contains(body, "(manager: "+teamB) {
		t.Errorf("ig signs in with the old role, or sees subject ids:\n%s", body)
	}
	if got := f.metric(t, "dpiawatch_web_sessions_ended_total"); got != 4 {
		t.Errorf("sessions ended: %v, want 4", got)
	}

	// A broken file keeps the accounts in force, and says so. Written in
	// place, not renamed: the reload may also catch it empty, which keeps
	// them too.
	if err := os.WriteFile(path, []byte("users:\n  - username: ig\n    role: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the broken file to be counted as a failed load", func() bool {
		return f.metricWith(t, "dpiawatch_web_accounts_loads_total", "outcome", "failure") >= 1
	})
	if got := f.tryLogin(t, "192.0.2.11", "", "ig", newPassword).Code; got != http.StatusSeeOther {
		t.Errorf("after a broken file, ig's password in force: %d", got)
	}
	if !open(c) {
		t.Error("a broken file ended a session")
	}

	// An empty file is refused the same way; `users: []` is taken, and
	// locks every local account out.
	replace := func(content string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	failures := f.metricWith(t, "dpiawatch_web_accounts_loads_total", "outcome", "failure")
	replace("# nothing here\n")
	testwait.For(t, 10*time.Second, "the empty file to be counted as a failed load", func() bool {
		return f.metricWith(t, "dpiawatch_web_accounts_loads_total", "outcome", "failure") > failures
	})
	if !open(c) {
		t.Error("an empty file ended a session")
	}
	replace("users: []\n")
	testwait.For(t, 10*time.Second, "users: [] to end the sessions", func() bool { return !open(c) && !open(sessions["other-org"]) })
	if got := f.tryLogin(t, "192.0.2.12", "", "ig", newPassword).Code; got != http.StatusUnauthorized {
		t.Errorf("after users: [], ig logs in: %d", got)
	}
}
