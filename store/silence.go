package store

import (
	"context"
	"time"
)

// Silence mutes notifications of the alerts its matchers select between
// StartsAt and EndsAt. Matchers use alerting's syntax (`check="x"`,
// `severity=~"high|critical"`). A silence is never deleted, only expired
// (EndsAt moved to now), so that the audit trail stays whole.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []string  `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Silences stores silences; every change is audited in the same transaction.
type Silences interface {
	// PutSilence inserts or replaces s (by ID) and records audit.
	PutSilence(ctx context.Context, s Silence, audit AuditEntry) error
	// Silence returns one silence, or ErrNotFound.
	Silence(ctx context.Context, id string) (Silence, error)
	// ListSilences returns every silence whose EndsAt is after since
	// (zero: all), by StartsAt then ID.
	ListSilences(ctx context.Context, since time.Time) ([]Silence, error)
}
