package evidence

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/dpia"
)

var updateSummaries = flag.Bool("update-summaries", false, "rewrite testdata/golden/*/settings.txt")

// TestPoissonInterval checks the exact interval against published values
// (Garwood 1936; e.g. Ulm 1990's table): 0 → [0, 3.689], 1 → [0.0253,
// 5.572], 10 → [4.795, 18.39], 33 → [22.72, 46.34].
func TestPoissonInterval(t *testing.T) {
	for _, c := range []struct {
		k      int64
		lo, hi float64
	}{{0, 0, 3.689}, {1, 0.0253, 5.572}, {10, 4.795, 18.39}, {33, 22.72, 46.34}} {
		lo, hi := poissonInterval(c.k)
		if d := lo - c.lo; d > 0.005 || d < -0.005 {
			t.Errorf("k=%d: low %.4f, want %.4f", c.k, lo, c.lo)
		}
		if d := hi - c.hi; d > 0.01 || d < -0.01 {
			t.Errorf("k=%d: high %.4f, want %.4f", c.k, hi, c.hi)
		}
	}
}

// TestStatus: red above the residual score, amber when the undecided
// alerts could lift it above, green when even they could not, grey when
// there is nothing to weigh — the DPIA's score missing included.
func TestStatus(t *testing.T) {
	risk := func(confirmed, undecided int64, residual string, checks ...string) RiskReport {
		k := RiskReport{Checks: checks, Backlog: Backlog{Alerts: undecided}}
		k.Observed = observe(confirmed, 10000, true, residual, undecided, len(checks) > 0)
		return k
	}
	for _, c := range []struct {
		name  string
		k     RiskReport
		want  string
		lower bool
	}{
		{"above low", risk(2, 0, "low", "c"), StatusRed, false},
		{"within low, backlog could lift it", risk(0, 1, "low", "c"), StatusAmber, true},
		{"within medium even with the backlog", risk(2, 3, "medium", "c"), StatusGreen, true},
		{"at the medium ceiling", risk(10, 0, "medium", "c"), StatusRed, false},
		{"no check", risk(5, 0, "low"), StatusGrey, false},
		{"not scored", risk(5, 0, "", "c"), StatusGrey, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := status(c.k)
			if s.RAG != c.want || s.LowerBound != c.lower || s.Reason == "" {
				t.Errorf("status %+v, want %s (lower bound %v)", s, c.want, c.lower)
			}
		})
	}
	if s := status(risk(5, 0, "", "c")); !strings.Contains(s.Reason, NotScored) {
		t.Errorf("a risk the DPIA did not score: %q", s.Reason)
	}
}

// TestDefaultPeriod: the last complete calendar quarter in the DPIA's
// timezone, or the register's own review cycle.
func TestDefaultPeriod(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Orgs: []config.Org{{ID: "o", DPIA: "d", Location: london}}}
	for _, c := range []struct {
		freq, now, from, to string
	}{
		{"1/4ly whilst development project is still running", "2026-04-02T09:00:00Z", "2026-01-01", "2026-03-31"},
		{"", "2026-01-01T00:30:00Z", "2025-10-01", "2025-12-31"},
		// 23:30 UTC on 31 March is 00:30 BST on 1 April: Q1 is complete.
		{"", "2026-03-31T23:30:00Z", "2026-01-01", "2026-03-31"},
		{"annually", "2026-05-10T12:00:00Z", "2025-01-01", "2025-12-31"},
		{"monthly", "2026-05-10T12:00:00Z", "2026-04-01", "2026-04-30"},
		{"every six months", "2026-05-10T12:00:00Z", "2025-07-01", "2025-12-31"},
	} {
		cfg.Registers = map[string]*dpia.Register{"d": {ID: "d", Review: dpia.Review{Frequency: c.freq}}}
		now, _ := time.Parse(time.RFC3339, c.now)
		from, to, err := DefaultPeriod(cfg, "d", now)
		if err != nil || from != c.from || to != c.to {
			t.Errorf("%q at %s: %s to %s (%v), want %s to %s", c.freq, c.now, from, to, err, c.from, c.to)
		}
	}
}

// TestPeriodBefore: a quarter's previous period is the quarter before,
// whatever its length; other periods step back by their days.
func TestPeriodBefore(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	q := newPeriod(time.Date(2026, 1, 1, 0, 0, 0, 0, london), 90, london)
	p := periodBefore(q, london)
	if p.info.From != "2025-10-01" || p.info.To != "2025-12-31" || p.info.Days != 92 {
		t.Errorf("before Q1 2026: %+v", p.info)
	}
	f := newPeriod(time.Date(2026, 3, 16, 0, 0, 0, 0, london), 14, london)
	if p := periodBefore(f, london); p.info.From != "2026-03-02" || p.info.To != "2026-03-15" {
		t.Errorf("before a fortnight: %+v", p.info)
	}
}

// TestSettingsSummary keeps each check's plain-words summary for both
// DPIAs in testdata/golden/<org>/settings.txt
// (go test ./evidence -run TestSettingsSummary -update-summaries), and
// checks that no summary reads like configuration.
func TestSettingsSummary(t *testing.T) {
	cfg, diags := config.Load(filepath.Join("testdata", "dpiawatch.yaml"))
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags.Errors())
	}
	for _, c := range []struct{ org, dpia string }{{"st-martins", "st-martins-webster-court"}, {"wiltshire-council", "wiltshire-childrens-cms"}} {
		var b strings.Builder
		for _, ci := range checkInfos(cfg, c.dpia) {
			b.WriteString(ci.Name + ": " + ci.Summary + "\n")
			for _, bad := range []string{"[", "_", "0s", "{", "latitude"} {
				if strings.Contains(ci.Summary, bad) {
					t.Errorf("%s %s: summary holds %q: %s", c.org, ci.Name, bad, ci.Summary)
				}
			}
		}
		path := filepath.Join("testdata", "golden", c.org, "settings.txt")
		if *updateSummaries {
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./evidence -run TestSettingsSummary -update-summaries)", err)
		}
		if b.String() != string(want) {
			t.Errorf("%s: summaries differ from %s:\n%s", c.org, path, b.String())
		}
	}
}
