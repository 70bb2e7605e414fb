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
