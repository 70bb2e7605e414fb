package sharedcredential

import (
	"time"

	"github.com/dpiawatch/dpiawatch/checks"
)

// EnginePolicy implements config.CheckSection.
func (o *Config) EnginePolicy(org string) (any, error) { return enginePolicy(*o, org) }

// scPolicy resolves the shared-credential settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides
// (config validation rejects an override naming both), and the org's sites
// are those naming it or no org.
func enginePolicy(c Config, org string) (Policy, error) {
	off, after, req, unrep := c.DisabledPatterns, c.AfterLeaving.D(), c.ExternalRequiresMFA, c.UnreportedMFA
	if off == nil {
		off = []string{}
	}
	travel := c.OffSiteTravel.D()
	p := Policy{
		Knobs: Knobs{
			DisabledPatterns: off, SessionTimeout: c.SessionTimeout.D(), MaxSpeedKMH: float64(c.MaxSpeedKMH),
			OffSiteTravel: &travel, UnknownNetworks: c.UnknownNetworks, IgnoreAbsenceKinds: c.IgnoreAbsenceKinds,
			AfterLeaving: &after, FailedLogins: c.FailedLogins, FailedLoginWindow: c.FailedLoginWindow.D(),
			ExternalRequiresMFA: &req, UnreportedMFA: &unrep, EpisodeGap: c.EpisodeGap.D(), Severity: checks.Severity(c.Severity),
		},
		Roles:       map[string]Knobs{},
		Teams:       map[string]Knobs{},
		DeviceKinds: map[string]time.Duration{},
	}
	for k, d := range c.DeviceSessionTimeouts {
		p.DeviceKinds[k] = d.D()
	}
	for _, s := range c.Sites {
		if s.Org != "" && s.Org != org {
			continue
		}
		site := Site{Name: s.Name}
		for _, n := range s.Networks {
			site.Networks = append(site.Networks, n.Prefix)
		}
		if s.Latitude != nil && s.Longitude != nil {
			site.Located, site.Lat, site.Lon = true, float64(*s.Latitude), float64(*s.Longitude)
		}
		p.Sites = append(p.Sites, site)
	}
	err := checks.PlaceOverrides(Name, org, c.Overrides, &p.Knobs, p.Roles, p.Teams, scOverride)
	return p, err
}

func scOverride(k Knobs, ov Override) Knobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.Severity != "" {
		k.Severity = checks.Severity(ov.Severity)
	}
	if ov.DisabledPatterns != nil {
		k.DisabledPatterns = append([]string{}, *ov.DisabledPatterns...)
	}
	if ov.SessionTimeout != nil {
		k.SessionTimeout = ov.SessionTimeout.D()
	}
	if ov.MaxSpeedKMH != nil {
		k.MaxSpeedKMH = float64(*ov.MaxSpeedKMH)
	}
	if ov.OffSiteTravel != nil {
		d := ov.OffSiteTravel.D()
		k.OffSiteTravel = &d
	}
	if ov.UnknownNetworks != "" {
		k.UnknownNetworks = ov.UnknownNetworks
	}
	if ov.IgnoreAbsenceKinds != nil {
		k.IgnoreAbsenceKinds = append([]string{}, *ov.IgnoreAbsenceKinds...)
	}
	if ov.AfterLeaving != nil {
		d := ov.AfterLeaving.D()
		k.AfterLeaving = &d
	}
	if ov.FailedLogins != nil {
		k.FailedLogins = *ov.FailedLogins
	}
	if ov.FailedLoginWindow != nil {
		k.FailedLoginWindow = ov.FailedLoginWindow.D()
	}
	if ov.ExternalRequiresMFA != nil {
		k.ExternalRequiresMFA = ov.ExternalRequiresMFA
	}
	if ov.UnreportedMFA != nil {
		k.UnreportedMFA = ov.UnreportedMFA
	}
	return k
}
