package store

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/silence"
)

// Silences stores silences; every change is audited in the same transaction.
type Silences interface {
	// PutSilence inserts or replaces s (by ID) and records audit.
	PutSilence(ctx context.Context, s silence.Silence, audit audit.Entry) error
	// silence.Silence returns one silence, or ErrNotFound.
	Silence(ctx context.Context, id string) (silence.Silence, error)
	// ListSilences returns every silence whose EndsAt is after since
	// (zero: all), by StartsAt then ID.
	ListSilences(ctx context.Context, since time.Time) ([]silence.Silence, error)
}
