// Package store defines where dpiawatch keeps access events, alerts and check
// state durably. Implementations: store/sqlite (the embedded default, one
// file) and, later, store/clickhouse. The contract suite in store/storetest
// runs against every implementation.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
)

// ErrNotFound is returned when a looked-up item does not exist.
var ErrNotFound = errors.New("not found")

// StateEntry is one key of a check's saved state. A nil Value deletes the key.
type StateEntry struct {
	Key   string
	Value []byte
}

// Effects is what evaluating a batch's new events produced: alerts to insert
// or update (by ID, whole-row replace) and check state to save.
type Effects struct {
	Alerts []alert.Alert
	State  []StateEntry
}

// EvaluateFunc runs the checks over the events of a batch that were not
// stored before, in the order given.
type EvaluateFunc func(fresh []event.Event) (Effects, error)

// Result reports what Apply did.
type Result struct {
	Stored     int // events newly stored
	Duplicates int // events already stored before (replays), ignored
	Alerts     int // alerts inserted or updated
}

// Writer stores batches. It is the only write path for events, so that
// storage, check state and alerts move together: exactly-once in effect.
type Writer interface {
	// Apply stores one batch as a unit: events whose (org, system, id) is
	// already stored are ignored; evaluate (which may be nil) is called with
	// the others, in the order given, and the alerts and state it returns are
	// stored with them. When Apply returns nil all of it is durable; when it
	// returns an error none of it is, and the caller must reset any in-memory
	// state evaluate changed before retrying.
	Apply(ctx context.Context, events []event.Event, evaluate EvaluateFunc) (Result, error)
}

// AlertFilter selects alerts; zero fields match everything.
type AlertFilter struct {
	Org   string
	Check string
	Since time.Time // LastSeen >= Since
	Limit int       // 0: no limit
}

// EventFilter selects events; zero fields match everything.
type EventFilter struct {
	Org     string
	ActorID string
	From    time.Time // inclusive
	To      time.Time // exclusive
}

// Reader answers queries.
type Reader interface {
	Alert(ctx context.Context, id string) (alert.Alert, error)
	// Alerts returns matching alerts ordered by FirstSeen, then ID.
	Alerts(ctx context.Context, f AlertFilter) ([]alert.Alert, error)
	// ScanEvents calls fn for each matching event, ordered by time then key.
	ScanEvents(ctx context.Context, f EventFilter, fn func(event.Event) error) error
	// CountEvents counts matching events.
	CountEvents(ctx context.Context, f EventFilter) (int64, error)
	// LoadState returns every saved state entry whose key starts with prefix.
	LoadState(ctx context.Context, prefix string) ([]StateEntry, error)
}

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
}

// Store is a complete store.
type Store interface {
	Writer
	Reader
	Outbox
	// Ping reports whether the store can serve (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
