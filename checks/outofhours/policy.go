package outofhours

import (
	"time"

	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
)

// EnginePolicy implements config.CheckSection.
func (o *Config) EnginePolicy(org string) (any, error) { return enginePolicy(*o, org) }

// oohPolicy resolves the out-of-hours settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides.
func enginePolicy(c Config, org string) (Policy, error) {
	p := Policy{
		Knobs: oohKnobs(c.Grace.D(), &c.WorkingHours, c.Severity, c.EpisodeGap.D()),
		Roles: map[string]Knobs{},
		Teams: map[string]Knobs{},
	}
	err := checks.PlaceOverrides(Name, org, c.Overrides, &p.Knobs, p.Roles, p.Teams, func(k Knobs, ov Override) Knobs {
		if ov.Role != "" || ov.Team != "" {
			k = Knobs{} // a role's or team's override replaces an earlier one of the same
		}
		applyOverride(&k, ov)
		return k
	})
	return p, err
}

func oohKnobs(grace time.Duration, wh *WorkingHours, severity string, gap time.Duration) Knobs {
	k := Knobs{ShiftGrace: &grace, EpisodeGap: gap, Severity: checks.Severity(severity)}
	if wh != nil {
		setWorkingHours(&k, wh)
	}
	return k
}

func applyOverride(k *Knobs, ov Override) {
	if ov.Grace != nil {
		g := ov.Grace.D()
		k.ShiftGrace = &g
	}
	if ov.Severity != "" {
		k.Severity = checks.Severity(ov.Severity)
	}
	if ov.WorkingHours != nil {
		setWorkingHours(k, ov.WorkingHours)
	}
}

func setWorkingHours(k *Knobs, wh *WorkingHours) {
	days := make([]time.Weekday, 0, len(wh.Days))
	for _, d := range wh.Days {
		days = append(days, time.Weekday(d))
	}
	k.WorkingDays = days
	start, end := clock(wh.Start), clock(wh.End)
	k.Start, k.End = &start, &end
	bh := wh.BankHolidays != BankHolidaysNone
	k.BankHolidays = &bh
}

// clock maps the configuration's end-of-day "24:00" to the last minute of
// the day, which the engine treats as included.
func clock(c config.Clock) Clock {
	if c.Hour == 24 {
		return Clock{Hour: 23, Minute: 59}
	}
	return Clock{Hour: c.Hour, Minute: c.Minute}
}
