package bulkaccess_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/checks/bulkaccess"
	_ "github.com/dpiawatch/dpiawatch/checks/install"
	"github.com/dpiawatch/dpiawatch/config"
)

func loadBulk(t *testing.T, section string) (*config.Config, config.Diagnostics) {
	t.Helper()
	dpia, err := filepath.Abs("../../configs/dpia/st-martins-webster-court.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := "dpias:\n  - file: " + dpia + "\norgs:\n  - {id: st-martins, dpia: st-martins-webster-court}\nchecks:\n  bulk-access:\n" + section
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.Load(p)
}

func TestBulkAccessConfig(t *testing.T) {
	cfg, diags := loadBulk(t, "    evidences: {st-martins-webster-court: [R4]}\n    overrides:\n      - {team: mash, multiplier: 4.5, min_subjects: 60}\n      - {role: ig-auditor, exempt: true}\n")
	if cfg == nil {
		t.Fatalf("load: %s", diags)
	}
	b := checks.SectionOf[*bulkaccess.Config](cfg, bulkaccess.Name)
	if !b.Enabled || b.Severity != "high" || b.Window.D() != time.Hour || b.MinSubjects != 20 || b.Multiplier != 3 ||
		b.BaselineDays != 28 || b.Quantile != 0.75 || b.MinHistoryDays != 5 || b.MinTeamSamples != 10 ||
		b.ColdStartSubjects != 30 || b.MaxTracked != 1000 || b.EpisodeGap.D() != time.Hour {
		t.Errorf("defaults: %+v", b)
	}
	if ov := b.Overrides; len(ov) != 2 || *ov[0].Multiplier != 4.5 || *ov[0].MinSubjects != 60 || !*ov[1].Exempt {
		t.Errorf("overrides: %+v", ov)
	}

	for _, tc := range []struct{ section, path, msg string }{
		{"    window: 25h\n", "checks.bulk-access.window", "at most 24h"},
		{"    min_subjects: 0\n", "checks.bulk-access.min_subjects", "between 1 and"},
		{"    multiplier: 0.5\n", "checks.bulk-access.multiplier", "at least 1"},
		{"    multiplier: lots\n", "checks.bulk-access.multiplier", "not a number"},
		{"    quantile: 1.5\n", "checks.bulk-access.quantile", "at most 1"},
		{"    baseline_days: 90\n", "checks.bulk-access.baseline_days", "between 1 and 60"},
		{"    severity: urgent\n", "checks.bulk-access.severity", "unknown severity"},
		{"    overrides: [{min_subjects: 5}]\n", "checks.bulk-access.overrides[0]", "at least one of org, role or team"},
		{"    overrides: [{role: a, team: b, exempt: true}]\n", "checks.bulk-access.overrides[0]", "at once"},
		{"    overrides: [{team: b, max_tracked: 1}]\n", "checks.bulk-access.overrides[0].max_tracked", "between 2 and"},
		{"    overrides: [{org: nowhere, exempt: true}]\n", "checks.bulk-access.overrides[0].org", "unknown org"},
		{"    windw: 1h\n", "checks.bulk-access.windw", "unknown key"},
	} {
		_, diags := loadBulk(t, tc.section)
		found := false
		for _, d := range diags {
			if d.Severity == config.SeverityError && d.Path == tc.path && strings.Contains(d.Message, tc.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: no error at %s about %q in\n%s", tc.section, tc.path, tc.msg, diags)
		}
	}

	shipped, diags := config.Load("../../configs/dpiawatch.yaml")
	if shipped == nil {
		t.Fatalf("load shipped: %s", diags)
	}
	// St Martins: none of its risks names a worker's sweep through records (docs/dpia-mapping.md).
	if s := checks.SectionOf[*bulkaccess.Config](shipped, bulkaccess.Name); !s.Enabled || s.Evidences["st-martins-webster-court"] == nil ||
		len(s.Evidences["st-martins-webster-court"]) != 0 || len(s.Evidences["wiltshire-childrens-cms"]) != 2 {
		t.Errorf("shipped: %+v", s)
	}
}
