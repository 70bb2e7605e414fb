package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/web"
)

func TestUserAdd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out}
		c := userCommand(e)
		c.SetArgs(args)
		c.SetOut(&out)
		c.SetErr(&out)
		err := c.Execute()
		return out.String(), err
	}
	if _, err := run("correct horse battery\n", "add", "--accounts", path, "--role", "manager", "--team", "webster-court", "mgr"); err != nil {
		t.Fatal(err)
	}
	out, err := run("", "add", "--accounts", path, "--role", "dpo", "--generate", "dpo")
	if err != nil || !strings.Contains(out, "password: ") {
		t.Fatalf("generate: %v %q", err, out)
	}
	if _, err := run("short\n", "add", "--accounts", path, "--role", "dpo", "x"); err == nil {
		t.Error("a short password was accepted")
	}
	if _, err := run("correct horse battery\n", "add", "--accounts", path, "--role", "manager", "m2"); err == nil {
		t.Error("a manager without a team was accepted")
	}
	a, err := web.LoadAccounts(path)
	if err != nil || a.Len() != 2 {
		t.Fatalf("accounts: %v", err)
	}
	if u, ok := a.Authenticate("mgr", "correct horse battery"); !ok || u.Teams[0] != "webster-court" {
		t.Errorf("mgr cannot log in: %+v", u)
	}
	pw := strings.TrimSpace(out[strings.Index(out, "password: ")+len("password: "):])
	if _, ok := a.Authenticate("dpo", pw); !ok {
		t.Error("the generated password does not log in")
	}
}

// TestUserRemoveDisable (issue 16, item 7): accounts can be removed,
// disabled and enabled again, and an unknown name is a clear usage error.
func TestUserRemoveDisable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out}
		c := userCommand(e)
		c.SetArgs(args)
		c.SetOut(&out)
		c.SetErr(&out)
		err := c.Execute()
		return out.String(), err
	}
	const pw = "correct horse battery"
	for _, u := range []string{"alice", "bob"} {
		if _, err := run(pw+"\n", "add", "--accounts", path, "--role", "ig-team", u); err != nil {
			t.Fatal(err)
		}
	}
	loginOK := func(user, pass string) bool {
		t.Helper()
		a, err := web.LoadAccounts(path)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := a.Authenticate(user, pass)
		return ok
	}
	steps := []struct {
		args    []string
		stdin   string
		wantErr string // "" : succeeds
		alice   bool   // alice can log in afterwards
		bob     bool
	}{
		{args: []string{"disable", "alice"}, alice: false, bob: true},
		// A new password does not enable a disabled account.
		{args: []string{"add", "--role", "dpo", "alice"}, stdin: pw + "\n", alice: false, bob: true},
		{args: []string{"enable", "alice"}, alice: true, bob: true},
		{args: []string{"remove", "bob"}, alice: true, bob: false},
		{args: []string{"remove", "bob"}, wantErr: `no account "bob" in ` + path, alice: true},
		{args: []string{"disable", "carol"}, wantErr: `no account "carol" in ` + path, alice: true},
		{args: []string{"enable", "carol"}, wantErr: `no account "carol" in ` + path, alice: true},
	}
	for _, s := range steps {
		out, err := run(s.stdin, append(s.args, "--accounts", path)...)
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		case s.wantErr != "" && (err == nil || err.Error() != s.wantErr):
			t.Fatalf("%v: error %v, want %q", s.args, err, s.wantErr)
		}
		if got := loginOK("alice", pw); got != s.alice {
			t.Errorf("after %v: alice logs in %v, want %v", s.args, got, s.alice)
		}
		if got := loginOK("bob", pw); got != s.bob {
			t.Errorf("after %v: bob logs in %v, want %v", s.args, got, s.bob)
		}
	}
	a, err := web.LoadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := a.Lookup("alice"); !ok || u.Role != web.RoleDPO || u.Disabled {
		t.Errorf("alice after the steps: %+v", u)
	}
	if _, err := run("", "remove", "--accounts", filepath.Join(t.TempDir(), "none.yaml"), "x"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("remove from a missing file: %v", err)
	}
}
