package unlockedsession

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/reference"
)

// Name is the unlocked-session check's stable name (CONTRACT §3).
const Name = "unlocked-session"

// maxUnlockedWindow bounds every time window of the check.
const maxUnlockedWindow = config.Duration(MaxUnlockedWindow)

// Config configures the unlocked-session check: gaps in a session
// with no lock, logout or timeout beyond the device kind's limit, and a
// device used by another account while a session on it is still open.
type Config struct {
	config.CheckCommon `yaml:",inline"` // enabled, evidences, severity (default medium)
	// Limit is the longest gap on devices whose kind has no limit of its
	// own (an override with device_kind), and on devices devices.csv does
	// not list; default 30m. shared-tablet has 10m of its own (CONTRACT §4).
	Limit config.Duration `yaml:"limit"`
	// OpenFor: a session that logged no lock, logout or timeout still
	// counts as open on its device this long after its last action;
	// default 30m (CONTRACT §4's rule for concurrent sessions).
	OpenFor config.Duration `yaml:"open_for"`
	// NewSessionAfter: a longer gap is taken as a session the system ended
	// without logging it; default 12h.
	NewSessionAfter config.Duration `yaml:"new_session_after"`
	EpisodeGap      config.Duration `yaml:"episode_gap"` // default 1h
	Overrides       []Override      `yaml:"overrides"`
}

// Override changes the unlocked-session check for an org, a device kind,
// a role or a team (at most one of the last three, with or without org).
// Team beats role beats device kind beats the org's settings.
type Override struct {
	Org        string `yaml:"org"`
	Role       string `yaml:"role"`
	Team       string `yaml:"team"`
	DeviceKind string `yaml:"device_kind"`
	// Exempt: the actor's sessions are not judged, and a handover from
	// their session is not reported (e.g. a kiosk account).
	Exempt *bool `yaml:"exempt"`
	// UnlockedGap and DeviceHandover switch the patterns on or off.
	UnlockedGap    *bool            `yaml:"unlocked_gap"`
	DeviceHandover *bool            `yaml:"device_handover"`
	Limit          *config.Duration `yaml:"limit"`
	OpenFor        *config.Duration `yaml:"open_for"`
	Severity       string           `yaml:"severity"`
}

// Validate implements config.CheckSection: each bad value at its own key.
func (o *Config) Validate(v *config.Validator, p string, c *config.Config) {
	o.ValidateCommon(v, p, c)
	window := func(path string, d config.Duration) {
		if d <= 0 || d > maxUnlockedWindow {
			v.Errorf(path, "must be longer than 0s and at most %s", maxUnlockedWindow)
		}
	}
	for _, k := range []struct {
		key string
		d   config.Duration
	}{{"limit", o.Limit}, {"open_for", o.OpenFor}, {"new_session_after", o.NewSessionAfter}} {
		if v.Set(p + "." + k.key) {
			window(p+"."+k.key, k.d)
		}
	}
	newAfter := cmp.Or(o.NewSessionAfter, config.Duration(DefaultNewSessionAfter))
	if v.Set(p+".limit") && o.Limit >= newAfter {
		v.Errorf(p+".limit", "must be shorter than new_session_after (%s)", newAfter)
	}
	if v.Set(p+".episode_gap") && o.EpisodeGap <= 0 {
		v.Errorf(p+".episode_gap", "must be longer than 0s")
	}
	for i := range o.Overrides {
		ov := &o.Overrides[i]
		op := fmt.Sprintf("%s.overrides[%d]", p, i)
		named := 0
		for _, s := range []string{ov.Role, ov.Team, ov.DeviceKind} {
			if s != "" {
				named++
			}
		}
		switch {
		case ov.Org == "" && named == 0:
			v.Errorf(op, "an override needs at least one of org, role, team or device_kind")
		case named > 1:
			v.Errorf(op, "an override names one of role, team or device_kind, not several")
		}
		if ov.Org != "" {
			if _, ok := c.Org(ov.Org); !ok {
				v.Errorf(op+".org", "unknown org %q", ov.Org)
			}
		}
		if ov.DeviceKind != "" && !slices.Contains(reference.DeviceKinds, ov.DeviceKind) {
			v.Errorf(op+".device_kind", "%q is not a device kind (%s)", ov.DeviceKind, strings.Join(reference.DeviceKinds, ", "))
		}
		if ov.Severity != "" && !config.ValidSeverity(ov.Severity) {
			v.Errorf(op+".severity", "unknown severity %q (low, medium, high or critical)", ov.Severity)
		}
		if ov.Limit != nil {
			window(op+".limit", *ov.Limit)
			if *ov.Limit >= newAfter {
				v.Errorf(op+".limit", "must be shorter than new_session_after (%s)", newAfter)
			}
		}
		if ov.OpenFor != nil {
			window(op+".open_for", *ov.OpenFor)
		}
		if ov.Exempt == nil && ov.UnlockedGap == nil && ov.DeviceHandover == nil && ov.Limit == nil && ov.OpenFor == nil && ov.Severity == "" {
			v.Warnf(op, "override changes nothing (set exempt, unlocked_gap, device_handover, limit, open_for or severity)")
		}
	}
}

// SetDefaults implements config.CheckSection.
func (o *Config) SetDefaults(v *config.Validator, p string) {
	o.SetCommonDefaults(v, p, config.DefaultSeverity)
	o.Limit = cmp.Or(o.Limit, config.Duration(DefaultUnlockedLimit))
	o.OpenFor = cmp.Or(o.OpenFor, config.Duration(DefaultOpenFor))
	o.NewSessionAfter = cmp.Or(o.NewSessionAfter, config.Duration(DefaultNewSessionAfter))
	o.EpisodeGap = cmp.Or(o.EpisodeGap, config.DefaultEpisodeGap)
}
