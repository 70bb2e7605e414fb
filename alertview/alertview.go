// Package alertview is the read model of alerts that the web UI shows and
// the stores answer: the queue's query and rows, the overview's counts, the
// activity heatmap, the trend and the feeds' health. The web UI declares the
// interface it reads through (web.Store) in these terms; the stores
// implement it without importing the UI.
package alertview

import (
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/triage"
)

// AlertQuery selects alerts. Zero fields match everything, except that a
// non-nil empty Orgs or Teams matches nothing.
type AlertQuery struct {
	Orgs     []string // scope: nil = all orgs
	Teams    []string // scope: nil = all teams (managers get their teams)
	Org      string   // filters chosen in the queue
	Team     string
	Check    string
	Risk     string // a risk id, e.g. R2
	DPIA     string // the DPIA the risk id belongs to: "R1" differs per DPIA
	Severity alert.Severity
	Status   string // open, triaged, or one TriageOutcome
	ActorID  string
	Limit    int // 0: 500
	// Offset skips that many alerts of the order: with Limit, one page.
	Offset int
	// Order is OrderRecent (the zero value) or OrderWork.
	Order string
}

// Orders of WebAlerts. Each ends with the alert id, so that a page never
// repeats or skips an alert of equal keys.
const (
	// OrderRecent is the most recent LastSeen first.
	OrderRecent = ""
	// OrderWork is the work queue's: the most severe first, then the
	// oldest (FirstSeen) first, so that what has waited longest is at the
	// top of its severity.
	OrderWork = "work"
)

// StatusCount is how many alerts of a query have one status (open or a
// triage outcome).
type StatusCount struct {
	Status string
	Count  int
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

// Triage statuses for display and filtering (an AlertQuery's Status is one
// of these or one triage outcome).
const (
	StatusOpen    = "open"
	StatusTriaged = "triaged" // filter only: any outcome
)

// TriageSource is the triage.Decision source of decisions made in the web UI.
const TriageSource = "web"

// Triage is the latest decision about an alert, as the UI shows it.
type Triage struct {
	AlertID string
	Outcome string
	By      string // the account that recorded it: a web user, api:<client> or slack:<user id>
	At      time.Time
	Note    string
	Source  string         // where it was recorded: "web", "api" or "slack" (triage.Decision.Source)
	Action  *triage.Action // the follow-up the latest decision records; nil: none
}
