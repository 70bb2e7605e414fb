package recorddeleted

import (
	"fmt"

	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
)

// Config is the check's section, checks.record-deleted.
type Config struct {
	config.CheckCommon `yaml:",inline"` // enabled, evidences, severity (default medium)
	Overrides          []Override       `yaml:"overrides"`
}

// Override changes the check for an org, a role or a team.
type Override struct {
	config.OverrideTarget `yaml:",inline"` // org, role, team
	Exempt                *bool            `yaml:"exempt"`
	Severity              string           `yaml:"severity"`
}

// Validate implements config.CheckSection: each bad value at its own key.
func (o *Config) Validate(v *config.Validator, p string, c *config.Config) {
	o.ValidateCommon(v, p, c)
	for i, ov := range o.Overrides {
		op := fmt.Sprintf("%s.overrides[%d]", p, i)
		c.ValidateOverrideTarget(v, op, ov.Org, ov.Role, ov.Team) // one of org, role, team; never role and team
		if ov.Severity != "" && !config.ValidSeverity(ov.Severity) {
			v.Errorf(op+".severity", "unknown severity %q (low, medium, high or critical)", ov.Severity)
		}
	}
}

// SetDefaults implements config.CheckSection.
func (o *Config) SetDefaults(v *config.Validator, p string) {
	o.SetCommonDefaults(v, p, config.DefaultSeverity)
}

// EnginePolicy implements config.CheckSection: the org's policy, with the
// overrides of the org or of every org placed at their level.
func (o *Config) EnginePolicy(org string) (any, error) {
	p := Policy{Knobs: Knobs{Severity: checks.Severity(o.Severity)}, Roles: map[string]Knobs{}, Teams: map[string]Knobs{}}
	err := checks.PlaceOverrides(Name, org, o.Overrides, &p.Knobs, p.Roles, p.Teams, func(k Knobs, ov Override) Knobs {
		if ov.Exempt != nil {
			k.Exempt = ov.Exempt
		}
		if ov.Severity != "" {
			k.Severity = checks.Severity(ov.Severity)
		}
		return k
	})
	return p, err
}
