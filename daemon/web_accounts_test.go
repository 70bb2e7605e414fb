package daemon

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/testwait"
	"github.com/dpiawatch/dpiawatch/web"
)

// TestDaemonReloadsWebAccounts: the daemon runs the web UI's accounts
// reload, so that disabling an account in accounts_file ends its session
// without a restart (the web package tests the reload itself; this is the
// wiring).
func TestDaemonReloadsWebAccounts(t *testing.T) {
	dir := t.TempDir()
	const pass = "a long enough passphrase"
	hash, err := web.HashPassword(pass, web.PasswordParams{Memory: 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	accounts := filepath.Join(dir, "accounts.yaml")
	write := func(extra string) {
		t.Helper()
		body := "users:\n  - username: ig\n    role: ig-team\n    password: '" + hash + "'\n" + extra
		tmp := accounts + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, accounts); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	if err := os.WriteFile(filepath.Join(dir, "pseudonym.key"), []byte("pseudonym-key-for-tests-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	dpias, _ := filepath.Abs("../configs/dpia")
	cfgText := `dpias:
  - file: ` + dpias + `/st-martins-webster-court.yaml
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
store:
  embedded: {path: ` + filepath.Join(dir, "d.db") + `}
reference:
  dir: ` + dir + `
alerting:
  console: {enabled: false}
web:
  enabled: true
  accounts_file: ` + accounts + `
  pseudonym_key: {file: ` + filepath.Join(dir, "pseudonym.key") + `}
http:
  listen: 127.0.0.1:0
`
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	d, stop := startDaemon(t, cfgPath)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(d.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp, b.String()
	}
	_, body := get("/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the login page:\n%s", body)
	}
	resp, err := c.PostForm(d.URL()+"/login", url.Values{"csrf": {m[1]}, "username": {"ig"}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/overview" {
		t.Fatalf("login: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := get("/alerts"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the queue after login: %s", resp.Status)
	}

	write("    disabled: true\n")
	testwait.For(t, 15*time.Second, "the disabled account's session to stop opening the queue", func() bool {
		resp, _ := get("/alerts")
		return resp.StatusCode != http.StatusOK // sent to the login page: the session ended
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
