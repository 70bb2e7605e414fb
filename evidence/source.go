package evidence

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/store"
)

// Source is what an export needs from a store: aggregates only. A county's
// quarter is tens of millions of events, so no method returns events; each
// is one grouped query (store/sqlite/evidence.go, store/clickhouse/evidence.go).
type Source interface {
	// EvidenceCoverage counts q.Org's events per local day and system, and
	// the distinct actors per local day.
	EvidenceCoverage(ctx context.Context, q CoverageQuery) (Coverage, error)
	// EvidenceAlerts counts the alerts of q by org, check, pattern,
	// severity and risk list.
	EvidenceAlerts(ctx context.Context, q AlertQuery) ([]AlertGroup, error)
}

// TriageSource is offered by stores that keep triage decisions
// (store.Triages, and the web UI's).
type TriageSource interface {
	// EvidenceTriage counts the alerts of q by their latest triage outcome
	// ("" when untriaged) and by how soon their first decision came.
	EvidenceTriage(ctx context.Context, q AlertQuery) ([]TriageGroup, error)
	// EvidenceConfirmed lists the alerts of q whose latest outcome is
	// confirmed misuse (few by nature), ordered by first seen then id.
	EvidenceConfirmed(ctx context.Context, q AlertQuery) ([]ConfirmedAlert, error)
}

// RoutineAuditSource is offered by stores that record managers' routine
// audits (samples of access reviewed). No store records them yet: the
// report then says "no routine-audit data" rather than zero.
type RoutineAuditSource interface {
	EvidenceRoutineAudits(ctx context.Context, q AlertQuery) ([]RoutineAuditGroup, error)
}

// AuditRecorder is offered by stores with an audit trail; an export with
// identities is recorded there before any file is written.
type AuditRecorder interface {
	EvidenceAudit(ctx context.Context, e store.AuditEntry) error
}

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
	nBuckets
)

// TriageGroup counts alerts with the same AlertGroup key and latest outcome.
type TriageGroup struct {
	AlertGroup
	Outcome string // latest decision; "" untriaged
	// Buckets counts the triaged alerts by time to first decision;
	// Seconds is the sum of those times in whole seconds.
	Buckets [nBuckets]int64
	Seconds int64
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
