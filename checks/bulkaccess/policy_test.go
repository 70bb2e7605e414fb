package bulkaccess

import (
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/config"
)

func TestBulkPolicy(t *testing.T) {
	yes, four, sixty, q := true, config.Number(4), 60, config.Number(0.9)
	w := config.Duration(2 * time.Hour)
	c := Config{
		CheckCommon: config.CheckCommon{Enabled: true, Severity: "high"}, Window: config.Duration(time.Hour), MinSubjects: 20, Multiplier: 3, BaselineDays: 28,
		Quantile: 0.75, MinHistoryDays: 5, MinTeamSamples: 10, ColdStartSubjects: 30, MaxTracked: 1000, EpisodeGap: config.Duration(time.Hour),
		Overrides: []Override{
			{OverrideTarget: config.OverrideTarget{Team: "mash"}, Multiplier: &four, MinSubjects: &sixty},
			{OverrideTarget: config.OverrideTarget{Role: "ig-auditor"}, Exempt: &yes},
			{OverrideTarget: config.OverrideTarget{Org: "st-martins"}, Window: &w, Quantile: &q},
			{OverrideTarget: config.OverrideTarget{Org: "elsewhere"}, Severity: "low"},
		},
	}
	p, err := enginePolicy(c, "st-martins")
	if err != nil {
		t.Fatal(err)
	}
	if p.Window != 2*time.Hour || p.Quantile != 0.9 || p.Multiplier != 3 || p.Severity != alert.SeverityHigh || p.MaxTracked != 1000 {
		t.Errorf("org knobs: %+v", p.Knobs)
	}
	if k := p.Teams["mash"]; k.Multiplier != 4 || k.MinSubjects != 60 || k.Exempt != nil {
		t.Errorf("team override: %+v", k)
	}
	if k := p.Roles["ig-auditor"]; k.Exempt == nil || !*k.Exempt {
		t.Errorf("role override: %+v", k)
	}
	if _, err := Check.Policy(p); err != nil {
		t.Errorf("engine refuses the policy: %v", err)
	}
	if p, _ := enginePolicy(c, "other"); p.Window != time.Hour || p.Severity != alert.SeverityHigh {
		t.Errorf("another org's overrides applied: %+v", p.Knobs)
	}
}
