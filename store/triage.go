package store

import (
	"context"
	"time"
)

// Triage outcomes: what the IG team decided about an alert.
const (
	TriageAcknowledged    = "acknowledged"     // seen, being looked at
	TriageExplained       = "explained"        // a legitimate reason exists
	TriageConfirmedMisuse = "confirmed-misuse" // inappropriate access
	TriageFalsePositive   = "false-positive"   // the check was wrong
)

// TriageOutcomes lists the outcomes (also the fixed metric label set).
var TriageOutcomes = []string{TriageAcknowledged, TriageExplained, TriageConfirmedMisuse, TriageFalsePositive}

// Triage is one decision about an alert. Seq orders triages (assigned by
// the store); the newest one is the alert's status.
type Triage struct {
	Seq     int64     `json:"seq"`
	AlertID string    `json:"alert_id"`
	Outcome string    `json:"outcome"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Note    string    `json:"note,omitempty"`
	Source  string    `json:"source"` // "slack" or "api"
}

// Triages stores triage decisions and tracks, like Outbox does for alerts,
// which receivers have been told of each.
type Triages interface {
	// AddTriage stores t (and its audit entry) and returns it with Seq set.
	AddTriage(ctx context.Context, t Triage) (Triage, error)
	// Triages returns the triages of one alert, oldest first.
	Triages(ctx context.Context, alertID string) ([]Triage, error)
	// PendingTriages returns up to limit triages not yet delivered to
	// receiver, oldest first.
	PendingTriages(ctx context.Context, receiver string, limit int) ([]Triage, error)
	// MarkTriageDelivered records that receiver was told of triage seq.
	MarkTriageDelivered(ctx context.Context, receiver string, seq int64) error
}
