package sharedcredential

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"go.yaml.in/yaml/v3"
)

// Name is the shared-credential check's stable name (CONTRACT §3).
const Name = "shared-credential"

// maxSCWindow bounds every time window of the check: its per-actor state
// is kept for a day of inactivity.
const maxSCWindow = config.Duration(24 * time.Hour)

// Config configures the shared-credential check: signs that an
// account is used by someone other than its holder.
type Config struct {
	config.CheckCommon `yaml:",inline"` // enabled, evidences, severity (default medium)
	EpisodeGap         config.Duration  `yaml:"episode_gap"` // default 1h
	// DisabledPatterns are not judged; default none.
	DisabledPatterns []string `yaml:"disabled_patterns"`
	// SessionTimeout: a session with neither logout nor timeout is closed
	// this long after its last action; default 30m (CONTRACT §4).
	SessionTimeout config.Duration `yaml:"session_timeout"`
	// DeviceSessionTimeouts overrides SessionTimeout by device kind.
	DeviceSessionTimeouts map[string]config.Duration `yaml:"device_session_timeouts"`
	// Sites map networks to places, for impossible travel.
	Sites           []SiteConfig    `yaml:"sites"`
	MaxSpeedKMH     config.Number   `yaml:"max_speed_kmh"`    // default 120
	OffSiteTravel   config.Duration `yaml:"off_site_travel"`  // default 30m
	UnknownNetworks string          `yaml:"unknown_networks"` // off-site (default) or ignore
	// IgnoreAbsenceKinds: absences of these kinds do not make use of the
	// account suspicious; default none.
	IgnoreAbsenceKinds []string        `yaml:"ignore_absence_kinds"`
	AfterLeaving       config.Duration `yaml:"after_leaving"`       // default 0s
	FailedLogins       int             `yaml:"failed_logins"`       // default 5 (CONTRACT §4)
	FailedLoginWindow  config.Duration `yaml:"failed_login_window"` // default 10m (CONTRACT §4)
	// ExternalRequiresMFA: external users must log in with a second
	// factor; default false, set it per org where the DPIA promises it.
	ExternalRequiresMFA bool `yaml:"external_requires_mfa"`
	// UnreportedMFA: a login event that does not say whether a second
	// factor was used counts as one without; default false.
	UnreportedMFA bool       `yaml:"unreported_mfa_is_missing"`
	Overrides     []Override `yaml:"overrides"`
}

// SiteConfig is a place and the networks (CIDR) it uses. A site without
// latitude and longitude (a VPN pool, mobile data) is known but never
// judged for travel. Org empty: the site belongs to every org.
type SiteConfig struct {
	Org       string         `yaml:"org"`
	Name      string         `yaml:"name"`
	Networks  []CIDR         `yaml:"networks"`
	Latitude  *config.Number `yaml:"latitude"`
	Longitude *config.Number `yaml:"longitude"`
}

// Override changes the shared-credential check for an org, role or team;
// team beats role beats org.
type Override struct {
	config.OverrideTarget `yaml:",inline"` // org, role, team
	Exempt                *bool            `yaml:"exempt"`
	Severity              string           `yaml:"severity"`
	DisabledPatterns      *[]string        `yaml:"disabled_patterns"`
	SessionTimeout        *config.Duration `yaml:"session_timeout"`
	MaxSpeedKMH           *config.Number   `yaml:"max_speed_kmh"`
	OffSiteTravel         *config.Duration `yaml:"off_site_travel"`
	UnknownNetworks       string           `yaml:"unknown_networks"`
	IgnoreAbsenceKinds    *[]string        `yaml:"ignore_absence_kinds"`
	AfterLeaving          *config.Duration `yaml:"after_leaving"`
	FailedLogins          *int             `yaml:"failed_logins"`
	FailedLoginWindow     *config.Duration `yaml:"failed_login_window"`
	ExternalRequiresMFA   *bool            `yaml:"external_requires_mfa"`
	UnreportedMFA         *bool            `yaml:"unreported_mfa_is_missing"`
}

