package evidence

import (
	"fmt"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/triage"
)

// The reports' words for the data's codes and times, shared by report.html
// and report.pdf. evidence.json keeps the codes and RFC 3339 times.

// location is the report's timezone (the DPIA's orgs'), UTC if unknown.
func (r *Report) location() *time.Location {
	if loc, err := time.LoadLocation(r.Period.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// localTime is an RFC 3339 time as a UK reader writes it, in the report's
// timezone: "2 Apr 2026, 10:30 BST". Anything else is returned as it is.
func (r *Report) localTime(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.In(r.location()).Format("2 Jan 2006, 15:04 MST")
}

// dayText is a YYYY-MM-DD day as "2 Mar 2026".
func dayText(s string) string {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return t.Format("2 Jan 2006")
}

// daySpan is a range of days in words: "2 – 5 Mar 2026", "28 Feb – 3 Mar
// 2026", or the day alone.
func daySpan(from, to string) string {
	f, err1 := time.Parse(time.DateOnly, from)
	t, err2 := time.Parse(time.DateOnly, to)
	switch {
	case err1 != nil || err2 != nil:
		return from + " – " + to
	case from == to:
		return dayText(from)
	case f.Year() == t.Year() && f.Month() == t.Month():
		return fmt.Sprintf("%d – %s", f.Day(), t.Format("2 Jan 2006"))
	case f.Year() == t.Year():
		return f.Format("2 Jan") + " – " + t.Format("2 Jan 2006")
	}
	return f.Format("2 Jan 2006") + " – " + t.Format("2 Jan 2006")
}

// periodLabel names a period briefly for a chart: "Q1 2026", "Mar 2026",
// or its days.
func periodLabel(from, to string) string {
	f, err1 := time.Parse(time.DateOnly, from)
	t, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil || f.Day() != 1 || t.AddDate(0, 0, 1).Day() != 1 {
		return daySpan(from, to)
	}
	months := (t.Year()-f.Year())*12 + int(t.Month()-f.Month()) + 1
	switch {
	case months == 1:
		return f.Format("Jan 2006")
	case months == 3 && (f.Month()-1)%3 == 0:
		return fmt.Sprintf("Q%d %d", (f.Month()-1)/3+1, f.Year())
	case months == 12 && f.Month() == time.January:
		return fmt.Sprint(f.Year())
	}
	return f.Format("Jan") + " – " + t.Format("Jan 2006")
}

// uncoveredText is why a range is not covered, with local times.
func (r *Report) uncoveredText(o OrgCoverage, u DateRange) string {
	if u.Reason == UncoveredFeedIncomplete {
		if o.CompleteUpTo == "" {
			return "feed not complete for any period"
		}
		return "feed not complete after " + r.localTime(o.CompleteUpTo)
	}
	return u.Detail
}

// outcomeWords is a triage outcome in the web UI's words (triage.Label);
// "untriaged" is an alert still open.
func outcomeWords(o string) string {
	if o == "untriaged" {
		o = triage.Open
	}
	return triage.Label(o)
}

// actionWords is an action status in the UI's words.
func actionWords(s string) string { return triage.ActionLabel(s) }

// residualText is a register score, or says the DPIA gave none.
func residualText(s string) string {
	if strings.TrimSpace(s) == "" {
		return NotScored
	}
	return s
}

// levelWords, versusWords, statusWords and directionWords put codes in
// plain words.
func levelWords(level string) string {
	switch level {
	case LevelNotAssessable:
		return "not assessable"
	case "":
		return "—"
	}
	return level
}

func versusWords(v string) string {
	switch v {
	case VersusAbove:
		return "higher than expected"
	case VersusInLine:
		return "as expected"
	case VersusBelow:
		return "lower than expected"
	}
	return "—"
}

func statusWords(rag string) string {
	switch rag {
	case StatusRed:
		return "Red"
	case StatusAmber:
		return "Amber"
	case StatusGreen:
		return "Green"
	}
	return "Not rated"
}

func directionWords(d string) string {
	switch d {
	case DirectionWorse:
		return "worse"
	case DirectionBetter:
		return "better"
	case DirectionSame:
		return "no change"
	}
	return "n/a"
}

// rateText is the rate with its 95% interval, or why there is none.
func rateText(o Observed) string {
	if o.RatePer10k == "" {
		return "not assessable"
	}
	return fmt.Sprintf("%s (%s–%s)", o.RatePer10k, o.RateLow, o.RateHigh)
}

// backlogText is a risk's undecided alerts and the oldest one's age.
func backlogText(k RiskReport) string {
	switch {
	case !k.Triage.Available:
		return "not recorded"
	case k.Backlog.Alerts == 0:
		return "none"
	}
	return fmt.Sprintf("%d, oldest %s", k.Backlog.Alerts, plural(k.Backlog.AgeDays, "day"))
}
