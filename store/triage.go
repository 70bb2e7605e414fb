package store

import (
	"context"

	"github.com/dpiawatch/dpiawatch/triage"
)

// Triages stores triage decisions and tracks, like Outbox does for alerts,
// which receivers have been told of each.
type Triages interface {
	// AddTriage stores t (and its audit entry) and returns it with Seq set.
	// A nil t.Action keeps the action of the alert's previous decision.
	AddTriage(ctx context.Context, t triage.Decision) (triage.Decision, error)
	// Triages returns the triages of one alert, oldest first.
	Triages(ctx context.Context, alertID string) ([]triage.Decision, error)
	// PendingTriages returns up to limit triages not yet delivered to
	// receiver, oldest first.
	PendingTriages(ctx context.Context, receiver string, limit int) ([]triage.Decision, error)
	// MarkTriageDelivered records that receiver was told of triage seq.
	MarkTriageDelivered(ctx context.Context, receiver string, seq int64) error
}

// AlertNotes keeps the notes managers add to alerts about their own
// teams: context, not decisions. Each note is its own audit entry
// (action "alert.note"); retention deletes notes with their alert.
type AlertNotes interface {
	// AddAlertNote stores n (and its audit entry) and returns it with Seq
	// set.
	AddAlertNote(ctx context.Context, n triage.Note) (triage.Note, error)
	// AlertNotes returns the notes of one alert, oldest first.
	AlertNotes(ctx context.Context, alertID string) ([]triage.Note, error)
}
