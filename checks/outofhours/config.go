package outofhours

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
)

// Name is the out-of-hours check's stable name (CONTRACT §3).
const Name = "out-of-hours"

// Config configures the out-of-hours check.
type Config struct {
	config.CheckCommon `yaml:",inline"` // enabled, evidences, severity (default medium)
	Grace              config.Duration  `yaml:"grace"` // default 30m (CONTRACT §4)
	WorkingHours       WorkingHours     `yaml:"working_hours"`
	EpisodeGap         config.Duration  `yaml:"episode_gap"` // default 1h
	Overrides          []Override       `yaml:"overrides"`
}

// Bank holiday calendars. Scotland and Northern Ireland are named so that
// validation can refuse them by name: the holiday library the checks use
// (github.com/rickar/cal/v2/gb) defines England and Wales only.
const (
	BankHolidaysEnglandWales    = "england-and-wales"
	BankHolidaysScotland        = "scotland"
	BankHolidaysNorthernIreland = "northern-ireland"
	BankHolidaysNone            = "none"
)

// WorkingHours are the hours of staff with no shifts.
type WorkingHours struct {
	Days         []config.Weekday `yaml:"days"`          // default mon–fri
	Start        config.Clock     `yaml:"start"`         // default 08:00
	End          config.Clock     `yaml:"end"`           // default 18:00
	BankHolidays string           `yaml:"bank_holidays"` // default england-and-wales
}

// Override changes the out-of-hours policy for an org, role or team; the most
// specific matching override wins (team, then role, then org).
type Override struct {
	config.OverrideTarget `yaml:",inline"` // org, role, team
	Grace                 *config.Duration `yaml:"grace"`
	Severity              string           `yaml:"severity"`
	WorkingHours          *WorkingHours    `yaml:"working_hours"`
}

// Validate implements config.CheckSection: each bad value at its own key.
func (o *Config) Validate(v *config.Validator, p string, c *config.Config) {
	o.ValidateCommon(v, p, c)
	if v.Set(p+".episode_gap") && o.EpisodeGap <= 0 {
		v.Errorf(p+".episode_gap", "must be longer than 0s")
	}
	o.WorkingHours.validate(v, p+".working_hours")
	for i := range o.Overrides {
		o.Overrides[i].validate(v, fmt.Sprintf("%s.overrides[%d]", p, i), c)
	}
}

func (w *WorkingHours) validate(v *config.Validator, p string) {
	if v.Set(p+".start") && v.Set(p+".end") && w.Start.Minutes() >= w.End.Minutes() {
		v.Errorf(p+".end", "end %s is not after start %s", w.End, w.Start)
	}
	if v.Set(p+".days") && len(w.Days) == 0 {
		v.Errorf(p+".days", "no working days; list them (mon … sun)")
	}
	switch w.BankHolidays {
	case "", BankHolidaysEnglandWales, BankHolidaysNone:
	case BankHolidaysScotland, BankHolidaysNorthernIreland:
		// The holiday library defines England and Wales only; refused
		// until it defines these, rather than judged by the wrong days.
		v.Errorf(p+".bank_holidays", "bank holiday calendar %q is not available: the holiday library defines England and Wales only (england-and-wales or none)", w.BankHolidays)
	default:
		v.Errorf(p+".bank_holidays", "unknown bank holiday calendar %q (england-and-wales or none)", w.BankHolidays)
	}
}

func (o *Override) validate(v *config.Validator, p string, c *config.Config) {
	c.ValidateOverrideTarget(v, p, o.Org, o.Role, o.Team)
	if o.Severity != "" && !config.ValidSeverity(o.Severity) {
		v.Errorf(p+".severity", "unknown severity %q (low, medium, high or critical)", o.Severity)
	}
	if o.WorkingHours != nil {
		o.WorkingHours.validate(v, p+".working_hours")
	}
	if o.Grace == nil && o.Severity == "" && o.WorkingHours == nil {
		v.Warnf(p, "override changes nothing (set grace, severity or working_hours)")
	}
}

// SetDefaults implements config.CheckSection.
func (o *Config) SetDefaults(v *config.Validator, p string) {
	o.SetCommonDefaults(v, p, config.DefaultSeverity)
	if !v.Set(p + ".grace") {
		o.Grace = config.DefaultGrace
	}
	o.EpisodeGap = cmp.Or(o.EpisodeGap, config.DefaultEpisodeGap)
	o.WorkingHours.setDefaults(v, p+".working_hours", defaultWorkingHours())
	for i := range o.Overrides {
		if wh := o.Overrides[i].WorkingHours; wh != nil {
			// An override's working hours start from the check's own.
			wh.setDefaults(v, fmt.Sprintf("%s.overrides[%d].working_hours", p, i), o.WorkingHours)
		}
	}
}

// defaultWorkingHours is CONTRACT §4: Mon–Fri 08:00–18:00, not on bank
// holidays (England and Wales).
func defaultWorkingHours() WorkingHours {
	return WorkingHours{
		Days:         []config.Weekday{config.Weekday(time.Monday), config.Weekday(time.Tuesday), config.Weekday(time.Wednesday), config.Weekday(time.Thursday), config.Weekday(time.Friday)},
		Start:        config.Clock{Hour: 8},
		End:          config.Clock{Hour: 18},
		BankHolidays: BankHolidaysEnglandWales,
	}
}

func (w *WorkingHours) setDefaults(v *config.Validator, p string, base WorkingHours) {
	if !v.Set(p + ".days") {
		w.Days = slices.Clone(base.Days)
	}
	if !v.Set(p + ".start") {
		w.Start = base.Start
	}
	if !v.Set(p + ".end") {
		w.End = base.End
	}
	w.BankHolidays = cmp.Or(w.BankHolidays, base.BankHolidays)
}

// String renders w compactly, e.g. "mon,tue 08:00-18:00 england-and-wales".
func (w WorkingHours) String() string {
	days := make([]string, len(w.Days))
	for i, d := range w.Days {
		days[i] = d.String()
	}
	return fmt.Sprintf("%s %s-%s %s", strings.Join(days, ","), w.Start, w.End, w.BankHolidays)
}
