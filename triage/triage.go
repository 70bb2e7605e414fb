// Package triage is what the IG team decides about an alert: the decision
// (acknowledged, explained, confirmed misuse, false positive), who made it,
// when and where (Slack, the web UI, the alerting API). The newest decision
// is the alert's status. Stores keep decisions (store.Triages); alerting,
// the web UI and the evidence export read them.
package triage

import "time"

// Triage outcomes: what the IG team decided about an alert.
const (
	Acknowledged    = "acknowledged"     // seen, being looked at
	Explained       = "explained"        // a legitimate reason exists
	ConfirmedMisuse = "confirmed-misuse" // inappropriate access
	FalsePositive   = "false-positive"   // the check was wrong
)

// Outcomes lists the outcomes (also the fixed metric label set).
var Outcomes = []string{Acknowledged, Explained, ConfirmedMisuse, FalsePositive}

// Decision is one triage decision about an alert. Seq orders triages (assigned by
// the store); the newest one is the alert's status.
type Decision struct {
	Seq     int64     `json:"seq"`
	AlertID string    `json:"alert_id"`
	Outcome string    `json:"outcome"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Note    string    `json:"note,omitempty"`
	Source  string    `json:"source"` // "slack" or "api"
}
