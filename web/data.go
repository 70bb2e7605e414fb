package web

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// Store is everything the web UI reads and writes: a narrow interface so that
// each store (store/sqlite/web.go; ClickHouse later) implements only these
// queries. Every method takes org and team scopes explicitly; the web
// package decides the scopes from the viewer's role, and the store applies
// them in the query, so that an out-of-scope row never reaches a handler.
type Store interface {
	// WebAlerts returns the alerts matching q in q.Order (most recent
	// LastSeen first, or the work queue's), at most q.Limit from q.Offset.
	WebAlerts(ctx context.Context, q alertview.AlertQuery) ([]alertview.AlertRow, error)
	// WebAlert returns one alert with its team and triage, or an error
	// wrapping store.ErrNotFound.
	WebAlert(ctx context.Context, id string) (alertview.AlertRow, error)
	// WebAlertCounts counts alerts by org, DPIA, check, risk and whether
	// they are triaged, within the scope of q (its Orgs and Teams only).
	WebAlertCounts(ctx context.Context, q alertview.AlertQuery) ([]alertview.AlertCount, error)
	// WebStatusCounts counts the alerts matching q, its Status aside, per
	// status (open or the latest triage outcome), in status order.
	WebStatusCounts(ctx context.Context, q alertview.AlertQuery) ([]alertview.StatusCount, error)
	// WebHourlyActivity counts events in [q.From, q.To) per UTC hour, for one
	// actor or for every actor of one team, and the number of distinct
	// actors counted.
	WebHourlyActivity(ctx context.Context, q alertview.ActivityQuery) (hours []alertview.HourCount, actors int, err error)
	// WebActorTeam returns the team the actor's most recent event in org
	// names ("" when none does).
	WebActorTeam(ctx context.Context, org, actorID string) (string, error)
	// AddTriage is store.Triages': a decision made in the UI is the same
	// record as one made in Slack or through the API (the latest wins).
	AddTriage(ctx context.Context, t triage.Decision) (triage.Decision, error)
	// Triages is store.Triages': every decision about an alert, for its
	// history.
	Triages(ctx context.Context, alertID string) ([]triage.Decision, error)
	// AlertNotes keeps managers' notes on their teams' alerts.
	store.AlertNotes
	// WebAlertTrend counts the alerts in q's scope (its Orgs and Teams
	// only) first seen in [from, to) per org, risk and UTC day.
	WebAlertTrend(ctx context.Context, q alertview.AlertQuery, from, to time.Time) ([]alertview.TrendCount, error)
	// WebFeeds reports, per org (nil: all) and system with events since
	// since, the newest event time and the number of events since recent.
	WebFeeds(ctx context.Context, orgs []string, since, recent time.Time) ([]alertview.Feed, error)
	// WebRecordView appends v to the view log: someone looked at or
	// exported personal data.
	WebRecordView(ctx context.Context, v viewlog.View) error
	// WebViews returns recorded views, newest first, at most limit.
	WebViews(ctx context.Context, limit int) ([]viewlog.View, error)
	// ScanEvents is store.Reader's: the evidence timeline.
	ScanEvents(ctx context.Context, f store.EventFilter, fn func(event.Event) error) error
	// LoadState is store.Reader's: how far each org's feed is complete
	// (store.LoadCompleteness), shown on the overview and required before
	// a routine-audit sample is drawn.
	LoadState(ctx context.Context, prefix string) ([]store.StateEntry, error)
	// RoutineAudits keeps the samples managers review and their reviews.
	store.RoutineAudits
	// DeliveryFailures lists the receivers that refused an alert (Slack's
	// msg_too_long …) and puts one back in their queue (Re-send).
	store.DeliveryFailures
}

// ReferenceLookup is what the alert page reads of the reference data: the
// snapshot an alert was judged against, or the one in force at a time
// (store.ReferenceSnapshots').
type ReferenceLookup interface {
	ReferenceByID(ctx context.Context, id string) (store.ReferenceSnapshot, error)
	ReferenceAt(ctx context.Context, t time.Time) (store.ReferenceSnapshot, error)
}

// ReferenceIndex is what a routine-audit sample, and the alert page for
// local references, read of the reference data in force
// (*reference.Index answers it).
type ReferenceIndex interface {
	Staff(org, actorID string) (reference.Staff, bool)
	HasRelationships(org string) bool
	RelationshipAt(org, actorID, team, subjectID string, t time.Time) (reference.Relationship, bool)
	HasShifts(org, actorID string) bool
	ShiftAt(org, actorID string, t time.Time, grace time.Duration) (reference.Shift, bool)
	// SubjectRef is subjects.csv's display reference: personal data the
	// UI shows only to a viewer entitled to it (entitledToRef).
	SubjectRef(org, subjectID string) (string, bool)
}

var _ ReferenceIndex = (*reference.Index)(nil)

// Triage outcomes (the same four as the alerting API's) and input limits.
const (
	OutcomeAcknowledged   = "acknowledged"
	OutcomeExplained      = "explained"
	OutcomeConfirmed      = "confirmed-misuse"
	OutcomeFalsePositive  = "false-positive"
	maxTriageNoteRunes    = 2000
	maxViewsShownToTheDPO = 500
)

// TriageOutcomes lists the outcomes an ig-team member may record.
var TriageOutcomes = []string{OutcomeAcknowledged, OutcomeExplained, OutcomeConfirmed, OutcomeFalsePositive}
