package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/demo"
	"github.com/dpiawatch/dpiawatch/evidence"
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
	// The store holds no completeness point: the feed has completed no
	// period, and the export says so.
	if !strings.Contains(out, "evidence pack for wiltshire-childrens-cms") ||
		!strings.Contains(out, "wiltshire-council: the data does not cover\n  2026-01-01 – 2026-03-31 (90 days): feed not complete for any period\n") {
		t.Errorf("export said %q", out)
	}
	if _, err := runEvidence(t, "export", "--config", cfgPath, "--dpia", "wiltshire-childrens-cms", "--from", "2026-01-01", "--to", "2026-03-31", "--out", pack); err == nil {
		t.Error("export wrote into a non-empty directory")
	}
	out, err = runEvidence(t, "verify", "--config", cfgPath, pack)
	if err != nil || !strings.Contains(out, "ok: ") || strings.Contains(out, "no trusted public key") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	pub := filepath.Join(dir, "keys", "evidence.key.pub")
	verifyExit := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(append([]string{"evidence", "verify"}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	// Without a trusted key, even an intact pack is not declared ok.
	if code, out := verifyExit(pack); code != exitFailure || strings.Contains(out, "ok: ") || !strings.Contains(out, "no trusted public key given") ||
		!strings.Contains(out, "--public-key FILE") {
		t.Errorf("verify without a trusted key: exit %d\n%s", code, out)
	}
	if code, out := verifyExit("--public-key", pub, pack); code != exitOK || !strings.Contains(out, "ok: ") {
		t.Errorf("verify of the intact pack: exit %d\n%s", code, out)
	}
	// Altered and signed again with another key: refused without a
	// trusted key, and against the right one.
	resigned := copyPack(t, pack)
	if err := os.WriteFile(filepath.Join(resigned, "risks.csv"), []byte("forged\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resignPack(t, resigned, "risks.csv")
	if code, out := verifyExit(resigned); code != exitFailure || strings.Contains(out, "ok: ") {
		t.Errorf("verify of a re-signed pack without a trusted key: exit %d\n%s", code, out)
	}
	if code, out := verifyExit("--public-key", pub, resigned); code != exitFailure || !strings.Contains(out, "key: manifest.json: signed with key") {
		t.Errorf("verify of a re-signed pack against the trusted key: exit %d\n%s", code, out)
	}
	// A manifest edit that keeps its meaning (a duplicate key) breaks the signature.
	dup := copyPack(t, pack)
	mp := filepath.Join(dup, evidence.ManifestName)
	b, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mp, bytes.Replace(b, []byte("{\n"), []byte("{\n  \"identities\": true,\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := verifyExit("--public-key", pub, dup); code != exitFailure || !strings.Contains(out, "signature: manifest.json") {
		t.Errorf("verify of a manifest with a duplicate key: exit %d\n%s", code, out)
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

// TestPrintUncovered: the export prints, per org, the ranges of days the
// pack does not cover, as the pack states them, at most ten per org.
func TestPrintUncovered(t *testing.T) {
	day := func(i int) string { return fmt.Sprintf("2026-03-%02d", i) }
	var many []evidence.DateRange
	for i := range 12 {
		many = append(many, evidence.DateRange{From: day(1 + 2*i), To: day(1 + 2*i), Days: 1, Reason: evidence.UncoveredNoData, Detail: "no data"})
	}
	cases := []struct {
		name string
		orgs []evidence.OrgCoverage
		want string
	}{
		{name: "covered", orgs: []evidence.OrgCoverage{{Org: "st-martins", CompleteUpTo: "2026-04-01T00:00:00Z", Uncovered: []evidence.DateRange{}}}},
		{name: "a day and the tail", orgs: []evidence.OrgCoverage{{Org: "st-martins", CompleteUpTo: "2026-03-28T12:00:00Z", Uncovered: []evidence.DateRange{
			{From: day(3), To: day(3), Days: 1, System: "pcs", Reason: evidence.UncoveredNoData, Detail: "no data from pcs"},
			{From: day(28), To: day(31), Days: 4, Reason: evidence.UncoveredFeedIncomplete, Detail: "feed not complete after 2026-03-28T12:00:00Z"}}}},
			want: "st-martins: the data does not cover\n  2026-03-03 (1 day): no data from pcs\n" +
				"  2026-03-28 – 2026-03-31 (4 days): feed not complete after 2026-03-28T12:00:00Z\n"},
		{name: "more than ten", orgs: []evidence.OrgCoverage{{Org: "wiltshire-council", Uncovered: many}},
			want: "wiltshire-council: the data does not cover\n" + func() string {
				var b strings.Builder
				for _, u := range many[:10] {
					b.WriteString("  " + u.From + " (1 day): no data\n")
				}
				return b.String()
			}() + "  … and 2 more ranges (report.html, coverage_ranges.csv)\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := json.Marshal(evidence.Report{Coverage: evidence.Coverage2{CompletenessRecorded: true, Orgs: c.orgs}})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "evidence.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := printUncovered(&out, dir); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Errorf("printed %q\nwant    %q", out.String(), c.want)
			}
		})
	}
}

func copyPack(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// resignPack does what a forger would: puts file's new SHA-256 in the
// manifest and signs it again with a key of their own.
func resignPack(t *testing.T, dir, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, evidence.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m evidence.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	for i := range m.Files {
		if m.Files[i].Path == file {
			m.Files[i].SHA256, m.Files[i].Bytes = hex.EncodeToString(sum[:]), int64(len(data))
		}
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	manifest, sig, err := m.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, evidence.ManifestName), manifest, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, evidence.SignatureName), sig, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEvidenceExportDemoDir: a demo's data directory (store and keys, as
// the demo leaves them) is enough to export with the shipped configuration
// and no dates: the last complete quarter, signed with the demo's key.
func TestEvidenceExportDemoDir(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{}
	if err := demo.UseDataDir(cfg, dir, true); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, demo.StoreFile)})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	shipped, err := filepath.Abs("../configs/dpiawatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pack := filepath.Join(t.TempDir(), "pack")
	out, err := runEvidence(t, "export", "--config", shipped, "--demo-dir", dir, "--dpia", "wiltshire-childrens-cms", "--out", pack)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	from, to, err := evidence.DefaultPeriod(loadShipped(t, shipped), "wiltshire-childrens-cms", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "evidence pack for wiltshire-childrens-cms, "+from+" to "+to) {
		t.Errorf("export said %q, want the period %s to %s", out, from, to)
	}
	if out, err := runEvidence(t, "verify", "--public-key", filepath.Join(dir, demo.EvidenceKeyFile+".pub"), pack); err != nil {
		t.Errorf("verify with the demo's public key: %v\n%s", err, out)
	}
	if _, err := runEvidence(t, "export", "--config", shipped, "--demo-dir", t.TempDir(), "--dpia", "wiltshire-childrens-cms", "--out", pack+"2"); err == nil {
		t.Error("export from a directory that holds no demo store succeeded")
	}
}

func loadShipped(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags.Errors())
	}
	return cfg
}
