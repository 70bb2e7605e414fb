package store

import (
	"context"
	"time"
)

// AuditEntry is one change made by a person: who, what, when.
type AuditEntry struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // e.g. "silence.create", "silence.expire", "triage.explained"
	Object string    `json:"object"` // the silence or alert id
	Detail string    `json:"detail"` // JSON of the change; never subject data
}

// Audit reads the audit trail.
type Audit interface {
	// AuditLog returns up to limit entries (0: all) from the newest back.
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
}
