package config

import (
	"cmp"
	"fmt"
	"time"
)

// CheckNoBusinessNeed is the no-business-need check's stable name (CONTRACT §3).
const CheckNoBusinessNeed = "no-business-need"

// DefaultLateness is how far out of order events may come and still be
// judged in order.
const DefaultLateness = Duration(5 * time.Minute)

// DefaultIdleRelease is how long the input may be quiet before waiting
// events are judged.
const DefaultIdleRelease = Duration(30 * time.Second)

// NoBusinessNeed configures the no-business-need check: record access needs a
// relationship (the actor's or their team's) in force, and partner-agency
// users a sharing agreement that allows it.
type NoBusinessNeed struct {
	Enabled bool `yaml:"enabled"` // default true
	// Evidences maps a DPIA id to the risk ids this check evidences.
	Evidences map[string][]string `yaml:"evidences"`
	// Severity applies where the DPIA leaves those risks unscored; default medium.
	Severity string `yaml:"severity"`
	// AfterEnd lets a relationship count for this long after it ended;
	// default 0 (CONTRACT §2: an ended relationship does not count).
	AfterEnd   Duration      `yaml:"after_end"`
	EpisodeGap Duration      `yaml:"episode_gap"` // default 1h
	Overrides  []NBNOverride `yaml:"overrides"`
}

// NBNOverride changes the no-business-need check for an org, role or team;
// the most specific matching override wins, as for out-of-hours.
type NBNOverride struct {
	Org  string `yaml:"org"`
	Role string `yaml:"role"`
	Team string `yaml:"team"`
	// Exempt: not judged at all, e.g. an IG auditor whose duty is to open
	// any record.
	Exempt   *bool     `yaml:"exempt"`
	Severity string    `yaml:"severity"`
	AfterEnd *Duration `yaml:"after_end"`
}

func (o *NoBusinessNeed) validate(v *validator, p string, c *Config) {
	if o.Severity != "" && !validSeverity(o.Severity) {
		v.errorf(p+".severity", "unknown severity %q (low, medium, high or critical)", o.Severity)
	}
	if v.set(p+".episode_gap") && o.EpisodeGap <= 0 {
		v.errorf(p+".episode_gap", "must be longer than 0s")
	}
	c.validateEvidences(v, p+".evidences", o.Evidences)
	for i := range o.Overrides {
		ov := &o.Overrides[i]
		op := fmt.Sprintf("%s.overrides[%d]", p, i)
		c.validateOverrideTarget(v, op, ov.Org, ov.Role, ov.Team)
		if ov.Severity != "" && !validSeverity(ov.Severity) {
			v.errorf(op+".severity", "unknown severity %q (low, medium, high or critical)", ov.Severity)
		}
		if ov.Exempt == nil && ov.Severity == "" && ov.AfterEnd == nil {
			v.warnf(op, "override changes nothing (set exempt, severity or after_end)")
		}
	}
}

func (o *NoBusinessNeed) setDefaults(v *validator, p string) {
	if !v.set(p + ".enabled") {
		o.Enabled = true
	}
	o.Severity = cmp.Or(o.Severity, string(DefaultSeverity))
	o.EpisodeGap = cmp.Or(o.EpisodeGap, DefaultEpisodeGap)
}

// IsEnabled implements CheckSection.
func (o *NoBusinessNeed) IsEnabled() bool { return o.Enabled }

// EvidencedRisks implements CheckSection.
func (o *NoBusinessNeed) EvidencedRisks() map[string][]string { return o.Evidences }
