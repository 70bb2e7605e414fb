package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadWithoutChecks: a program that forgot to install the checks
// (checks/install) cannot load a configuration, instead of running none.
// The external tests install them; this one empties the registry while it
// runs.
func TestLoadWithoutChecks(t *testing.T) {
	checksMu.Lock()
	saved := checkTypes
	checkTypes = nil
	checksMu.Unlock()
	t.Cleanup(func() {
		checksMu.Lock()
		checkTypes = saved
		checksMu.Unlock()
	})
	dpia, err := filepath.Abs("../configs/dpia/st-martins-webster-court.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "c.yaml")
	body := "dpias:\n  - file: " + dpia + "\norgs:\n  - {id: st-martins, dpia: st-martins-webster-court}\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := Load(p)
	if cfg != nil || !diags.HasErrors() || !strings.Contains(diags.String(), "no checks are registered") {
		t.Fatalf("Load without registered checks = %v, %s; want refused", cfg != nil, diags)
	}
}
