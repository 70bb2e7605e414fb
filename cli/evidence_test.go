package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

func runEvidence(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &bytes.Buffer{}, logLevel: "error"}
	c := evidenceCommand(e)
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&bytes.Buffer{})
	err := c.ExecuteContext(context.Background())
	return out.String(), err
}

// TestEvidenceCommands: keygen, export from an (empty) embedded store,
// verify against the configured public key, and a tampered pack failing.
func TestEvidenceCommands(t *testing.T) {
	dir := t.TempDir()
	if _, err := runEvidence(t, "keygen", "--out", filepath.Join(dir, "keys", "evidence.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := runEvidence(t, "keygen", "--out", filepath.Join(dir, "keys", "evidence.key")); err == nil {
		t.Error("keygen overwrote a key")
	}
	dpia, err := filepath.Abs("../configs/dpia/wiltshire-childrens-cms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	cfg := `dpias: [{file: ` + dpia + `}]
orgs: [{id: wiltshire-council, dpia: wiltshire-childrens-cms}]
store: {embedded: {path: store.db}}
checks:
  out-of-hours:
    evidences: {wiltshire-childrens-cms: [R1]}
evidence:
  signing_key: {file: keys/evidence.key}
  public_key: keys/evidence.key.pub
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, "store.db")})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	pack := filepath.Join(dir, "pack")
	out, err := runEvidence(t, "export", "--config", cfgPath, "--dpia", "wiltshire-childrens-cms", "--from", "2026-01-01", "--to", "2026-03-31", "--out", pack)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if !strings.Contains(out, "evidence pack for wiltshire-childrens-cms") {
		t.Errorf("export said %q", out)
	}
	if _, err := runEvidence(t, "export", "--config", cfgPath, "--dpia", "wiltshire-childrens-cms", "--from", "2026-01-01", "--to", "2026-03-31", "--out", pack); err == nil {
		t.Error("export wrote into a non-empty directory")
	}
	out, err = runEvidence(t, "verify", "--config", cfgPath, pack)
	if err != nil || !strings.Contains(out, "ok: ") || strings.Contains(out, "no trusted public key") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(pack, "risks.csv"), []byte("changed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runEvidence(t, "verify", "--public-key", filepath.Join(dir, "keys", "evidence.key.pub"), pack)
	if err == nil || !strings.Contains(out, "altered: risks.csv") {
		t.Errorf("verify of a changed pack: %v\n%s", err, out)
	}
	if _, err := runEvidence(t, "export", "--config", cfgPath, "--dpia", "wiltshire-childrens-cms"); err == nil {
		t.Error("export without a period was accepted")
	}
}
