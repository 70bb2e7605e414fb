package web

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// Store is everything the web UI reads and writes: a narrow interface so that
// each store (store/sqlite/web.go; ClickHouse later) implements only these
// queries. Every method takes org and team scopes explicitly; the web
// package decides the scopes from the viewer's role, and the store applies
// them in the query, so that an out-of-scope row never reaches a handler.
type Store interface {
	// WebAlerts returns the alerts matching q, most recent LastSeen first.
	WebAlerts(ctx context.Context, q AlertQuery) ([]AlertRow, error)
	// WebAlert returns one alert with its team and triage, or an error
	// wrapping store.ErrNotFound.
	WebAlert(ctx context.Context, id string) (AlertRow, error)
	// WebAlertCounts counts alerts by org, DPIA, check, risk and whether
	// they are triaged, within the scope of q (its Orgs and Teams only).
	WebAlertCounts(ctx context.Context, q AlertQuery) ([]AlertCount, error)
	// WebHourlyActivity counts events in [q.From, q.To) per UTC hour, for one
	// actor or for every actor of one team, and the number of distinct
	// actors counted.
	WebHourlyActivity(ctx context.Context, q ActivityQuery) (hours []HourCount, actors int, err error)
	// WebActorTeam returns the team the actor's most recent event in org
	// names ("" when none does).
	WebActorTeam(ctx context.Context, org, actorID string) (string, error)
	// AddTriage is store.Triages': a decision made in the UI is the same
	// record as one made in Slack or through the API (the latest wins).
	AddTriage(ctx context.Context, t store.Triage) (store.Triage, error)
	// WebAlertTrend counts the alerts in q's scope (its Orgs and Teams
	// only) first seen in [from, to) per org, risk and UTC day.
	WebAlertTrend(ctx context.Context, q AlertQuery, from, to time.Time) ([]TrendCount, error)
	// WebFeeds reports, per org (nil: all) and system with events since
	// since, the newest event time and the number of events since recent.
	WebFeeds(ctx context.Context, orgs []string, since, recent time.Time) ([]Feed, error)
	// WebRecordView appends v to the view log: someone looked at or
	// exported personal data.
	WebRecordView(ctx context.Context, v View) error
	// WebViews returns recorded views, newest first, at most limit.
	WebViews(ctx context.Context, limit int) ([]View, error)
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

// AlertQuery selects alerts. Zero fields match everything, except that a
// non-nil empty Orgs or Teams matches nothing.
type AlertQuery struct {
	Orgs     []string // scope: nil = all orgs
	Teams    []string // scope: nil = all teams (managers get their teams)
	Org      string   // filters chosen in the queue
	Team     string
	Check    string
	Risk     string // a risk id, e.g. R2
	Severity alert.Severity
	Status   string // open, triaged, or one TriageOutcome
	ActorID  string
	Limit    int // 0: 500
}

// AlertRow is an alert with what the UI adds to it.
type AlertRow struct {
	alert.Alert
	// Team is the actor's team as their latest event up to the alert's
	// LastSeen names it; managers are scoped by it.
	Team   string
	Triage *Triage // nil: open
}

// Status is the alert's triage status for display and filtering.
func (r AlertRow) Status() string {
	if r.Triage == nil {
		return StatusOpen
	}
	return r.Triage.Outcome
}

// AlertCount is one row of the overview. Team is the alerts' team ("" when
// their worker's events name none).
type AlertCount struct {
	Org, DPIA, Check, Risk, Team string
	Open, Triaged                int
	LastSeen                     time.Time
}

// ActivityQuery selects events for a heatmap: ActorID or Team (not both),
// or neither for the whole org.
type ActivityQuery struct {
	Org      string
	ActorID  string
	Team     string
	From, To time.Time
}

// TrendCount is the number of alerts of one org and risk first seen on the
// UTC day starting at Day.
type TrendCount struct {
	Org, Risk string
	Day       time.Time
	Count     int
}

// Feed is the health of one data feed: an org's events from one system.
type Feed struct {
	Org, System string
	LastEvent   time.Time
	Recent      int // events since the query's recent bound
}

// HourCount is the number of events in the UTC hour starting at Hour.
type HourCount struct {
	Hour  time.Time
	Count int
}

// Triage statuses and outcomes (the same four as the alerting API's).
const (
	StatusOpen    = "open"
	StatusTriaged = "triaged" // filter only: any outcome

	OutcomeAcknowledged   = "acknowledged"
	OutcomeExplained      = "explained"
	OutcomeConfirmed      = "confirmed-misuse"
	OutcomeFalsePositive  = "false-positive"
	maxTriageNoteRunes    = 2000
	maxViewsShownToTheDPO = 500
)

// TriageOutcomes lists the outcomes an ig-team member may record.
var TriageOutcomes = []string{OutcomeAcknowledged, OutcomeExplained, OutcomeConfirmed, OutcomeFalsePositive}

// TriageSource is the store.Triage source of decisions made in the UI.
const TriageSource = "web"

// Triage is the latest decision about an alert, as the UI shows it.
type Triage struct {
	AlertID string
	Outcome string
	By      string // the account that recorded it: a web user, api:<client> or slack:<user id>
	At      time.Time
	Note    string
	Source  string // where it was recorded: "web", "api" or "slack" (store.Triage.Source)
}

// View is one look at, or export of, personal data: the access log of the
// monitor itself, shown to the DPO.
type View struct {
	At   time.Time
	User string
	Role string
	// Kind is what was looked at: ViewAlert, ViewActor, ViewSample,
	// ViewEvidence, ViewQueue, ViewAlertsCSV, ViewLog or one of the ViewAPI*
	// kinds.
	Kind string
	// Org is the org whose data was seen; "" when it was several (or none
	// in a viewer's scope).
	Org string
	// Target is the alert id, actor id, team/period of a sample, or the
	// queue's filters as a query string ("" unfiltered).
	Target string
	// Rows is how many rows of personal data were listed: a queue's or an
	// export's alerts, an alert's timeline events, a worker page's alerts,
	// a sample's accesses, the view log's entries; 0 for an evidence pack
	// (its manifest counts what it holds).
	Rows int
}

// View kinds: a fixed set.
const (
	ViewAlert     = "alert"
	ViewActor     = "actor"
	ViewSample    = "sample"
	ViewEvidence  = "evidence"
	ViewQueue     = "queue"
	ViewAlertsCSV = "alerts-csv"
	ViewLog       = "views"
	// Reads over the alerting API (/api/v1), recorded by the daemon with
	// the API client as the user and "api" as the role.
	ViewAPITriage   = "api-triage"
	ViewAPISilences = "api-silences"
	ViewAPIAudit    = "api-audit"
)
