// Package store defines where dpiawatch keeps access events, alerts and check
// state durably. Implementations: store/sqlite (the embedded default, one
// file) and store/clickhouse. The contract suite in store/storetest
// runs against every implementation.
package store

import (
	"context"
	"errors"
	"fmt"
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

// Result reports what Apply did. Every event of the batch is counted once:
// Stored + Duplicates + len(Conflicts) is the batch's length.
type Result struct {
	Stored     int // events newly stored
	Duplicates int // events already stored, or earlier in the batch, with the same content (replays): ignored
	Alerts     int // alerts inserted or updated
	// Conflicts are the events whose key was already stored, or came
	// earlier in the batch, with different content (event.Diff): the
	// first is kept, these are not stored. They are reported on every
	// Apply that meets them, a replay too; what to do with them (dead
	// letter, alert) is the caller's.
	Conflicts []Conflict
}

// Conflict is one event of a batch that reuses the key of another with
// different content.
type Conflict struct {
	Index  int         // its position in the batch given to Apply
	Event  event.Event // the event not stored
	Kept   event.Event // the event kept under its key: stored before, or earlier in the batch
	Fields []string    // what differs: event.Diff(Kept, Event)
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
	//
	// positions says where the events came from in Kafka: nil when
	// unknown, else positions[i] is events[i]'s (another length is an
	// error). A store may keep them with the events and align its
	// deduplication with them (ClickHouse's insert_deduplication_token);
	// one that cannot use them ignores them.
	Apply(ctx context.Context, events []event.Event, positions []Position, evaluate EvaluateFunc) (Result, error)
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

// Store is a complete store.
type Store interface {
	Writer
	Reader
	Outbox
	// Ping reports whether the store can serve (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// KeyLookup is implemented by stores that can say cheaply, outside a write,
// which events they already hold. The daemon uses it to run the checks on the
// next batch while the previous one is being written; the write then checks
// that the events it found new are exactly those, so a wrong answer costs
// time, never correctness.
type KeyLookup interface {
	// Stored reports, for each event, whether an event with its key is
	// stored (committed).
	Stored(ctx context.Context, events []event.Event) ([]bool, error)
}

// EventLoader is implemented by stores that can read events back by key.
// The checks checkpoint the events they hold back (waiting for a slower
// partition) as keys only, since the events themselves are stored in the
// same transaction, and read them back on restart.
type EventLoader interface {
	// EventsByKey returns the stored events with the given keys, in no
	// particular order; keys not stored are left out.
	EventsByKey(ctx context.Context, keys []event.Key) ([]event.Event, error)
}

// Position is where an event was read from in Kafka.
type Position struct {
	Topic     string
	Partition int
	Offset    int64
}

// CheckPositions returns an error unless positions fit a batch of n events
// as Writer.Apply takes them: none, or one per event.
func CheckPositions(n int, positions []Position) error {
	if positions != nil && len(positions) != n {
		return fmt.Errorf("%d positions for %d events", len(positions), n)
	}
	return nil
}
