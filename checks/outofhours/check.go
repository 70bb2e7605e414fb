package outofhours

import (
	"fmt"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
)

// The out-of-hours check's patterns (CONTRACT §3); its name is Name.
const (
	PatternOutsideShift        = "outside-shift"         // actor with rostered shifts, or of an out-of-hours role
	PatternOutsideWorkingHours = "outside-working-hours" // actor without shifts, outside default working hours
	PatternBankHoliday         = "bank-holiday"          // as above, when a bank holiday is the only reason
)

// DefaultShiftGrace widens each rostered shift at both ends (CONTRACT §4).
const DefaultShiftGrace = 30 * time.Minute

// Default working hours for staff with no shifts: Mon–Fri 08:00–18:00.
var (
	DefaultStart       = Clock{Hour: 8}
	DefaultEnd         = Clock{Hour: 18}
	DefaultWorkingDays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
)

// Clock is a time of day on the local wall clock.
type Clock struct{ Hour, Minute int }

// ParseClock parses "HH:MM" (24-hour).
func ParseClock(s string) (Clock, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return Clock{}, fmt.Errorf("parse clock time %q: %w", s, err)
	}
	return Clock{t.Hour(), t.Minute()}, nil
}

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

func (c Clock) valid() bool { return c.Hour >= 0 && c.Hour < 24 && c.Minute >= 0 && c.Minute < 60 }

// Knobs are the settings of the out-of-hours check at one level
// (org, role or team). A nil or zero field inherits from the less specific
// level, and in the end takes the CONTRACT §4 default.
type Knobs struct {
	// ShiftGrace widens each rostered shift at both ends. Default 30m.
	ShiftGrace *time.Duration
	// HoursGrace widens default working hours at both ends. Default 0.
	HoursGrace *time.Duration
	// WorkingDays are the days default working hours apply on. nil inherits
	// (default Mon–Fri); an empty non-nil list means no working days.
	WorkingDays []time.Weekday
	// Start and End bound default working hours, both included; an End
	// before Start means hours that run past midnight. Default 08:00–18:00.
	Start, End *Clock
	// BankHolidays: default working hours do not apply on bank holidays of
	// England and Wales (actual and substitute days). Default true.
	BankHolidays *bool
	// EpisodeGap: events this close in time to an episode join it. Default 1h.
	EpisodeGap time.Duration
	// Severity is the base severity, raised one step when a subject with a
	// sensitivity tag is involved. Default medium.
	Severity alert.Severity
}

// Policy is the out-of-hours check's settings for one org, with
// overrides for actors of a role or a team. Each knob is resolved on its
// own, most specific first: team, then role, then the org's knobs, then
// the defaults. (A team is the narrower group: its local arrangements win
// over what applies to a role across teams.) An actor's role and team come
// from the roster's staff record, else from the event.
type Policy struct {
	Knobs
	Roles map[string]Knobs
	Teams map[string]Knobs
}

// oohPolicy is a fully resolved Knobs.
type oohPolicy struct {
	shiftGrace, hoursGrace time.Duration
	days                   [7]bool
	start, end             Clock
	bankHolidays           bool
	gap                    time.Duration
	severity               alert.Severity
	hoursText              string // e.g. "Mon–Fri 08:00–18:00"
}

// oohResolver is the out-of-hours policy by role and team.
type oohResolver = rules.Levels[oohPolicy]

func newOOHResolver(p Policy) (*oohResolver, error) {
	return rules.NewLevels(p.Knobs, p.Roles, p.Teams, resolve)
}

// resolve merges levels, least specific first, over the defaults.
func resolve(levels []Knobs) (*oohPolicy, error) {
	p := &oohPolicy{
		shiftGrace: DefaultShiftGrace, start: DefaultStart, end: DefaultEnd,
		bankHolidays: true, gap: rules.DefaultEpisodeGap, severity: alert.SeverityMedium,
	}
	days := DefaultWorkingDays
	for _, k := range levels {
		if k.ShiftGrace != nil {
			p.shiftGrace = *k.ShiftGrace
		}
		if k.HoursGrace != nil {
			p.hoursGrace = *k.HoursGrace
		}
		if k.WorkingDays != nil {
			days = k.WorkingDays
		}
		if k.Start != nil {
			p.start = *k.Start
		}
		if k.End != nil {
			p.end = *k.End
		}
		if k.BankHolidays != nil {
			p.bankHolidays = *k.BankHolidays
		}
		if k.EpisodeGap != 0 {
			p.gap = k.EpisodeGap
		}
		if k.Severity != "" {
			p.severity = k.Severity
		}
	}
	switch {
	case p.shiftGrace < 0 || p.hoursGrace < 0:
		return nil, fmt.Errorf("grace must not be negative")
	case p.shiftGrace >= 12*time.Hour || p.hoursGrace >= 12*time.Hour:
		return nil, fmt.Errorf("grace must be under 12h")
	case p.gap < 0:
		return nil, fmt.Errorf("episode gap must not be negative")
	case p.severity.Rank() < 0:
		return nil, fmt.Errorf("unknown severity %q", p.severity)
	case !p.start.valid() || !p.end.valid():
		return nil, fmt.Errorf("working hours must be clock times between 00:00 and 23:59")
	case p.start == p.end:
		return nil, fmt.Errorf("working hours must not start and end at the same time")
	}
	for _, d := range days {
		if d < time.Sunday || d > time.Saturday {
			return nil, fmt.Errorf("invalid working day %d", d)
		}
		p.days[d] = true
	}
	p.hoursText = daysText(p.days) + " " + p.start.String() + "–" + p.end.String()
	return p, nil
}

