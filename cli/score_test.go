package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A week of St Martins that holds Good Friday, so every out-of-hours pattern
// is injected.
var scoreWeek = []string{"simulate", "--score", "--org", "st-martins", "--from", "2026-03-30", "--days", "7"}

type scoreJSON struct {
	Checks []struct {
		Check     string   `json:"check"`
		Episodes  int      `json:"episodes"`
		Alerts    int      `json:"alerts"`
		Precision *float64 `json:"precision"`
		Recall    *float64 `json:"recall"`
		Patterns  []struct {
			Pattern  string `json:"pattern"`
			Episodes int    `json:"episodes"`
		} `json:"patterns"`
	} `json:"checks"`
}

func TestSimulateScorePrintsTable(t *testing.T) {
	code, out, errOut := run(t, "", append(scoreWeek, "--config", shippedConfig)...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"check / pattern", "precision", "recall", "\n  out-of-hours ", "\n    bank-holiday ", "\n    outside-shift ", "\n    outside-working-hours "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "simulate --score: ") {
		t.Errorf("stderr lacks the summary:\n%s", errOut)
	}
}

// TestSimulateScoreThresholds gates on the measured numbers: the lowest
// precision and recall of the shipped configuration pass as thresholds, and
// a configuration with no shift grace (which flags the carers who start a
// few minutes early) fails a precision of 0.95 on out-of-hours.
func TestSimulateScoreThresholds(t *testing.T) {
	code, out, errOut := run(t, "", append(scoreWeek, "--config", shippedConfig, "--json")...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var rep scoreJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	minP, minR := 1.0, 1.0
	ooh := false
	for _, c := range rep.Checks {
		if c.Episodes == 0 {
			continue
		}
		if c.Check == "out-of-hours" {
			ooh = len(c.Patterns) == 3
		}
		if c.Precision != nil {
			minP = min(minP, *c.Precision)
		}
		if c.Recall != nil {
			minR = min(minR, *c.Recall)
		}
	}
	if !ooh {
		t.Fatalf("no out-of-hours row with its three patterns:\n%s", out)
	}
	p, r := strconv.FormatFloat(minP, 'f', -1, 64), strconv.FormatFloat(minR, 'f', -1, 64)
	if code, _, errOut := run(t, "", append(scoreWeek, "--config", shippedConfig, "--min-precision", p, "--min-recall", r)...); code != 0 {
		t.Errorf("thresholds at the measured minimum (%s, %s): exit %d, stderr:\n%s", p, r, code, errOut)
	}

	strict := configWith(t, "    grace: 30m ", "    grace: 0m ")
	code, out, errOut = run(t, "", append(scoreWeek, "--config", strict, "--min-precision", "0.95")...)
	if code != exitFailure || !strings.Contains(errOut, "out-of-hours: precision") || !strings.Contains(out, "out-of-hours") {
		t.Errorf("no grace, --min-precision 0.95: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if code, _, errOut := run(t, "", append(scoreWeek, "--config", strict)...); code != 0 {
		t.Errorf("no thresholds: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestSimulateScoreOutMatchesReplay checks that --score runs what replay
// runs: the alerts it leaves in --out are those replay writes from the
// files it leaves beside them.
func TestSimulateScoreOutMatchesReplay(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "", append(scoreWeek, "--config", shippedConfig, "--out", dir)...); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	replayed := filepath.Join(dir, "replayed.jsonl")
	if code, _, errOut := run(t, "", "replay", "--config", shippedConfig, "--reference", filepath.Join(dir, "reference"),
		"--events", filepath.Join(dir, "events.jsonl"), "--alerts-out", replayed); code != 0 {
		t.Fatalf("replay: exit %d, stderr:\n%s", code, errOut)
	}
	got, err := os.ReadFile(filepath.Join(dir, "alerts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(replayed)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || string(got) != string(want) {
		t.Errorf("alerts of --score (%d bytes) differ from replay's (%d bytes)", len(got), len(want))
	}
	if fi, err := os.Stat(filepath.Join(dir, "labels.jsonl")); err != nil || fi.Size() == 0 {
		t.Errorf("labels.jsonl: %v", err)
	}
}

func TestSimulateScoreUsage(t *testing.T) {
	for _, args := range [][]string{
		{"simulate", "--out", t.TempDir(), "--json"},
		{"simulate", "--out", t.TempDir(), "--min-recall", "0.9"},
		{"simulate", "--score", "--kafka", "127.0.0.1:1"},
		{"simulate", "--score", "--min-precision", "1.5"},
	} {
		if code, _, errOut := run(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, errOut)
		}
	}
}

// configWith writes the shipped configuration with old replaced by new,
// its DPIA files referred to by absolute path.
func configWith(t *testing.T, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	dpiaDir, err := filepath.Abs("../configs/dpia")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, old) {
		t.Fatalf("shipped configuration lacks %q", old)
	}
	s = strings.ReplaceAll(s, old, new)
	s = strings.ReplaceAll(s, "file: dpia/", "file: "+dpiaDir+"/")
	path := filepath.Join(t.TempDir(), "dpiawatch.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
