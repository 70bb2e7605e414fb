package demo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dpiawatch/dpiawatch/web"
)

// TestDemoAccountKeepsOthers (issue 13, set-up): starting the demo again on
// a data directory keeps the accounts `dpiawatch user add` put there,
// disabled ones included, and gives the demo's own account a new password;
// an accounts file that does not parse is left as it is, with an error.
func TestDemoAccountKeepsOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	hash, err := web.HashPassword("alice's password", web.DefaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	set, err := web.LoadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []web.Account{
		{Username: "alice", Role: "ig-team", Password: hash},
		{Username: "bob", Role: "manager", Teams: []string{"webster-court"}, Password: hash, Disabled: true},
	} {
		if err := set.Put(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Save(path); err != nil {
		t.Fatal(err)
	}

	first, err := demoAccount(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := demoAccount(path) // the demo restarted
	if err != nil {
		t.Fatal(err)
	}
	if first.Password == second.Password {
		t.Error("the demo account kept its password across runs; it is new each run")
	}
	got, err := web.LoadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Authenticate("alice", "alice's password"); !ok {
		t.Error("alice, added with user add, can no longer sign in after the demo restarted")
	}
	if b, ok := got.Lookup("bob"); !ok || !b.Disabled || b.Role != "manager" || len(b.Teams) != 1 {
		t.Errorf("bob = %+v, %v; want kept, still disabled", b, ok)
	}
	if _, ok := got.Authenticate("demo", second.Password); !ok {
		t.Error("the demo's new password does not sign in")
	}
	if _, ok := got.Authenticate("demo", first.Password); ok {
		t.Error("the demo's previous password still signs in")
	}
	if got.Len() != 3 {
		t.Errorf("%d accounts, want alice, bob and demo", got.Len())
	}

	broken := []byte("users: [{username: alice, role: ig-team\n")
	if err := os.WriteFile(path, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := demoAccount(path); err == nil {
		t.Error("an accounts file that does not parse was accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != string(broken) {
		t.Errorf("a broken accounts file was overwritten:\n%s", b)
	}
}
