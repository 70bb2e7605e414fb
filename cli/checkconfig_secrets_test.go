package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCheckConfigResolvesSecrets: check-config reads every secret as the
// daemon will; a missing secret file fails it, named with file:line:key, a
// secret file others may read is warned about, and no secret value is
// printed (issue 16, item 11). run refuses the same configuration at start.
func TestCheckConfigResolvesSecrets(t *testing.T) {
	dir := t.TempDir()
	dpiaFile, _ := filepath.Abs("../configs/dpia/st-martins-webster-court.yaml")
	world := filepath.Join(dir, "world-readable-token")
	if err := os.WriteFile(world, []byte("tok-visible-to-all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(world, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `dpias:
  - file: ` + dpiaFile + `
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
ingest:
  kafka: {brokers: ["127.0.0.1:1"], topics: [{name: access-events}]}
checks:
  out-of-hours:
    evidences: {st-martins-webster-court: [R1, R2, R3, R4]}
alerting:
  api:
    token:
      file: world-readable-token
    slack_signing_secret:
      file: missing-signing-secret
  route: {receiver: console}
`
	path := filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "", "check-config", path)
	if code != exitUsage {
		t.Fatalf("check-config: exit %d, want %d; output:\n%s", code, exitUsage, out)
	}
	wantErr := regexp.MustCompile(`secrets\.yaml:15:7: alerting\.api\.slack_signing_secret: cannot read secret file ` + regexp.QuoteMeta(filepath.Join(dir, "missing-signing-secret")) + `: no such file or directory`)
	wantWarn := regexp.MustCompile(`secrets\.yaml:13:7: warning: alerting\.api\.token: secret file ` + regexp.QuoteMeta(world) + ` has mode 0644`)
	for _, want := range []*regexp.Regexp{wantErr, wantWarn} {
		if !want.MatchString(out) {
			t.Errorf("check-config output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "tok-visible-to-all") {
		t.Errorf("check-config printed a secret:\n%s%s", out, errOut)
	}

	code, _, errOut = run(t, "", "run", "--config", path)
	if code != exitUsage || !wantErr.MatchString(errOut) || !wantWarn.MatchString(errOut) {
		t.Errorf("run: exit %d, want %d with the same diagnostics; stderr:\n%s", code, exitUsage, errOut)
	}
}
