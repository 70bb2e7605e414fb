package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/backtest"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// TestBacktestKnownDiff fills an embedded store the daemon's way (Apply
// with the engine's Process, in event time) from a simulated week, then
// backtests it: with the same configuration the diff is empty; with
// another out-of-hours grace it holds exactly the out-of-hours alerts
// that replay, run with each configuration over the same events, tells
// apart — and nothing else.
func TestBacktestKnownDiff(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "", "simulate", "--org", "st-martins", "--from", "2026-03-23", "--days", "7", "--seed", "3", "--out", dir); code != 0 {
		t.Fatalf("simulate: exit %d: %s", code, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	db := filepath.Join(dir, "s.db")
	asShipped := testConfig(t, dir, "as-shipped.yaml", db, "grace: 30m")
	changed := testConfig(t, dir, "grace-0s.yaml", db, "grace: 0s")
	fillStore(t, asShipped, db, lines)

	// What each configuration raises over the same events, by replay.
	want := map[string]alert.Alert{}
	for _, a := range replayAlerts(t, dir, asShipped, lines) {
		want[a.ID] = a
	}
	var gotNew, gotChanged []string
	for _, a := range replayAlerts(t, dir, changed, lines) {
		s, ok := want[a.ID]
		switch {
		case !ok:
			gotNew = append(gotNew, a.Check+"/"+a.Pattern+" "+a.ID)
		case !slices.Equal(s.EventIDs, a.EventIDs) || !s.LastSeen.Equal(a.LastSeen) || s.Severity != a.Severity:
			gotChanged = append(gotChanged, a.Check+"/"+a.Pattern+" "+a.ID)
		}
	}
	if len(gotNew) == 0 {
		t.Fatal("a grace of 0s raises no more alerts than 30m over the simulated week: the test shows nothing")
	}
	for _, d := range append(slices.Clone(gotNew), gotChanged...) {
		if !strings.HasPrefix(d, "out-of-hours/") {
			t.Fatalf("the grace changed an alert of another check: %s", d)
		}
	}

	for _, c := range []struct {
		name        string
		with        string
		new, change []string
	}{
		{name: "same configuration", with: asShipped},
		{name: "grace 0s", with: changed, new: gotNew, change: gotChanged},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "diff.json")
			code, stdout, errOut := run(t, "", "backtest", "--config", asShipped, "--with", c.with,
				"--from", "2026-03-23", "--to", "2026-04-01", "--json", out, "--examples", "100000")
			if code != 0 {
				t.Fatalf("backtest: exit %d: %s", code, errOut)
			}
			var res backtest.Result
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			if res.Events != len(lines) {
				t.Errorf("re-judged %d events, the store holds %d", res.Events, len(lines))
			}
			var news, changes []string
			for _, g := range res.Groups {
				if g.Gone > 0 {
					t.Errorf("%s/%s: %d alerts gone, want none: %v", g.Check, g.Pattern, g.Gone, g.Example.Gone)
				}
				if g.Same+g.Changed+g.Gone != g.Stored || g.Same+g.Changed+g.New != g.Rerun {
					t.Errorf("%s/%s: counts do not add up: %+v", g.Check, g.Pattern, g)
				}
				for _, a := range g.Example.New {
					news = append(news, g.Check+"/"+g.Pattern+" "+a.ID)
				}
				for _, ch := range g.Example.Changed {
					changes = append(changes, g.Check+"/"+g.Pattern+" "+ch.Rerun.ID)
				}
			}
			slices.Sort(news)
			slices.Sort(changes)
			if !slices.Equal(news, sorted(c.new)) || !slices.Equal(changes, sorted(c.change)) {
				t.Errorf("diff:\n new %v\n changed %v\nwant\n new %v\n changed %v", news, changes, sorted(c.new), sorted(c.change))
			}
			if empty := len(c.new)+len(c.change) == 0; empty != strings.Contains(stdout, "no difference") {
				t.Errorf("table does not say whether there is a difference:\n%s", stdout)
			}
			if !strings.Contains(stdout, "out-of-hours") {
				t.Errorf("table lacks the out-of-hours row:\n%s", stdout)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// testConfig writes the shipped configuration with its embedded store at
// db, its reference data the simulation's, its DPIAs the shipped ones and
// grace as given.
func testConfig(t *testing.T, dir, name, db, grace string) string {
	t.Helper()
	b, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := filepath.Abs(filepath.Dir(shippedConfig))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "file: dpia/", "file: "+filepath.Join(shipped, "dpia")+"/")
	for _, r := range [][2]string{
		{"path: ../data/dpiawatch.db", "path: " + db},
		{"dir: ../reference", "dir: " + filepath.Join(dir, "reference")},
		{"grace: 30m                          # CONTRACT §4", grace},
	} {
		if strings.Count(s, r[0]) != 1 {
			t.Fatalf("shipped configuration has not exactly one %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fillStore stores the events as the daemon does: batches in event time,
// each applied with the checks' Process as its evaluation.
func fillStore(t *testing.T, cfgPath, db string, lines []string) {
	t.Helper()
	e := &env{stderr: os.Stderr}
	cfg, err := loadConfig(e, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	eng, _, err := offlineEngine(cfg, e.logger(), cfg.Reference.Dir, true)
	if err != nil {
		t.Fatal(err)
	}
	dec := event.NewDecoder(event.DecoderOptions{Format: event.FormatNative, MaxBytes: 1 << 20})
	events := make([]event.Event, len(lines))
	for i, l := range lines {
		if err := dec.Decode([]byte(l), &events[i]); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	slices.SortStableFunc(events, func(a, b event.Event) int { return a.Time.Compare(b.Time) })
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for b := range slices.Chunk(events, 500) {
		if _, err := st.Apply(ctx, b, nil, eng.Process); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return eng.Flush(), nil }); err != nil {
		t.Fatal(err)
	}
}

// replayAlerts replays the events with the configuration and its
// reference data.
func replayAlerts(t *testing.T, dir, cfgPath string, lines []string) []alert.Alert {
	t.Helper()
	in := filepath.Join(dir, "replay-in.jsonl")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "replay-out.jsonl")
	if code, _, errOut := run(t, "", "replay", "--config", cfgPath, "--reference", filepath.Join(dir, "reference"), "--events", in, "--alerts-out", out); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []alert.Alert
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var a alert.Alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		alerts = append(alerts, a)
	}
	return alerts
}

// TestBacktestOrg stores a simulated week of two orgs (St Martins and a
// small Wiltshire) in one store and backtests grace 0s with --org
// st-martins: only St Martins's events are re-judged and only its alerts
// compared, so the difference is exactly St Martins's share of what
// replay tells apart, though Wiltshire's share is not empty (without
// --org it appears, which the second case checks).
func TestBacktestOrg(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	perOrg := map[string]int{}
	for _, s := range []struct{ org, scale string }{{"st-martins", "1"}, {"wiltshire-council", "0.05"}} {
		out := filepath.Join(dir, s.org)
		if code, _, errOut := run(t, "", "simulate", "--org", s.org, "--from", "2026-03-23", "--days", "7", "--seed", "3", "--scale", s.scale, "--out", out); code != 0 {
			t.Fatalf("simulate %s: exit %d: %s", s.org, code, errOut)
		}
		raw, err := os.ReadFile(filepath.Join(out, "events.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		l := strings.Split(strings.TrimSpace(string(raw)), "\n")
		lines, perOrg[s.org] = append(lines, l...), len(l)
	}
	mergeReference(t, filepath.Join(dir, "reference"), filepath.Join(dir, "st-martins", "reference"), filepath.Join(dir, "wiltshire-council", "reference"))
	db := filepath.Join(dir, "s.db")
	asShipped := testConfig(t, dir, "as-shipped.yaml", db, "grace: 30m")
	changed := testConfig(t, dir, "grace-0s.yaml", db, "grace: 0s")
	fillStore(t, asShipped, db, lines)

	// What grace 0s adds, per org, by replay over the same events.
	before := map[string]bool{}
	for _, a := range replayAlerts(t, dir, asShipped, lines) {
		before[a.ID] = true
	}
	newByOrg := map[string][]string{}
	for _, a := range replayAlerts(t, dir, changed, lines) {
		if !before[a.ID] {
			newByOrg[a.Org] = append(newByOrg[a.Org], a.ID)
		}
	}
	if len(newByOrg["st-martins"]) == 0 || len(newByOrg["wiltshire-council"]) == 0 {
		t.Fatalf("grace 0s adds alerts in each org, or the test shows nothing: %v", newByOrg)
	}

	for _, c := range []struct {
		org    string
		events int
		new    []string
	}{
		{org: "st-martins", events: perOrg["st-martins"], new: newByOrg["st-martins"]},
		{org: "", events: len(lines), new: append(slices.Clone(newByOrg["st-martins"]), newByOrg["wiltshire-council"]...)},
	} {
		t.Run("org="+c.org, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "diff.json")
			args := []string{"backtest", "--config", asShipped, "--with", changed, "--from", "2026-03-23", "--to", "2026-04-01",
				"--json", out, "--examples", "100000"}
			if c.org != "" {
				args = append(args, "--org", c.org)
			}
			if code, _, errOut := run(t, "", args...); code != 0 {
				t.Fatalf("backtest: exit %d: %s", code, errOut)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var res backtest.Result
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			if res.Org != c.org || res.Events != c.events {
				t.Errorf("backtest of org %q re-judged %d events, want %d (org %q)", res.Org, res.Events, c.events, c.org)
			}
			var news []string
			for _, g := range res.Groups {
				if g.Gone+g.Changed > 0 {
					t.Errorf("%s/%s: %d gone, %d changed, want none", g.Check, g.Pattern, g.Gone, g.Changed)
				}
				for _, a := range g.Example.New {
					news = append(news, a.ID)
				}
				for _, a := range g.Example.New {
					if c.org != "" && a.Org != c.org {
						t.Errorf("alert %s of org %s in a backtest of %s", a.ID, a.Org, c.org)
					}
				}
			}
			if !slices.Equal(sorted(news), sorted(c.new)) {
				t.Errorf("new alerts %v, want %v", sorted(news), sorted(c.new))
			}
		})
	}
}

// mergeReference writes into dst each reference file of the srcs, their
// rows one after the other under the first's header: orgs' ids differ, so
// one directory holds both tenants.
func mergeReference(t *testing.T, dst string, srcs ...string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(srcs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		var merged []string
		for i, src := range srcs {
			b, err := os.ReadFile(filepath.Join(src, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			rows := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if i > 0 {
				if rows[0] != merged[0] {
					t.Fatalf("%s: headers differ: %q, %q", f.Name(), merged[0], rows[0])
				}
				rows = rows[1:]
			}
			merged = append(merged, rows...)
		}
		if err := os.WriteFile(filepath.Join(dst, f.Name()), []byte(strings.Join(merged, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
