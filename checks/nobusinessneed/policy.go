package nobusinessneed

import (
	"github.com/dpiawatch/dpiawatch/checks"
)

// EnginePolicy implements config.CheckSection.
func (o *Config) EnginePolicy(org string) (any, error) { return enginePolicy(*o, org) }

// nbnPolicy resolves the no-business-need settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides.
func enginePolicy(c Config, org string) (Policy, error) {
	after := c.AfterEnd.D()
	p := Policy{
		Knobs: Knobs{AfterEnd: &after, EpisodeGap: c.EpisodeGap.D(), Severity: checks.Severity(c.Severity)},
		Roles: map[string]Knobs{},
		Teams: map[string]Knobs{},
	}
	err := checks.PlaceOverrides(Name, org, c.Overrides, &p.Knobs, p.Roles, p.Teams, nbnOverride)
	return p, err
}

func nbnOverride(k Knobs, ov Override) Knobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.Severity != "" {
		k.Severity = checks.Severity(ov.Severity)
	}
	if ov.AfterEnd != nil {
		a := ov.AfterEnd.D()
		k.AfterEnd = &a
	}
	return k
}