// CIDR is an IP network written as "10.2.0.0/24" (a bare address is a
// network of one).
type CIDR struct{ netip.Prefix }

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *CIDR) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a network such as 10.2.0.0/24")
	}
	p, err := netip.ParsePrefix(node.Value)
	if err != nil {
		a, err2 := netip.ParseAddr(node.Value)
		if err2 != nil {
			return fmt.Errorf("%q is not a network such as 10.2.0.0/24", node.Value)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	c.Prefix = p.Masked()
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (c CIDR) MarshalYAML() (any, error) { return c.String(), nil }

// Validate implements config.CheckSection: each bad value at its own key.
func (o *Config) Validate(v *config.Validator, p string, c *config.Config) {
	o.ValidateCommon(v, p, c)
	if v.Set(p+".episode_gap") && o.EpisodeGap <= 0 {
		v.Errorf(p+".episode_gap", "must be longer than 0s")
	}
	validPatterns(v, p+".disabled_patterns", o.DisabledPatterns)
	checkWindow(v, p+".session_timeout", o.SessionTimeout)
	for _, k := range slices.Sorted(maps.Keys(o.DeviceSessionTimeouts)) {
		if d := o.DeviceSessionTimeouts[k]; d <= 0 || d > maxSCWindow {
			v.Errorf(p+".device_session_timeouts."+k, "must be longer than 0s and at most %s", maxSCWindow)
		}
	}
	if v.Set(p+".max_speed_kmh") && o.MaxSpeedKMH <= 0 {
		v.Errorf(p+".max_speed_kmh", "must be positive")
	}
	if o.OffSiteTravel < 0 || o.OffSiteTravel > maxSCWindow {
		v.Errorf(p+".off_site_travel", "must lie between 0s and %s", maxSCWindow)
	}
	validUnknownNetworks(v, p+".unknown_networks", o.UnknownNetworks)
	if o.AfterLeaving < 0 {
		v.Errorf(p+".after_leaving", "must not be negative")
	}
	if v.Set(p+".failed_logins") && (o.FailedLogins < 2 || o.FailedLogins > 1000) {
		v.Errorf(p+".failed_logins", "must lie between 2 and 1000")
	}
	checkWindow(v, p+".failed_login_window", o.FailedLoginWindow)
	names := map[string]bool{}
	for i := range o.Sites {
		s := &o.Sites[i]
		sp := fmt.Sprintf("%s.sites[%d]", p, i)
		if s.Org != "" {
			if _, ok := c.Org(s.Org); !ok {
				v.Errorf(sp+".org", "unknown org %q", s.Org)
			}
		}
		if s.Name == "" {
			v.Errorf(sp+".name", "a site needs a name")
		} else if names[s.Org+"/"+s.Name] {
			v.Errorf(sp+".name", "site %q is named twice", s.Name)
		}
		names[s.Org+"/"+s.Name] = true
		if len(s.Networks) == 0 {
			v.Errorf(sp+".networks", "a site needs at least one network (CIDR)")
		}
		switch {
		case (s.Latitude == nil) != (s.Longitude == nil):
			v.Errorf(sp, "set both latitude and longitude, or neither (a site without a position is never judged for travel)")
		case s.Latitude != nil && (math.Abs(float64(*s.Latitude)) > 90 || math.Abs(float64(*s.Longitude)) > 180):
			v.Errorf(sp, "latitude must lie in [-90, 90] and longitude in [-180, 180]")
		}
	}
	for i := range o.Overrides {
		ov := &o.Overrides[i]
		op := fmt.Sprintf("%s.overrides[%d]", p, i)
		c.ValidateOverrideTarget(v, op, ov.Org, ov.Role, ov.Team)
		if ov.Severity != "" && !config.ValidSeverity(ov.Severity) {
			v.Errorf(op+".severity", "unknown severity %q (low, medium, high or critical)", ov.Severity)
		}
		if ov.DisabledPatterns != nil {
			validPatterns(v, op+".disabled_patterns", *ov.DisabledPatterns)
		}
		if ov.SessionTimeout != nil {
			checkWindow(v, op+".session_timeout", *ov.SessionTimeout)
		}
		if ov.MaxSpeedKMH != nil && *ov.MaxSpeedKMH <= 0 {
			v.Errorf(op+".max_speed_kmh", "must be positive")
		}
		if ov.OffSiteTravel != nil && (*ov.OffSiteTravel < 0 || *ov.OffSiteTravel > maxSCWindow) {
			v.Errorf(op+".off_site_travel", "must lie between 0s and %s", maxSCWindow)
		}
		validUnknownNetworks(v, op+".unknown_networks", ov.UnknownNetworks)
		if ov.AfterLeaving != nil && *ov.AfterLeaving < 0 {
			v.Errorf(op+".after_leaving", "must not be negative")
		}
		if ov.FailedLogins != nil && (*ov.FailedLogins < 2 || *ov.FailedLogins > 1000) {
			v.Errorf(op+".failed_logins", "must lie between 2 and 1000")
		}
		if ov.FailedLoginWindow != nil {
			checkWindow(v, op+".failed_login_window", *ov.FailedLoginWindow)
		}
		if *ov == (Override{OverrideTarget: ov.OverrideTarget}) {
			v.Warnf(op, "override changes nothing")
		}
	}
}

// checkWindow: an explicit window must be positive and fit the check's
// one-day memory.
func checkWindow(v *config.Validator, path string, d config.Duration) {
	if v.Set(path) && (d <= 0 || d > maxSCWindow) {
		v.Errorf(path, "must be longer than 0s and at most %s", maxSCWindow)
	}
}

func validPatterns(v *config.Validator, path string, ps []string) {
	for i, pt := range ps {
		if !slices.Contains(Patterns(), pt) {
			v.Errorf(fmt.Sprintf("%s[%d]", path, i), "unknown pattern %q (known: %v)", pt, Patterns())
		}
	}
}

func validUnknownNetworks(v *config.Validator, path, s string) {
	if s != "" && s != UnknownNetworksOffSite && s != UnknownNetworksIgnore {
		v.Errorf(path, "must be %s or %s, not %q", UnknownNetworksOffSite, UnknownNetworksIgnore, s)
	}
}

// SetDefaults implements config.CheckSection.
func (o *Config) SetDefaults(v *config.Validator, p string) {
	o.SetCommonDefaults(v, p, config.DefaultSeverity)
	o.EpisodeGap = cmp.Or(o.EpisodeGap, config.DefaultEpisodeGap)
	o.SessionTimeout = cmp.Or(o.SessionTimeout, config.Duration(DefaultSessionTimeout))
	o.MaxSpeedKMH = cmp.Or(o.MaxSpeedKMH, DefaultMaxSpeedKMH)
	if !v.Set(p + ".off_site_travel") {
		o.OffSiteTravel = config.Duration(DefaultOffSiteTravel)
	}
	o.UnknownNetworks = cmp.Or(o.UnknownNetworks, UnknownNetworksOffSite)
	o.FailedLogins = cmp.Or(o.FailedLogins, DefaultFailedLogins)
	o.FailedLoginWindow = cmp.Or(o.FailedLoginWindow, config.Duration(DefaultFailedLoginWindow))
}
