package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
)

// Names of the out-of-hours check and its patterns (CONTRACT §3).
const (
	CheckOutOfHours = "out-of-hours"

	PatternOutsideShift        = "outside-shift"         // actor with rostered shifts, or of an out-of-hours role
	PatternOutsideWorkingHours = "outside-working-hours" // actor without shifts, outside default working hours
	PatternBankHoliday         = "bank-holiday"          // as above, when a bank holiday is the only reason
)

// Defaults of CONTRACT §4.
const (
	DefaultShiftGrace = 30 * time.Minute
	DefaultEpisodeGap = time.Hour
)

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

// OutOfHoursKnobs are the settings of the out-of-hours check at one level
// (org, role or team). A nil or zero field inherits from the less specific
// level, and in the end takes the CONTRACT §4 default.
type OutOfHoursKnobs struct {
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

// OutOfHoursPolicy is the out-of-hours check's settings for one org, with
// overrides for actors of a role or a team. Each knob is resolved on its
// own, most specific first: team, then role, then the org's knobs, then
// the defaults. (A team is the narrower group: its local arrangements win
// over what applies to a role across teams.) An actor's role and team come
// from the roster's staff record, else from the event.
type OutOfHoursPolicy struct {
	OutOfHoursKnobs
	Roles map[string]OutOfHoursKnobs
	Teams map[string]OutOfHoursKnobs
}

// oohPolicy is a fully resolved OutOfHoursKnobs.
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
type oohResolver = levels[oohPolicy]

func newOOHResolver(p OutOfHoursPolicy) (*oohResolver, error) {
	return newLevels(p.OutOfHoursKnobs, p.Roles, p.Teams, resolve)
}

// resolve merges levels, least specific first, over the defaults.
func resolve(levels []OutOfHoursKnobs) (*oohPolicy, error) {
	p := &oohPolicy{
		shiftGrace: DefaultShiftGrace, start: DefaultStart, end: DefaultEnd,
		bankHolidays: true, gap: DefaultEpisodeGap, severity: alert.SeverityMedium,
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

func (outOfHours) Name() string { return CheckOutOfHours }

// isAccess reports whether ev is access to the system: a successful action
// other than ending a session (logout, lock, timeout). A failed login gives
// no access.
func isAccess(ev *event.Event) bool {
	if ev.Outcome == event.OutcomeFailure {
		return false
	}
	switch ev.Action {
	case event.ActionLogout, event.ActionLock, event.ActionTimeout, event.ActionLoginFailed:
		return false
	}
	return true
}

// Evaluate judges ev in event time on the org's local clock.
func (c outOfHours) Evaluate(ev *event.Event, v *env, eps *episodes) bool {
	if !isAccess(ev) {
		return false
	}
	actor := ev.Actor.ID
	role, team := ev.Actor.Role, ev.Actor.Team
	if st, ok := v.roster.Staff(ev.ActorOrg(), actor); ok {
		if st.Role != "" {
			role = st.Role
		}
		if st.Team != "" {
			team = st.Team
		}
	}
	p := resolved[oohResolver](v.org, c.slot).get(role, team)
	local := ev.Time.In(v.org.loc)

	ohRole := v.org.ohRoles[role]
	if ohRole || v.roster.HasShifts(ev.ActorOrg(), actor) {
		if _, ok := v.roster.ShiftAt(ev.ActorOrg(), actor, ev.Time, p.shiftGrace); ok {
			return true
		}
		roster, loc := v.roster, v.org.loc
		eps.add(v, ev, finding{Pattern: PatternOutsideShift, Severity: p.severity, Gap: p.gap, Lead: func() string {
			why := "outside their rostered shifts"
			if s, ok := roster.NearestShift(ev.ActorOrg(), actor, ev.Time); ok {
				why = shiftReason(local, s.Start.In(loc), s.End.In(loc))
			} else if ohRole {
				why = "with no rostered shift, which their out-of-hours role needs"
			}
			return lead(ev, role, team, local, why)
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
	eps.add(v, ev, finding{Pattern: pattern, Severity: p.severity, Gap: p.gap, Lead: func() string {
		why := "outside default working hours (" + p.hoursText + ")"
		if p.bankHolidays {
			if name, ok := v.isHoliday(local); ok {
				why = "a bank holiday (" + name + "), " + why
			}
		}
		return lead(ev, role, team, local, why)
	}})
	return true
}

// inWorkingHours reports whether local (a time on the org's clock) falls in
// default working hours, widened by the grace, and, when it does not,
// whether it would but for a bank holiday. Windows are built on the wall
// clock of each day with time.Date, so a DST change moves them correctly;
// the days either side are looked at because grace, or hours running past
// midnight, can reach into the next day.
func (p *oohPolicy) inWorkingHours(v *env, local time.Time) (in, holidayOnly bool) {
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
			if _, ok := v.isHoliday(day); ok {
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
		return span(local.Sub(end)) + " after their rostered shift ended at " + clockOn(end, local)
	case local.Before(start):
		return span(start.Sub(local)) + " before their rostered shift started at " + clockOn(start, local)
	}
	return "outside their rostered shifts"
}

// clockOn renders t as HH:MM, adding the day when it is not ref's day.
func clockOn(t, ref time.Time) string {
	ty, tm, td := t.Date()
	ry, rm, rd := ref.Date()
	if ty == ry && tm == rm && td == rd {
		return t.Format("15:04")
	}
	return t.Format("15:04 on Mon 2 Jan")
}

// span renders a duration for a manager: "45m", "1h14m", "2d3h".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return strconv.Itoa(h) + "h"
		}
		return strconv.Itoa(h) + "h" + strconv.Itoa(m) + "m"
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return strconv.Itoa(days) + "d"
	}
	return strconv.Itoa(days) + "d" + strconv.Itoa(h) + "h"
}

// lead is the clause that opens an out-of-hours explanation. It names the
// actor by pseudonymous id, role and team only; never the subject.
func lead(ev *event.Event, role, team string, local time.Time, why string) string {
	var b strings.Builder
	b.WriteString(ev.Actor.ID)
	var tags []string
	for _, s := range []string{role, team} {
		if plainWord(s) {
			tags = append(tags, s)
		}
	}
	if len(tags) > 0 {
		b.WriteString(" (" + strings.Join(tags, ", ") + ")")
	}
	b.WriteString(" " + doing(ev))
	b.WriteString(" at " + local.Format("15:04 on Mon 2 Jan 2006") + ", " + why)
	return b.String()
}

// doing describes the action: "viewed a care-plan record".
func doing(ev *event.Event) string {
	kind := ""
	if plainWord(ev.Record.Type) {
		kind = ev.Record.Type + " "
	}
	one := "a " + kind + "record"
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		one = "an " + kind + "record"
	}
	switch ev.Action {
	case event.ActionLogin:
		return "logged in"
	case event.ActionUnlock:
		return "unlocked a session"
	case event.ActionSearch:
		return "searched " + kind + "records"
	case event.ActionView:
		return "viewed " + one
	case event.ActionCreate:
		return "created " + one
	case event.ActionUpdate:
		return "updated " + one
	case event.ActionDelete:
		return "deleted " + one
	case event.ActionExport:
		return "exported " + one
	case event.ActionPrint:
		return "printed " + one
	case event.ActionShare:
		return "shared " + one
	}
	return "acted"
}

// plainWord reports whether s is a short lower-case label (a role, team or
// record type, as configured vocabularies spell them) fit to quote in an
// explanation; anything else, which might carry free text or a name, is
// left out.
func plainWord(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// outOfHoursRegistration registers the out-of-hours check with the engine (registry).
var outOfHoursRegistration = registration{
	name:  CheckOutOfHours,
	build: func(slot int) check { return outOfHours{slot: slot} },
	policy: func(p any) (any, error) {
		pol, err := policyOf[OutOfHoursPolicy](CheckOutOfHours, p)
		if err != nil {
			return nil, err
		}
		return newOOHResolver(pol)
	},
}
