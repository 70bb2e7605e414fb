package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/config"
)

// TestResolveSecrets: with ResolveSecrets, every secret is read as the
// daemon will read it, and each that would fail is reported at its key with
// file and line, never with its value (issue 16, item 11).
func TestResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	write("soc-bot", "tok-soc-bot-value\n", 0o600)
	write("siem", "tok-soc-bot-value", 0o600) // the same token as soc-bot
	write("empty", " \n", 0o600)
	write("world", "tok-world-readable-value", 0o644)
	t.Setenv("DPIAWATCH_TEST_BLANK", "  ")
	dpiaFile, _ := filepath.Abs("../configs/dpia/st-martins-webster-court.yaml")
	cfgText := `dpias:
  - file: ` + dpiaFile + `
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
checks:
  out-of-hours:
    evidences: {st-martins-webster-court: [R1, R2, R3, R4]}
alerting:
  pseudonym_key: {env: DPIAWATCH_TEST_UNSET}
  slack: {channel: "#ig", token: {env: DPIAWATCH_TEST_UNSET_SLACK}}
  api:
    clients:
      - {name: soc-bot, token: {file: soc-bot}}
      - {name: siem, token: {file: siem}}
      - {name: missing, token: {file: no-such-file}}
      - {name: empty, token: {file: empty}}
      - {name: blank, token: {env: DPIAWATCH_TEST_BLANK}}
      - {name: world, token: {file: world}}
  route: {receiver: console}
`
	path := filepath.Join(dir, "dpiawatch.yaml")
	write("dpiawatch.yaml", cfgText, 0o600)

	// Without resolving, the file alone is fine.
	if _, diags := config.Load(path); diags.HasErrors() {
		t.Fatalf("Load without resolving:\n%s", diags)
	}
	cfg, diags := config.LoadWith(path, config.LoadOptions{ResolveSecrets: true})
	if cfg != nil {
		t.Error("configuration with unresolvable secrets loaded")
	}
	var got []string
	for _, d := range diags {
		if !strings.Contains(d.Path, "orgs[0]") { // the DPIA coverage warnings
			got = append(got, strings.TrimPrefix(d.String(), dir+"/"))
		}
		if strings.Contains(d.String()+d.Value, "tok-") {
			t.Errorf("diagnostic reveals a secret: %s", d)
		}
	}
	want := []string{
		`dpiawatch.yaml:9:18: alerting.pseudonym_key: environment variable DPIAWATCH_TEST_UNSET is not set`,
		`dpiawatch.yaml:10:34: warning: alerting.slack.token: environment variable DPIAWATCH_TEST_UNSET_SLACK is not set: the built-in Slack receiver is off (it is on only when its token resolves)`,
		`dpiawatch.yaml:14:29: alerting.api.clients[1].token: file:` + dir + `/siem gives the same token as alerting.api.clients[0].token: each API client needs a token of its own, or it cannot be told apart`,
		`dpiawatch.yaml:15:32: alerting.api.clients[2].token: cannot read secret file ` + dir + `/no-such-file: no such file or directory`,
		`dpiawatch.yaml:16:30: alerting.api.clients[3].token: secret file ` + dir + `/empty is empty`,
		`dpiawatch.yaml:17:30: alerting.api.clients[4].token: environment variable DPIAWATCH_TEST_BLANK is empty`,
		`dpiawatch.yaml:18:30: warning: alerting.api.clients[5].token: secret file ` + dir + `/world has mode 0644: users other than its owner may read or change it (chmod 600 it, owned by the daemon's user)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
