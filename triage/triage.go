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

// Open is the status of an alert no decision has been recorded for.
const Open = "open"

// labels are the words people read for each status: the web UI and the
// evidence pack both take them from here, so that the board reads the
// same word the IG team clicked.
var labels = map[string]string{
	Open:            "Open",
	Acknowledged:    "Acknowledged",
	Explained:       "Explained (legitimate reason)",
	ConfirmedMisuse: "Confirmed misuse",
	FalsePositive:   "False positive",
}

// Label is an outcome, or Open, in the words the UI shows; an unknown
// outcome is shown as it is.
func Label(outcome string) string {
	if l, ok := labels[outcome]; ok {
		return l
	}
	return outcome
}

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
