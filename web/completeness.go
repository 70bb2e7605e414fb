package web

import (
	"fmt"
	"time"
)

// Feed completeness (store.CompletenessPrefix): how far in event time each
// org's feed is complete — every access up to that point is stored and
// judged. It is shown where people judge (the overview, routine audits),
// because counts, charts and samples over a period the feed has not
// completed would look final while accesses are still to come.

// completenessView is one org's completeness as the overview shows it.
type completenessView struct {
	Recorded bool   // a point is recorded; else not complete for any period
	At       string // the point, in the org's zone
	Newest   string // the newest stored event ("" when none in the window)
	// Behind is how far the newest stored event is past the point, in
	// words ("" when it is not): events that far are stored but the feed
	// is not complete for them yet.
	Behind string
}

// completeness describes org's point against the newest stored event
// (zero: none known).
func (s *Server) completeness(org string, at time.Time, recorded bool, newest time.Time) completenessView {
	v := completenessView{Recorded: recorded, Newest: s.fmtTime(org, newest)}
	if recorded {
		v.At = s.fmtTime(org, at)
		if newest.After(at) {
			v.Behind = durationWords(newest.Sub(at))
		}
	}
	return v
}

// durationWords is d for people: "under a minute", "5 minutes",
// "2 hours 5 minutes", "3 days 4 hours" (rounded down).
func durationWords(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	days, hours, mins := int64(d/(24*time.Hour)), int64(d/time.Hour)%24, int64(d/time.Minute)%60
	switch {
	case days > 0 && hours > 0:
		return plural(days, "day") + " " + plural(hours, "hour")
	case days > 0:
		return plural(days, "day")
	case hours > 0 && mins > 0:
		return plural(hours, "hour") + " " + plural(mins, "minute")
	case hours > 0:
		return plural(hours, "hour")
	case mins > 0:
		return plural(mins, "minute")
	}
	return "under a minute"
}
