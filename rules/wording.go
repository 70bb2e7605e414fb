package rules

// Wording shared by the checks' explanations: one alert sentence reads the
// same whichever check wrote it. Explanations name actors by pseudonymous id,
// role and team only, never a subject, and quote only plain labels
// (PlainWord).

import (
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
)

// DefaultEpisodeGap is how close in time findings of one actor and pattern
// must lie to join one episode, unless a check's policy says otherwise
// (CONTRACT §4).
const DefaultEpisodeGap = time.Hour

// IsAccess reports whether ev is access to the system: a successful action
// other than ending a session (logout, lock, timeout). A failed login gives
// no access.
func IsAccess(ev *event.Event) bool {
	if ev.Outcome == event.OutcomeFailure {
		return false
	}
	switch ev.Action {
	case event.ActionLogout, event.ActionLock, event.ActionTimeout, event.ActionLoginFailed:
		return false
	}
	return true
}

// ClockOn renders t as HH:MM, adding the day when it is not ref's day.
func ClockOn(t, ref time.Time) string {
	ty, tm, td := t.Date()
	ry, rm, rd := ref.Date()
	if ty == ry && tm == rm && td == rd {
		return t.Format("15:04")
	}
	return t.Format("15:04 on Mon 2 Jan")
}

// Span renders a duration for a manager: "45m", "1h14m", "2d3h".
func Span(d time.Duration) string {
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

// Lead is the clause that opens an out-of-hours explanation. It names the
// actor by pseudonymous id, role and team only; never the subject.
func Lead(ev *event.Event, role, team string, local time.Time, why string) string {
	var b strings.Builder
	b.WriteString(ev.Actor.ID)
	var tags []string
	for _, s := range []string{role, team} {
		if PlainWord(s) {
			tags = append(tags, s)
		}
	}
	if len(tags) > 0 {
		b.WriteString(" (" + strings.Join(tags, ", ") + ")")
	}
	b.WriteString(" " + Doing(ev))
	b.WriteString(" at " + local.Format("15:04 on Mon 2 Jan 2006") + ", " + why)
	return b.String()
}

// Doing describes the action: "viewed a care-plan record".
func Doing(ev *event.Event) string {
	kind := ""
	if PlainWord(ev.Record.Type) {
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

// PlainWord reports whether s is a short lower-case label (a role, team or
// record type, as configured vocabularies spell them) fit to quote in an
// explanation; anything else, which might carry free text or a name, is
// left out.
func PlainWord(s string) bool {
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

// DateText renders a day, with the time when it is not midnight.
func DateText(t time.Time) string {
	if t.Hour() == 0 && t.Minute() == 0 {
		return t.Format("2 Jan 2006")
	}
	return t.Format("15:04 on 2 Jan 2006")
}
