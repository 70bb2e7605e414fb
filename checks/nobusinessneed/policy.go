package nobusinessneed

import (
	"fmt"

	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/rules"
)

// EnginePolicy implements config.CheckSection.
func (o *Config) EnginePolicy(org string) (any, error) { return nbnPolicy(*o, org) }

// nbnPolicy resolves the no-business-need settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides.
func nbnPolicy(c Config, org string) (rules.NoBusinessNeedPolicy, error) {
	after := c.AfterEnd.D()
	p := rules.NoBusinessNeedPolicy{
		NoBusinessNeedKnobs: rules.NoBusinessNeedKnobs{AfterEnd: &after, EpisodeGap: c.EpisodeGap.D(), Severity: checks.Severity(c.Severity)},
		Roles:               map[string]rules.NoBusinessNeedKnobs{},
		Teams:               map[string]rules.NoBusinessNeedKnobs{},
	}
	for _, ov := range c.Overrides {
		if err := checks.PlaceOverride(org, ov.Org, ov.Role, ov.Team, &p.NoBusinessNeedKnobs, p.Roles, p.Teams,
			func(k rules.NoBusinessNeedKnobs) rules.NoBusinessNeedKnobs { return nbnOverride(k, ov) }); err != nil {
			return p, fmt.Errorf("checks.%s.overrides: %w", Name, err)
		}
	}
	return p, nil
}

func nbnOverride(k rules.NoBusinessNeedKnobs, ov Override) rules.NoBusinessNeedKnobs {
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
