package store

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/triage"
)

// Retention classes: the kinds of the monitor's own data a retention policy
// sets a period for. They are also the fixed label values of the retention
// metrics.
const (
	RetainEvents     = "events"      // access events
	RetainCheckState = "check_state" // the checks' saved state
	RetainViewLogs   = "view_logs"   // who viewed which page in the web UI
	RetainAlerts     = "alerts"      // alerts with their triage, deliveries and Slack references
)

// RetentionClasses lists the classes in the order reports show them.
var RetentionClasses = []string{RetainEvents, RetainCheckState, RetainViewLogs, RetainAlerts}

// RetentionPeriods is how long each class is kept; 0 keeps it for ever.
type RetentionPeriods map[string]time.Duration

// RetentionPolicy is how long the store keeps each org's data (package
// config resolves it from each DPIA's schedule and store.retention).
type RetentionPolicy struct {
	// Default applies to orgs not in Orgs.
	Default RetentionPeriods
	Orgs    map[string]RetentionPeriods
	// ChunkRows bounds the rows one deletion transaction removes; 0: 5000.
	ChunkRows int
	// KeepStateContaining: of the checks' state keys (CheckStateMarker),
	// those containing any of these are never deleted, whatever their age
	// (events still waiting to be judged, each org's clock).
	KeepStateContaining []string
}

// CheckStateMarker is in every state key of the checks' own state (it is
// rules.StatePrefix, which task prefixes put after their own): the only
// state retention deletes, since it holds who accessed whom. Other state —
// completeness points, heartbeats, repartition outboxes — is bookkeeping
// the daemon needs, and is never deleted.
const CheckStateMarker = "rules/"

// ConflictStatePrefix keys the daemon's record that a conflicting
// duplicate was dead-lettered and alerted, kept so that a redelivered batch
// does not alert it twice. It holds no personal data, but there is one per
// conflict: retention ages it with the checks' state, long after any
// redelivery.
const ConflictStatePrefix = "integrity/conflict/"

// AgedStateMarkers: a state key containing any of these ages with
// RetainCheckState (unless it contains one of KeepStateContaining).
var AgedStateMarkers = []string{CheckStateMarker, ConflictStatePrefix}

// DefaultRetentionChunkRows is ChunkRows' zero value.
const DefaultRetentionChunkRows = 5000

// Period returns how long org's data of class is kept; 0: for ever.
func (p RetentionPolicy) Period(org, class string) time.Duration {
	if ps, ok := p.Orgs[org]; ok {
		return ps[class]
	}
	return p.Default[class]
}

// Chunk returns ChunkRows or its default.
func (p RetentionPolicy) Chunk() int {
	if p.ChunkRows > 0 {
		return p.ChunkRows
	}
	return DefaultRetentionChunkRows
}

// LongestPeriod returns the longest period of class over every org and the
// default; 0 when any of them keeps it for ever. It bounds data that is
// not kept per org (the checks' state is keyed by task, not by org).
func (p RetentionPolicy) LongestPeriod(class string) time.Duration {
	longest := p.Default[class]
	if longest == 0 {
		return 0
	}
	for _, ps := range p.Orgs {
		d := ps[class]
		if d == 0 {
			return 0
		}
		longest = max(longest, d)
	}
	return longest
}

// RetentionResult reports one retention run.
type RetentionResult struct {
	// Deleted counts rows deleted by org and class (an alert counts one
	// row, whatever else went with it; check state has org "").
	Deleted map[string]map[string]int64
	// KeptOpen counts alerts past their period kept because their triage
	// is not final (none, or acknowledged only).
	KeptOpen int64
	// Chunks is the number of deletion transactions; LongestChunk the
	// longest of them, the longest the write lock was held for.
	Chunks       int
	LongestChunk time.Duration
}

// Total returns the rows deleted of class, all orgs together.
func (r RetentionResult) Total(class string) int64 {
	var n int64
	for _, m := range r.Deleted {
		n += m[class]
	}
	return n
}

// RetentionStatus is what the evidence pack shows of retention.
type RetentionStatus struct {
	// LastRun is when retention last ran to the end; zero: never.
	LastRun time.Time
	// Deleted counts rows deleted by org and class in the asked period.
	Deleted map[string]map[string]int64
	// Oldest is the oldest data held by org and class (events by event
	// time, alerts by last seen, view logs by when, check state by last
	// write, org ""); absent: none held.
	Oldest map[string]map[string]time.Time
}

// Retainer is implemented by stores that apply a retention policy.
type Retainer interface {
	// Retain deletes, in transactions of at most the policy's ChunkRows
	// rows, each org's data older than its class's period at now, and
	// records the run. Alerts whose newest triage is not final are kept.
	Retain(ctx context.Context, p RetentionPolicy, now time.Time) (RetentionResult, error)
	// RetentionStatus returns the last run, the rows deleted in [from, to)
	// and the oldest data held.
	RetentionStatus(ctx context.Context, from, to time.Time) (RetentionStatus, error)
}

// FinalTriageOutcomes are the outcomes that close an alert: only such an
// alert may be deleted when its period has passed.
var FinalTriageOutcomes = []string{triage.Explained, triage.ConfirmedMisuse, triage.FalsePositive}
