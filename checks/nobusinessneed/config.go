package nobusinessneed

import (
	"cmp"
	"fmt"

	"github.com/dpiawatch/dpiawatch/config"
)

// Name is the no-business-need check's stable name (CONTRACT §3).
const Name = "no-business-need"

// Config configures the no-business-need check: record access needs a
// relationship (the actor's or their team's) in force, and partner-agency
// users a sharing agreement that allows it.
type Config struct {
	config.CheckCommon `yaml:",inline"` // enabled, evidences, severity (default medium)
	// AfterEnd lets a relationship count for this long after it ended;
	// default 0 (CONTRACT §2: an ended relationship does not count).
	AfterEnd   config.Duration `yaml:"after_end"`
	EpisodeGap config.Duration `yaml:"episode_gap"` // default 1h
	Overrides  []Override      `yaml:"overrides"`
}

// Override changes the no-business-need check for an org, role or team;
// the most specific matching override wins, as for out-of-hours.
type Override struct {
	config.OverrideTarget `yaml:",inline"` // org, role, team
	// Exempt: not judged at all, e.g. an IG auditor whose duty is to open
	// any record.
	Exempt   *bool            `yaml:"exempt"`
	Severity string           `yaml:"severity"`
	AfterEnd *config.Duration `yaml:"after_end"`
}

// Validate implements config.CheckSection: each bad value at its own key.
func (o *Config) Validate(v *config.Validator, p string, c *config.Config) {
	o.ValidateCommon(v, p, c)
	if v.Set(p+".episode_gap") && o.EpisodeGap <= 0 {
		v.Errorf(p+".episode_gap", "must be longer than 0s")
	}
	for i := range o.Overrides {
		ov := &o.Overrides[i]
		op := fmt.Sprintf("%s.overrides[%d]", p, i)
		c.ValidateOverrideTarget(v, op, ov.Org, ov.Role, ov.Team)
		if ov.Severity != "" && !config.ValidSeverity(ov.Severity) {
			v.Errorf(op+".severity", "unknown severity %q (low, medium, high or critical)", ov.Severity)
		}
		if ov.Exempt == nil && ov.Severity == "" && ov.AfterEnd == nil {
			v.Warnf(op, "override changes nothing (set exempt, severity or after_end)")
		}
	}
}

// SetDefaults implements config.CheckSection.
func (o *Config) SetDefaults(v *config.Validator, p string) {
	o.SetCommonDefaults(v, p, config.DefaultSeverity)
	o.EpisodeGap = cmp.Or(o.EpisodeGap, config.DefaultEpisodeGap)
}
