package bulkaccess

import (
	"github.com/dpiawatch/dpiawatch/checks"
)

// EnginePolicy implements config.CheckSection.
func (o *Config) EnginePolicy(org string) (any, error) { return enginePolicy(*o, org) }

// bulkPolicy resolves the bulk-access settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides
// (config validation refuses an override naming both).
func enginePolicy(c Config, org string) (Policy, error) {
	p := Policy{
		Knobs: Knobs{
			Window: c.Window.D(), MinSubjects: c.MinSubjects, Multiplier: float64(c.Multiplier), BaselineDays: c.BaselineDays,
			Quantile: float64(c.Quantile), MinHistoryDays: c.MinHistoryDays, MinTeamSamples: c.MinTeamSamples,
			ColdStartSubjects: c.ColdStartSubjects, MaxTracked: c.MaxTracked, EpisodeGap: c.EpisodeGap.D(),
			Severity: checks.Severity(c.Severity),
		},
		Roles: map[string]Knobs{},
		Teams: map[string]Knobs{},
	}
	err := checks.PlaceOverrides(Name, org, c.Overrides, &p.Knobs, p.Roles, p.Teams, bulkOverride)
	return p, err
}

func bulkOverride(k Knobs, ov Override) Knobs {
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
