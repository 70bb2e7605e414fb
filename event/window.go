package event

import (
	"fmt"
	"strings"
	"time"
)

// Default bounds of TimeWindow (ingest.event_time in the configuration).
const (
	// DefaultMaxAge is a year of history, the span of an annual DPIA
	// review, plus a month for a producer catching up: a back-fill of a
	// new system's last year is accepted, an event dated 1970 or year 1 is
	// not.
	DefaultMaxAge = 400 * 24 * time.Hour
	// DefaultMaxAhead allows for the clock skew of the producers' hosts.
	DefaultMaxAhead = 5 * time.Minute
)

// TimeWindow bounds event time around a reference instant (now, for the
// daemon): an event older than MaxAge or further ahead than MaxAhead is
// refused. A time so far off is a broken producer clock or a hostile
// producer; judged, it would raise absurd alerts, and an event from the
// future would move the checks' watermarks past every real event.
type TimeWindow struct {
	MaxAge, MaxAhead time.Duration
	// AgeBound names what sets MaxAge in the rejection's detail; empty
	// means "max_age" and the duration (the configuration key).
	AgeBound string
}

// Check returns nil when t is within the window around now, else an *Error
// with ReasonEventTimeOutOfRange whose detail names the bound broken (never
// the time itself, which an unrelated reader could tie to a person's
// access).
func (w TimeWindow) Check(t, now time.Time) error {
	if err := w.CheckAhead(t, now); err != nil {
		return err
	}
	return w.CheckAge(t, now, "now")
}

// CheckAhead applies only the MaxAhead bound, after now (Check).
func (w TimeWindow) CheckAhead(t, now time.Time) error {
	if t.After(now.Add(w.MaxAhead)) {
		return &Error{Reason: ReasonEventTimeOutOfRange, Detail: fmt.Sprintf("time is more than max_ahead %s after now", formatBound(w.MaxAhead))}
	}
	return nil
}

// CheckAge applies only the MaxAge bound, before ref; refName says what ref
// is in the detail ("now"; a replay's "the newest event in the input").
func (w TimeWindow) CheckAge(t, ref time.Time, refName string) error {
	if t.Before(ref.Add(-w.MaxAge)) {
		bound := w.AgeBound
		if bound == "" {
			bound = "max_age " + formatBound(w.MaxAge)
		}
		return &Error{Reason: ReasonEventTimeOutOfRange, Detail: fmt.Sprintf("time is more than %s before %s", bound, refName)}
	}
	return nil
}

// formatBound writes a bound as the configuration reads it ("9600h",
// "5m", not "9600h0m0s", "5m0s").
func formatBound(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "h0m0s") {
		return strings.TrimSuffix(s, "0m0s")
	}
	if strings.HasSuffix(s, "m0s") {
		return strings.TrimSuffix(s, "0s")
	}
	return s
}

// TimeWindows is a TimeWindow for each org, and one for the others.
type TimeWindows struct {
	Default TimeWindow
	ByOrg   map[string]TimeWindow
}

// Check applies ev's org's window (TimeWindow.Check).
func (w *TimeWindows) Check(ev *Event, now time.Time) error {
	return w.For(ev.Org).Check(ev.Time, now)
}

// For is org's window.
func (w *TimeWindows) For(org string) TimeWindow {
	if ow, ok := w.ByOrg[org]; ok {
		return ow
	}
	return w.Default
}
