package bulkaccess

import (
	"fmt"

	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/rules"
)

// EnginePolicy implements config.CheckSection.
func (o *Config) EnginePolicy(org string) (any, error) { return bulkPolicy(*o, org) }

// bulkPolicy resolves the bulk-access settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides
// (config validation refuses an override naming both).
func bulkPolicy(c Config, org string) (rules.BulkAccessPolicy, error) {
	p := rules.BulkAccessPolicy{
		BulkAccessKnobs: rules.BulkAccessKnobs{
			Window: c.Window.D(), MinSubjects: c.MinSubjects, Multiplier: float64(c.Multiplier), BaselineDays: c.BaselineDays,
			Quantile: float64(c.Quantile), MinHistoryDays: c.MinHistoryDays, MinTeamSamples: c.MinTeamSamples,
			ColdStartSubjects: c.ColdStartSubjects, MaxTracked: c.MaxTracked, EpisodeGap: c.EpisodeGap.D(),
			Severity: checks.Severity(c.Severity),
		},
		Roles: map[string]rules.BulkAccessKnobs{},
		Teams: map[string]rules.BulkAccessKnobs{},
	}
	for _, ov := range c.Overrides {
		if err := checks.PlaceOverride(org, ov.Org, ov.Role, ov.Team, &p.BulkAccessKnobs, p.Roles, p.Teams,
			func(k rules.BulkAccessKnobs) rules.BulkAccessKnobs { return bulkOverride(k, ov) }); err != nil {
			return p, fmt.Errorf("checks.%s.overrides: %w", Name, err)
		}
	}
	return p, nil
}

func bulkOverride(k rules.BulkAccessKnobs, ov Override) rules.BulkAccessKnobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.Severity != "" {
		k.Severity = checks.Severity(ov.Severity)
	}
	if ov.Window != nil {
		k.Window = ov.Window.D()
	}
	for _, f := range []struct {
		from *int
		to   *int
	}{
		{ov.MinSubjects, &k.MinSubjects}, {ov.BaselineDays, &k.BaselineDays}, {ov.MinHistoryDays, &k.MinHistoryDays},
		{ov.MinTeamSamples, &k.MinTeamSamples}, {ov.ColdStartSubjects, &k.ColdStartSubjects}, {ov.MaxTracked, &k.MaxTracked},
	} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if ov.Multiplier != nil {
		k.Multiplier = float64(*ov.Multiplier)
	}
	if ov.Quantile != nil {
		k.Quantile = float64(*ov.Quantile)
	}
	return k
}