// daysText renders working days as a range where they run on ("Mon–Fri"),
// else as a list ("Mon, Wed, Sat").
func daysText(days [7]bool) string {
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	var on []time.Weekday
	run := true
	for i, d := range order {
		if days[d] {
			if len(on) > 0 && order[i-1] != on[len(on)-1] {
				run = false
			}
			on = append(on, d)
		}
	}
	switch {
	case len(on) == 0:
		return "no days"
	case len(on) == 7:
		return "every day"
	case len(on) >= 3 && run:
		return on[0].String()[:3] + "–" + on[len(on)-1].String()[:3]
	}
	names := make([]string, len(on))
	for i, d := range on {
		names[i] = d.String()[:3]
	}
	return strings.Join(names, ", ")
}

// outOfHours is the out-of-hours check (CONTRACT §2, §4).
type outOfHours struct{ slot int }

func (outOfHours) Name() string { return Name }

// Evaluate judges ev in event time on the org's local clock.
func (c outOfHours) Evaluate(ev *event.Event, v *rules.Env, eps *rules.Episodes) bool {
	if !rules.IsAccess(ev) {
		return false
	}
	actor := ev.Actor.ID
	role, team, _, _ := v.ActorGroups(ev)
	p := rules.Resolved[oohResolver](v, c.slot).Get(role, team)
	local := ev.Time.In(v.Location())

	ohRole := v.OutOfHoursRole(role)
	if ohRole || v.Roster().HasShifts(ev.ActorOrg(), actor) {
		if _, ok := v.Roster().ShiftAt(ev.ActorOrg(), actor, ev.Time, p.shiftGrace); ok {
			return true
		}
		roster, loc := v.Roster(), v.Location()
		eps.Add(v, ev, rules.Finding{Pattern: PatternOutsideShift, Severity: p.severity, Gap: p.gap, Lead: func() string {
			why := "outside their rostered shifts"
			if s, ok := roster.NearestShift(ev.ActorOrg(), actor, ev.Time); ok {
				why = shiftReason(local, s.Start.In(loc), s.End.In(loc))
			} else if ohRole {
				why = "with no rostered shift, which their out-of-hours role needs"
			}
			return rules.Lead(ev, role, team, local, why)
		}})
		return true
	}

	in, holidayOnly := p.inWorkingHours(v, local)
	if in {
		return true
	}
	pattern := PatternOutsideWorkingHours
	if holidayOnly {
		pattern = PatternBankHoliday
	}
	eps.Add(v, ev, rules.Finding{Pattern: pattern, Severity: p.severity, Gap: p.gap, Lead: func() string {
		why := "outside default working hours (" + p.hoursText + ")"
		if p.bankHolidays {
			if name, ok := v.IsHoliday(local); ok {
				why = "a bank holiday (" + name + "), " + why
			}
		}
		return rules.Lead(ev, role, team, local, why)
	}})
	return true
}

// inWorkingHours reports whether local (a time on the org's clock) falls in
// default working hours, widened by the grace, and, when it does not,
// whether it would but for a bank holiday. Windows are built on the wall
// clock of each day with time.Date, so a DST change moves them correctly;
// the days either side are looked at because grace, or hours running past
// midnight, can reach into the next day.
func (p *oohPolicy) inWorkingHours(v *rules.Env, local time.Time) (in, holidayOnly bool) {
	y, m, d := local.Date()
	loc := local.Location()
	for off := -1; off <= 1; off++ {
		day := time.Date(y, m, d+off, 0, 0, 0, 0, loc)
		if !p.days[day.Weekday()] {
			continue
		}
		dy, dm, dd := day.Date()
		from := time.Date(dy, dm, dd, p.start.Hour, p.start.Minute, 0, 0, loc).Add(-p.hoursGrace)
		endDay := dd
		if !p.start.before(p.end) {
			endDay++ // runs past midnight
		}
		to := time.Date(dy, dm, endDay, p.end.Hour, p.end.Minute, 0, 0, loc).Add(p.hoursGrace)
		if local.Before(from) || local.After(to) {
			continue
		}
		if p.bankHolidays {
			if _, ok := v.IsHoliday(day); ok {
				holidayOnly = true
				continue
			}
		}
		return true, false
	}
	return false, holidayOnly
}

func (c Clock) before(o Clock) bool {
	return c.Hour < o.Hour || (c.Hour == o.Hour && c.Minute < o.Minute)
}

// shiftReason says how far local lies from the nearest shift.
func shiftReason(local, start, end time.Time) string {
	switch {
	case local.After(end):
		return rules.Span(local.Sub(end)) + " after their rostered shift ended at " + rules.ClockOn(end, local)
	case local.Before(start):
		return rules.Span(start.Sub(local)) + " before their rostered shift started at " + rules.ClockOn(start, local)
	}
	return "outside their rostered shifts"
}
