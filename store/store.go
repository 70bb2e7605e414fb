// Package store defines where dpiawatch keeps access events, alerts and check
// state durably. Implementations: store/sqlite (the embedded default, one
// file) and store/clickhouse. The contract suite in store/storetest
// runs against every implementation.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
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
	Resend(ctx context.Context, receiver, alertID string, audit AuditEntry) error
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

// The interfaces below serve alert delivery (package alerting): Slack
// message references, triage, silences and their audit trail. They stand
// beside Store so that a store can offer them without every store having to.

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

// AuditEntry is one change made by a person: who, what, when.
type AuditEntry struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // e.g. "silence.create", "silence.expire", "triage.explained"
	Object string    `json:"object"` // the silence or alert id
	Detail string    `json:"detail"` // JSON of the change; never subject data
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

// Audit reads the audit trail.
type Audit interface {
	// AuditLog returns up to limit entries (0: all) from the newest back.
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
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

type positionsKey struct{}

// WithPositions tells a Writer where the events it is about to be given came
// from: positions[i] is events[i]'s. A store may keep them with the events
// and align its deduplication with them (ClickHouse's
// insert_deduplication_token); one that cannot use them ignores them.
func WithPositions(ctx context.Context, positions []Position) context.Context {
	return context.WithValue(ctx, positionsKey{}, positions)
}

// PositionsFrom returns the positions WithPositions attached for a batch of
// n events, or nil when there are none for a batch of that size.
func PositionsFrom(ctx context.Context, n int) []Position {
	p, _ := ctx.Value(positionsKey{}).([]Position)
	if len(p) != n {
		return nil // not for this batch: better none than wrong ones
	}
	return p
}

// ReferenceSnapshot is one set of reference data as it was loaded.
type ReferenceSnapshot struct {
	// ID names the content (ReferenceID): equal data, equal ID.
	ID string
	// LoadedAt is when the daemon loaded the data and put it in force.
	LoadedAt time.Time
	Data     *reference.Data
}

// ReferenceSnapshots keeps every set of reference data the daemon put in
// force, with the time it did, so that evidence and dashboards can say what
// the staff list, rosters and relationships were when an access was judged.
// A store may offer it; the daemon saves each load to a store that does.
type ReferenceSnapshots interface {
	// SaveReference records that d was loaded at loadedAt. Saving data
	// equal to the newest snapshot's records nothing new (a restart or a
	// reload without change). It is idempotent: a retry after an error
	// stores nothing twice.
	SaveReference(ctx context.Context, loadedAt time.Time, d *reference.Data) error
	// ReferenceAt returns the snapshot in force at t: the newest loaded at
	// or before t, or ErrNotFound.
	ReferenceAt(ctx context.Context, t time.Time) (ReferenceSnapshot, error)
	// ReferenceByID returns the snapshot whose content has ID id (what an
	// alert's ReferenceID names), with LoadedAt its first load, or
	// ErrNotFound.
	ReferenceByID(ctx context.Context, id string) (ReferenceSnapshot, error)
}

// ReferenceID names reference data by its content: a hash of its JSON
// encoding, the same in every store.
func ReferenceID(d *reference.Data) (string, error) {
	// Empty lists count as absent, so that data read back from a store
	// (where the two look alike) keeps its ID.
	c := *d
	nilIfEmpty(&c.Staff)
	nilIfEmpty(&c.Relationships)
	nilIfEmpty(&c.Shifts)
	nilIfEmpty(&c.Absences)
	nilIfEmpty(&c.Devices)
	nilIfEmpty(&c.SharingAgreements)
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("reference id: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

func nilIfEmpty[T any](s *[]T) {
	if len(*s) == 0 {
		*s = nil
	}
}
