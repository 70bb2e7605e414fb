package unlockedsession

import (
	"github.com/dpiawatch/dpiawatch/checks"
)

// EnginePolicy implements config.CheckSection.
func (o *Config) EnginePolicy(org string) (any, error) { return enginePolicy(*o, org), nil }

// ulsPolicy resolves the unlocked-session settings for one org. Overrides
// for every org apply first, then the org's own, so that the org's win;
// those naming no role, team or device kind fold into the org's knobs.
// (Config validation rejects an override naming more than one.)
func enginePolicy(c Config, org string) Policy {
	p := Policy{
		Knobs: Knobs{
			Limit: c.Limit.D(), OpenFor: c.OpenFor.D(), NewSessionAfter: c.NewSessionAfter.D(),
			EpisodeGap: c.EpisodeGap.D(), Severity: checks.Severity(c.Severity),
		},
		DeviceKinds: map[string]Knobs{},
		Roles:       map[string]Knobs{},
		Teams:       map[string]Knobs{},
	}
	for _, own := range []bool{false, true} {
		for _, ov := range c.Overrides {
			if (ov.Org == org) != own || (ov.Org != "" && ov.Org != org) {
				continue
			}
			switch {
			case ov.DeviceKind != "":
				p.DeviceKinds[ov.DeviceKind] = ulsOverride(p.DeviceKinds[ov.DeviceKind], ov)
			case ov.Role != "":
				p.Roles[ov.Role] = ulsOverride(p.Roles[ov.Role], ov)
			case ov.Team != "":
				p.Teams[ov.Team] = ulsOverride(p.Teams[ov.Team], ov)
			default:
				p.Knobs = ulsOverride(p.Knobs, ov)
			}
		}
	}
	return p
}

func ulsOverride(k Knobs, ov Override) Knobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.UnlockedGap != nil {
		k.UnlockedGap = ov.UnlockedGap
	}
	if ov.DeviceHandover != nil {
		k.DeviceHandover = ov.DeviceHandover
	}
	if ov.Limit != nil {
		k.Limit = ov.Limit.D()
	}
	if ov.OpenFor != nil {
		k.OpenFor = ov.OpenFor.D()
	}
	if ov.Severity != "" {
		k.Severity = checks.Severity(ov.Severity)
	}
	return k
}
