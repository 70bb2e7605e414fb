package bulkaccess

import (
	"cmp"
	"fmt"
	"math"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
)

// Name is the bulk-access check's stable name.
const Name = "bulk-access"

// Config configures the bulk-access check: an actor opening far more
// different people's records in a window than their own usual and their
// team's.
type Config struct {
	config.CheckCommon `yaml:",inline"` // enabled, evidences, severity (default high)
	Window             config.Duration  `yaml:"window"`              // default 1h
	MinSubjects        int              `yaml:"min_subjects"`        // default 20
	Multiplier         config.Number    `yaml:"multiplier"`          // default 3
	BaselineDays       int              `yaml:"baseline_days"`       // default 28
	Quantile           config.Number    `yaml:"quantile"`            // default 0.75
	MinHistoryDays     int              `yaml:"min_history_days"`    // default 5
	MinTeamSamples     int              `yaml:"min_team_samples"`    // default 10
	ColdStartSubjects  int              `yaml:"cold_start_subjects"` // default 30
	MaxTracked         int              `yaml:"max_tracked"`         // default 1000
	EpisodeGap         config.Duration  `yaml:"episode_gap"`         // default 1h
	Overrides          []Override       `yaml:"overrides"`
}

// Override changes the bulk-access check for an org, role or team; team
// beats role beats org, as for no-business-need. Unset keys inherit.
type Override struct {
	config.OverrideTarget `yaml:",inline"` // org, role, team
	// Exempt: not judged at all.
	Exempt            *bool            `yaml:"exempt"`
	Severity          string           `yaml:"severity"`
	Window            *config.Duration `yaml:"window"`
	MinSubjects       *int             `yaml:"min_subjects"`
	Multiplier        *config.Number   `yaml:"multiplier"`
	BaselineDays      *int             `yaml:"baseline_days"`
	Quantile          *config.Number   `yaml:"quantile"`
	MinHistoryDays    *int             `yaml:"min_history_days"`
	MinTeamSamples    *int             `yaml:"min_team_samples"`
	ColdStartSubjects *int             `yaml:"cold_start_subjects"`
	MaxTracked        *int             `yaml:"max_tracked"`
}

// Validate implements config.CheckSection: each bad value at its own key.
func (o *Config) Validate(v *config.Validator, p string, c *config.Config) {
	o.ValidateCommon(v, p, c)
	if v.Set(p+".episode_gap") && o.EpisodeGap <= 0 {
		v.Errorf(p+".episode_gap", "must be longer than 0s")
	}
	o.validateKnobs(v, p, bulkKnobs{
		window: ptrIf(v.Set(p+".window"), o.Window), minSubjects: ptrIf(v.Set(p+".min_subjects"), o.MinSubjects),
		multiplier: ptrIf(v.Set(p+".multiplier"), o.Multiplier), baselineDays: ptrIf(v.Set(p+".baseline_days"), o.BaselineDays),
		quantile: ptrIf(v.Set(p+".quantile"), o.Quantile), minHistoryDays: ptrIf(v.Set(p+".min_history_days"), o.MinHistoryDays),
		minTeamSamples: ptrIf(v.Set(p+".min_team_samples"), o.MinTeamSamples), coldStart: ptrIf(v.Set(p+".cold_start_subjects"), o.ColdStartSubjects),
		maxTracked: ptrIf(v.Set(p+".max_tracked"), o.MaxTracked),
	})
	for i := range o.Overrides {
		ov := &o.Overrides[i]
		op := fmt.Sprintf("%s.overrides[%d]", p, i)
		c.ValidateOverrideTarget(v, op, ov.Org, ov.Role, ov.Team)
		if ov.Severity != "" && !config.ValidSeverity(ov.Severity) {
			v.Errorf(op+".severity", "unknown severity %q (low, medium, high or critical)", ov.Severity)
		}
		k := bulkKnobs{window: ov.Window, minSubjects: ov.MinSubjects, multiplier: ov.Multiplier, baselineDays: ov.BaselineDays,
			quantile: ov.Quantile, minHistoryDays: ov.MinHistoryDays, minTeamSamples: ov.MinTeamSamples, coldStart: ov.ColdStartSubjects,
			maxTracked: ov.MaxTracked}
		if ov.Exempt == nil && ov.Severity == "" && k == (bulkKnobs{}) {
			v.Warnf(op, "override changes nothing (set exempt, severity or a threshold knob)")
		}
		o.validateKnobs(v, op, k)
	}
}

// bulkKnobs are the knobs a level sets (nil: not set there).
type bulkKnobs struct {
	window                                                    *config.Duration
	minSubjects, baselineDays, minHistoryDays, minTeamSamples *int
	coldStart, maxTracked                                     *int
	multiplier, quantile                                      *config.Number
}

func ptrIf[T any](set bool, v T) *T {
	if !set {
		return nil
	}
	return &v
}

// validateKnobs checks each knob a level sets on its own; combinations
// (min_history_days within baseline_days, max_tracked above the thresholds)
// are checked by the rules engine once levels are merged.
func (o *Config) validateKnobs(v *config.Validator, p string, k bulkKnobs) {
	if k.window != nil && (*k.window <= 0 || *k.window > config.Duration(24*time.Hour)) {
		v.Errorf(p+".window", "must be longer than 0s and at most 24h")
	}
	for _, f := range []struct {
		name string
		n    *int
		lo   int
		hi   int
	}{
		{"min_subjects", k.minSubjects, 1, math.MaxInt32},
		{"baseline_days", k.baselineDays, 1, MaxBulkBaselineDays},
		{"min_history_days", k.minHistoryDays, 1, MaxBulkBaselineDays},
		{"min_team_samples", k.minTeamSamples, 1, math.MaxInt32},
		{"cold_start_subjects", k.coldStart, 1, math.MaxInt32},
		{"max_tracked", k.maxTracked, 2, 100_000},
	} {
		if f.n != nil && (*f.n < f.lo || *f.n > f.hi) {
			v.Errorf(p+"."+f.name, "must be between %d and %d", f.lo, f.hi)
		}
	}
	if k.multiplier != nil && *k.multiplier < 1 {
		v.Errorf(p+".multiplier", "must be at least 1")
	}
	if k.quantile != nil && (*k.quantile <= 0 || *k.quantile > 1) {
		v.Errorf(p+".quantile", "must be above 0 and at most 1")
	}
}

// SetDefaults implements config.CheckSection.
func (o *Config) SetDefaults(v *config.Validator, p string) {
	o.SetCommonDefaults(v, p, DefaultBulkSeverity)
	o.Window = cmp.Or(o.Window, config.Duration(DefaultBulkWindow))
	o.MinSubjects = cmp.Or(o.MinSubjects, DefaultBulkMinSubjects)
	o.Multiplier = cmp.Or(o.Multiplier, config.Number(DefaultBulkMultiplier))
	o.BaselineDays = cmp.Or(o.BaselineDays, DefaultBulkBaselineDays)
	o.Quantile = cmp.Or(o.Quantile, config.Number(DefaultBulkQuantile))
	o.MinHistoryDays = cmp.Or(o.MinHistoryDays, DefaultBulkMinHistoryDays)
	o.MinTeamSamples = cmp.Or(o.MinTeamSamples, DefaultBulkMinTeamSamples)
	o.ColdStartSubjects = cmp.Or(o.ColdStartSubjects, DefaultBulkColdStartSubjects)
	o.MaxTracked = cmp.Or(o.MaxTracked, DefaultBulkMaxTracked)
	o.EpisodeGap = cmp.Or(o.EpisodeGap, config.DefaultEpisodeGap)
}
