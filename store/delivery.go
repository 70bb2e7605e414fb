package store

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/audit"
)

// Alert delivery (package alerting) keeps its progress in the store: the
// outbox of each receiver, the versions a receiver refused, and where a
// message about an alert was posted. These interfaces stand beside Store so
// that a store can offer them without every store having to.

// Outbox tracks which version of each alert each receiver (console, Slack,
// webhook …) has been given, so that a restart resumes unsent notifications
// and never sends one twice.
type Outbox interface {
	// Pending returns up to limit alerts whose current Version has not been
	// delivered to receiver, the oldest change first. Alerts changed before
	// the receiver was first seen are included: nothing stored is skipped.
	Pending(ctx context.Context, receiver string, limit int) ([]alert.Alert, error)
	// MarkDelivered records that receiver has been given version of alertID.
	MarkDelivered(ctx context.Context, receiver, alertID string, version int64) error
	// MarkFailed records that f.Receiver refused f.Version of f.AlertID for
	// good (f.Reason) and takes it out of the receiver's queue, so that
	// the alerts behind it are sent; Resend puts it back.
	MarkFailed(ctx context.Context, f DeliveryFailure) error
}

// DeliveryFailure is an alert version a receiver refused (Slack's
// msg_too_long, a webhook's 422 …): given up, and shown in the web UI so
// that someone can send it again.
type DeliveryFailure struct {
	Receiver string    `json:"receiver"`
	AlertID  string    `json:"alert_id"`
	Version  int64     `json:"version"`
	Reason   string    `json:"reason"` // a short code, never alert content
	At       time.Time `json:"at"`
}

// DeliveryFailures reads and clears what MarkFailed recorded.
type DeliveryFailures interface {
	// DeliveryFailures returns the failures of one alert by receiver.
	DeliveryFailures(ctx context.Context, alertID string) ([]DeliveryFailure, error)
	// Resend forgets receiver's failure of alertID and its outbox mark, so
	// the alert's current version is pending again, and records audit in
	// the same transaction. It returns ErrNotFound when there is no
	// failure to resend.
	Resend(ctx context.Context, receiver, alertID string, audit audit.Entry) error
}

// MessageRef is where a receiver posted its message about an alert (for
// Slack: channel and ts), so that later versions update that message and
// reply in its thread instead of posting again. Version is the newest alert
// version the message shows; a ref at or above a version is the proof that
// this version was sent, even if the outbox mark was lost to a crash.
type MessageRef struct {
	Receiver string
	AlertID  string
	Channel  string
	TS       string
	Version  int64
	// Digest: the message is a digest listing several alerts; it is never
	// rewritten for one of them, later versions reply in its thread.
	Digest bool
}

// Messages keeps MessageRefs by (receiver, alert id).
type Messages interface {
	// MessageRef returns the ref, or ErrNotFound.
	MessageRef(ctx context.Context, receiver, alertID string) (MessageRef, error)
	// PutMessageRef inserts or replaces the ref; a lower Version never
	// replaces a higher one.
	PutMessageRef(ctx context.Context, ref MessageRef) error
}

// AlertingStore is everything alert delivery needs from a store.
type AlertingStore interface {
	Outbox
	Messages
	Triages
	Silences
	Audit
	Alert(ctx context.Context, id string) (alert.Alert, error)
}
