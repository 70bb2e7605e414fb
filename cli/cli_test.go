package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

const shippedConfig = "../configs/dpiawatch.yaml"

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestEverySubcommandHasHelp(t *testing.T) {
	for _, cmd := range []string{"run", "demo", "replay", "backtest", "simulate", "check-config", "bench", "version"} {
		t.Run(cmd, func(t *testing.T) {
			code, out, _ := run(t, "", cmd, "--help")
			if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "dpiawatch "+cmd) {
				t.Errorf("%s --help: exit %d, output:\n%s", cmd, code, out)
			}
		})
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	if code, _, errOut := run(t, "", "frobnicate"); code != exitUsage || !strings.Contains(errOut, "unknown command") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := run(t, "", "replay", "--no-such-flag"); code != exitUsage {
		t.Errorf("unknown flag: exit %d, want %d", code, exitUsage)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "dpiawatch ") {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestCheckConfigShipped(t *testing.T) {
	code, out, _ := run(t, "", "check-config", shippedConfig)
	if code != 0 || !strings.Contains(out, "OK (") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

// TestCheckConfigReportsEveryError checks that a broken configuration fails
// with every problem listed, each with file, line, column and key.
func TestCheckConfigReportsEveryError(t *testing.T) {
	dir := t.TempDir()
	dpiaDir, _ := filepath.Abs("../configs/dpia")
	broken := `dpias:
  - file: ` + dpiaDir + `/st-martins-webster-court.yaml
orgs:
  - id: st-martins
    dpia: st-martins-webster-court
    timezone: Europe/Londno
checks:
  out-of-hours:
    grace: 30 minutes
    evidences:
      st-martins-webster-court: [R9]
    colour: blue
`
	path := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "", "check-config", path)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`broken\.yaml:6:15: orgs\[0\]\.timezone: .*Europe/Londno`),
		regexp.MustCompile(`broken\.yaml:9:12: checks\.out-of-hours\.grace: "30 minutes" is not a duration`),
		regexp.MustCompile(`broken\.yaml:11:34: checks\.out-of-hours\.evidences\.st-martins-webster-court\[0\]: unknown risk "R9"`),
		regexp.MustCompile(`broken\.yaml:12:5: checks\.out-of-hours\.colour: unknown key`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "error(s)") {
		t.Errorf("stderr %q lacks the summary", errOut)
	}
}

// TestSimulateThenReplay runs CONTRACT §5 end to end: simulated events, in
// shuffled order, with bad lines and a FHIR AuditEvent among them.
func TestSimulateThenReplay(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := run(t, "", "simulate", "--org", "st-martins", "--from", "2026-03-23", "--days", "7", "--seed", "3", "--out", dir)
	if code != 0 {
		t.Fatalf("simulate: exit %d: %s", code, errOut)
	}
	events, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(events)), "\n")

	// In order, as simulated.
	inOrder := replayFile(t, dir, "in-order", lines, nil)
	if len(inOrder) == 0 {
		t.Fatal("no alerts: the simulation injects out-of-hours misuse, the check must find it")
	}

	// Shuffled, with duplicates and bad lines: the same alerts.
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(lines)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	shuffled = append(shuffled, lines[:50]...) // replays of the same events
	bad := map[int]string{
		3:  `{"id": "truncated`,
		10: `{"id":"x1","time":"2026-03-24T10:00:00","org":"st-martins","system":"logmycare","action":"view","actor":{"id":"u-01"},"subject":{"id":"c-1"}}`,
		20: `not json at all`,
	}
	var withBad []string
	for _, l := range shuffled {
		if b, ok := bad[len(withBad)+1]; ok {
			withBad = append(withBad, b)
		}
		withBad = append(withBad, l)
	}
	var stderr string
	got := replayFile(t, dir, "shuffled", withBad, &stderr)
	for n := range bad {
		if !regexp.MustCompile(`(?m)^line ` + strconv.Itoa(n) + `: `).MatchString(stderr) {
			t.Errorf("stderr does not report bad line %d:\n%s", n, stderr)
		}
	}
	if !strings.Contains(stderr, "3 bad lines") || !strings.Contains(stderr, "50 duplicates") {
		t.Errorf("summary does not count bad lines and duplicates: %s", stderr)
	}
	if !slices.Equal(got, inOrder) {
		t.Errorf("shuffled input gave other alerts:\n got %v\nwant %v", got, inOrder)
	}

	// In a memory budget of a few events, spilled to disk and merged: the
	// same alerts, bad lines and duplicates (issue 14, item 1).
	spill := t.TempDir()
	var spilledErr string
	spilledGot := replayFile(t, dir, "shuffled-spilled", withBad, &spilledErr, "--memory", "16KiB", "--spill-dir", spill)
	if !slices.Equal(spilledGot, inOrder) {
		t.Errorf("spilled replay gave other alerts:\n got %v\nwant %v", spilledGot, inOrder)
	}
	spilledRuns := regexp.MustCompile(`\((\d+) runs spilled\)`).FindStringSubmatch(spilledErr)
	if spilledRuns == nil || spilledRuns[1] == "0" {
		t.Errorf("--memory 16KiB spilled nothing: %s", spilledErr)
	}
	summary := regexp.MustCompile(`(?m)^replay: \d+ lines, .* bad lines, \d+ alerts`)
	badLines := regexp.MustCompile(`(?m)^line \d+: .*$`)
	if summary.FindString(spilledErr) != summary.FindString(stderr) ||
		!slices.Equal(badLines.FindAllString(spilledErr, -1), badLines.FindAllString(stderr, -1)) {
		t.Errorf("spilled replay reported otherwise:\n%s\nin memory:\n%s", spilledErr, stderr)
	}
	if left, err := os.ReadDir(spill); err != nil || len(left) != 0 {
		t.Errorf("spill directory not emptied: %v %v", left, err)
	}

	// The serial path (--parallel 1), in memory and spilled: the same.
	for _, args := range [][]string{{"--parallel", "1"}, {"--parallel", "1", "--memory", "16KiB", "--spill-dir", spill}} {
		var serialErr string
		serialGot := replayFile(t, dir, "shuffled-serial", withBad, &serialErr, args...)
		if !slices.Equal(serialGot, inOrder) || summary.FindString(serialErr) != summary.FindString(stderr) ||
			!slices.Equal(badLines.FindAllString(serialErr, -1), badLines.FindAllString(stderr, -1)) {
			t.Errorf("%v: the serial replay differs:\n%s\nwant:\n%s", args, serialErr, stderr)
		}
	}

	// Every alert line has the CONTRACT §3 fields, and the whole output is
	// stable (golden).
	golden := filepath.Join("testdata", "replay-st-martins.golden.jsonl")
	body := strings.Join(inOrder, "\n") + "\n"
	for _, l := range inOrder {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "check", "pattern", "severity", "org", "actor_id", "subject_id", "first_seen", "last_seen", "event_ids", "dpia", "risks", "explanation"} {
			if _, ok := m[k]; !ok {
				t.Errorf("alert lacks %q: %s", k, l)
			}
		}
	}
	if *update {
		if err := os.WriteFile(golden, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != body {
		t.Errorf("alerts differ from %s (run with -update if the change is intended)", golden)
	}
}

// TestReplayMemoryFlag: --memory takes human sizes; anything else is a
// usage error, as is a --parallel outside 1 to 64.
func TestReplayMemoryFlag(t *testing.T) {
	out := filepath.Join(t.TempDir(), "alerts.jsonl")
	for _, c := range []struct {
		memory string
		code   int
	}{{"lots", exitUsage}, {"0", exitUsage}, {"-1MiB", exitUsage}, {"64KiB", 0}, {"1GiB", 0}, {"300000000", 0}} {
		code, _, errOut := run(t, "", "replay", "--config", shippedConfig, "--events", "-", "--alerts-out", out, "--memory", c.memory)
		if code != c.code || (c.code == exitUsage && !strings.Contains(errOut, "--memory: ")) {
			t.Errorf("--memory %s: exit %d, want %d; stderr %s", c.memory, code, c.code, errOut)
		}
	}
	for _, p := range []string{"0", "-1", "65"} {
		code, _, errOut := run(t, "", "replay", "--config", shippedConfig, "--events", "-", "--alerts-out", out, "--parallel", p)
		if code != exitUsage || !strings.Contains(errOut, "--parallel: ") {
			t.Errorf("--parallel %s: exit %d; stderr %s", p, code, errOut)
		}
	}
}

func TestReplayFHIRFromStdin(t *testing.T) {
	fhir, err := os.ReadFile("../event/testdata/fhir/read-care-plan.json")
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, fhir); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "alerts.jsonl")
	code, _, errOut := run(t, compact.String()+"\n", "replay", "--config", shippedConfig, "--events", "-", "--alerts-out", out,
		"--fhir-org", "wiltshire-council", "--fhir-system", "liquidlogic")
	if code != 0 || !strings.Contains(errOut, "1 events, 0 duplicates, 0 bad lines") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}

	// A Bundle line read as the shipped fhir-audit topic reads it: one
	// event per entry, each bad entry reported with its FHIR path.
	bundle, err := os.ReadFile("../event/testdata/fhir-bundle/searchset.json")
	if err != nil {
		t.Fatal(err)
	}
	compact.Reset()
	if err := json.Compact(&compact, bundle); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run(t, compact.String()+"\n", "replay", "--config", shippedConfig, "--events", "-", "--alerts-out", out,
		"--format", "fhir", "--fhir-topic", "fhir-audit", "--now", "2026-03-03T00:00:00Z")
	if code != 0 || !strings.Contains(errOut, "1 lines, 2 events, 0 duplicates, 1 bad lines") ||
		!strings.Contains(errOut, "line 1: unsupported: Bundle.entry[2].resource.type: code 110100") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func replayFile(t *testing.T, dir, name string, lines []string, stderr *string, args ...string) []string {
	t.Helper()
	in := filepath.Join(dir, name+".jsonl")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+"-alerts.jsonl")
	code, _, errOut := run(t, "", append([]string{"replay", "--config", shippedConfig, "--reference", filepath.Join(dir, "reference"), "--events", in, "--alerts-out", out}, args...)...)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	if stderr != nil {
		*stderr = errOut
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var alerts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		alerts = append(alerts, sc.Text())
	}
	return alerts
}
