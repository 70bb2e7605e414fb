// Package evidencequery holds the aggregate queries an evidence pack is built
// from and their results: event coverage per day and system, alerts grouped
// by check and risk, triage outcomes and times, confirmed misuse, routine
// audits. The evidence export declares the interfaces it reads through
// (evidence.Source …) in these terms; the stores implement them without
// importing the export.
package evidencequery

import "time"

// CoverageQuery selects one org's events over whole local days.
type CoverageQuery struct {
	Org string
	// Days are the local midnights bounding the days: day i is
	// [Days[i], Days[i+1]). len(Days) >= 2.
	Days []time.Time
	// Location is the days' IANA zone. A store that buckets in its own
	// engine (ClickHouse) uses it, and must agree with Days.
	Location *time.Location
	// LateAfter: an event stored more than this after its event time is
	// late. Zero: lateness is not asked for.
	LateAfter time.Duration
}

// Coverage is the result of EvidenceCoverage.
type Coverage struct {
	Days []DayCount // by day index, then system
	// Actors[i] is the number of distinct actors of day i (len(Days)-1 long).
	Actors []int64
	// LateRecorded: the store records arrival times, so DayCount.Late is
	// meaningful. The embedded store does not.
	LateRecorded bool
}

// DayCount is the events of one system on one day.
type DayCount struct {
	Day    int // index into CoverageQuery.Days
	System string
	Events int64
	Late   int64
}

// AlertQuery selects the alerts of one DPIA first seen in [From, To).
type AlertQuery struct {
	DPIA     string
	From, To time.Time
}

// AlertGroup counts alerts with the same org, check, pattern, severity and
// risks (the risks list of an alert, in its own order).
type AlertGroup struct {
	Org, Check, Pattern, Severity string
	Risks                         []string
	Alerts                        int64
}

// Time-to-triage buckets: from an alert's first event to its first triage
// decision.
const (
	BucketHour  = iota // within 1 hour
	BucketDay          // within 24 hours
	BucketWeek         // within 7 days
	BucketLater        // later
	NBuckets           // the number of buckets
)

// TriageGroup counts alerts with the same AlertGroup key and latest outcome.
type TriageGroup struct {
	AlertGroup
	Outcome string // latest decision; "" untriaged
	// Buckets counts the triaged alerts by time to first decision;
	// Seconds is the sum of those times in whole seconds.
	Buckets [NBuckets]int64
	Seconds int64
	// Earliest is the first seen of the group's oldest alert: for the
	// untriaged group, how long the backlog has waited.
	Earliest time.Time
}

// ConfirmedAlert is one alert confirmed as misuse.
type ConfirmedAlert struct {
	ID, Org, Check, Pattern, Severity string
	Risks                             []string
	ActorID, SubjectID                string
	FirstSeen, LastSeen               time.Time
	Events                            int64
	DecidedAt                         time.Time // latest decision
}

// ActionAlert is one alert whose latest decision records a follow-up
// action (triage.Action).
type ActionAlert struct {
	ID, Org, Check, Pattern, Severity string
	Risks                             []string
	Outcome                           string // the latest decision
	Owner, Due, Status                string // Due: local day "YYYY-MM-DD" or ""
	FirstSeen                         time.Time
	DecidedAt                         time.Time // the latest decision
}

// RoutineAuditGroup counts routine-audit samples reviewed for one org.
type RoutineAuditGroup struct {
	Org      string
	Samples  int64 // samples of access reviewed
	Findings int64 // samples that found inappropriate access
}

// TriageBucket returns the bucket of a time to triage.
func TriageBucket(d time.Duration) int {
	switch {
	case d <= time.Hour:
		return BucketHour
	case d <= 24*time.Hour:
		return BucketDay
	case d <= 7*24*time.Hour:
		return BucketWeek
	}
	return BucketLater
}
