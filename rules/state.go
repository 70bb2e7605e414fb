package rules

// Keyed, checkpointed, bounded state for checks.
//
// A check that must remember something between events (an open session per
// device, failed logins per actor, distinct subjects per actor …) keeps it in
// one or more Keyed tables rather than in its own maps, so that the Engine
// can checkpoint, restore and bound it for every check alike:
//
//  1. Declare. Give the check a field per table and create it in the check's
//     constructor with NewKeyed[V](name, horizon). V is a small struct the
//     check owns, encodable with encoding/json (exported fields, JSON tags);
//     name is a short stable word ("sessions"); horizon is how long a key may
//     stay idle, in event time, before it is forgotten. Then return the
//     tables from the check's States method (the statefulCheck interface):
//
//     type sharedCredential struct{ sessions *Keyed[session] }
//     func newSharedCredential() *sharedCredential {
//     	return &sharedCredential{sessions: NewKeyed[session]("sessions", 12*time.Hour)}
//     }
//     func (c *sharedCredential) States() []StateTable { return []StateTable{c.sessions} }
//
//  2. Read and update, inside Evaluate only: Get(v, key) returns the value
//     and whether it exists; Put(v, key, t, val) stores a new value, t being
//     the event time of the update (the key's idle clock keeps the latest t
//     ever given); Delete(v, key) forgets it. Keys are scoped by the env's
//     org, so "u-17" of two orgs are two keys. Values are copied in and out:
//     mutate the copy Get returned, then Put it back. A key built from
//     several fields can be built in a buffer the check reuses and passed
//     to GetBytes, PutBytes and DeleteBytes, which make a string of it only
//     for a new key.
//
//  3. Checkpoint: nothing to do. Every key Put or Deleted during a batch is
//     returned by Process in store.Effects.State under
//     rules/<check>/<name>/<org>/<key> (path-escaped) as JSON
//     {"at": t, "v": value}, a nil value for a deletion; Restore loads them
//     back. A restarted Engine thus continues exactly where the last
//     durable batch left it.
//
//  4. Bounds: a key whose latest update is more than horizon older than the
//     org's evaluation frontier (see below) is invisible to Get at once and
//     deleted, with a deletion entry, at the end of the batch. Because Get
//     applies the same test, the outcome never depends on how events were
//     batched.
//
// Event time. Each org has a watermark, the newest event time accepted, and
// an evaluation frontier, the watermark less the lateness bound
// (Options.Lateness, default 5m). Events newer than the frontier wait in a
// per-org buffer ordered by (time, system, id) and are evaluated once the
// frontier passes them, so that events out of order within the bound are
// judged as if they had come in order; Flush (the end of a replay) evaluates
// everything still waiting. The waiting events are stored events whose
// evaluation is pending, so they are checkpointed too
// (rules/pending/<org>/<first event>, one entry per batch that left events
// waiting) and a restart loses none of them. An event at or before the
// frontier when it arrives (late beyond the bound) is evaluated at once —
// never dropped — and counted in dpiawatch_rules_late_events_total. Checks
// read the frontier as env.watermark: state and episodes idle for longer
// than their horizon or gap before it are closed.
//
// Absurd timestamps. An event more than Options.MaxAhead (default 24h) ahead
// of the watermark, or, when the Engine has a wall clock (Options.Now, the
// daemon), ahead of the later of the watermark and the clock, does not move
// the watermark: it is evaluated at once and counted in
// dpiawatch_rules_future_events_total, so one bad clock cannot make every
// other event look late. Without a wall clock (replay, tests) a stream that
// really jumps ahead (a system back after a long outage) would otherwise
// stall, so aheadConfirm consecutive events of the org beyond the bound move
// the watermark to the earliest of them. Replay sorts its input, so there an
// absurd timestamp can only come last and affects nothing after it.

import (
	"cmp"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// StateTable is the Engine's view of a Keyed table, whatever its value type.
// Checks create tables with NewKeyed and list them from States; only the
// Engine calls these methods.
type StateTable interface {
	tableName() string
	bind(prefix string)
	owns(key string) bool
	restore(key string, value []byte) error
	evict(frontier map[string]time.Time)
	// drain appends the entries changed since the last drain to out;
	// with discard it only forgets which changed (Options.DiscardState).
	drain(out []store.StateEntry, discard bool) ([]store.StateEntry, error)
	reset()
	size() int
}

// StatefulCheck is a check that keeps Keyed state.
type StatefulCheck interface {
	Check
	States() []StateTable
}

// orgKey scopes a check's key to an org.
type orgKey struct{ org, key string }

type keyedEntry[V any] struct {
	val   V
	at    time.Time // event time of the latest update
	key   string    // the key it is held under
	dirty bool
}

// Keyed is a table of per-key state of one check: see the comment at the top
// of this file. Not safe for concurrent use; the Engine serialises batches.
//
// Keys are held by org, then key: a lookup hashes the key alone (the org's
// map is one of a few), and the Bytes methods look a key up without making
// a string of it, which a check that builds its keys from several fields
// would otherwise allocate for every event.
type Keyed[V any] struct {
	name    string
	horizon time.Duration
	prefix  string                               // rules/<check>/<name>/, set by the Engine
	orgs    map[string]map[string]*keyedEntry[V] // by org, then key
	n       int                                  // keys held, of every org
	dirty   []orgKey
	gone    map[orgKey]bool // deleted in this batch
}

// NewKeyed declares a table named name whose keys are forgotten after
// horizon of event time without an update. horizon must be positive.
func NewKeyed[V any](name string, horizon time.Duration) *Keyed[V] {
	if name == "" || strings.Contains(name, "/") || horizon <= 0 {
		panic(fmt.Sprintf("rules: NewKeyed(%q, %v): want a name without / and a positive horizon", name, horizon))
	}
	return &Keyed[V]{name: name, horizon: horizon, orgs: make(map[string]map[string]*keyedEntry[V]), gone: make(map[orgKey]bool)}
}

// table returns org's keys, made when missing.
func (s *Keyed[V]) table(org string) map[string]*keyedEntry[V] {
	m := s.orgs[org]
	if m == nil {
		m = make(map[string]*keyedEntry[V])
		s.orgs[org] = m
	}
	return m
}

// Get returns the value of key in the env's org, if it exists and has not
// been idle beyond the horizon.
func (s *Keyed[V]) Get(v *Env, key string) (V, bool) {
	return s.got(v, s.orgs[v.org.id][key])
}

// GetBytes is Get for a key held in a buffer the caller reuses: the table
// keeps no reference to it.
func (s *Keyed[V]) GetBytes(v *Env, key []byte) (V, bool) {
	return s.got(v, s.orgs[v.org.id][string(key)])
}

func (s *Keyed[V]) got(v *Env, e *keyedEntry[V]) (V, bool) {
	if e == nil || s.idle(e, v.watermark) {
		var zero V
		return zero, false
	}
	return e.val, true
}

// Put stores val under key in the env's org; at is the event time of the
// update.
func (s *Keyed[V]) Put(v *Env, key string, at time.Time, val V) {
	m := s.table(v.org.id)
	s.update(v, m, m[key], key, at, val)
}

// PutBytes is Put for a key held in a buffer the caller reuses: a string of
// it is made only when the key is new.
func (s *Keyed[V]) PutBytes(v *Env, key []byte, at time.Time, val V) {
	m := s.table(v.org.id)
	e := m[string(key)]
	if e == nil {
		s.update(v, m, nil, string(key), at, val)
		return
	}
	s.update(v, m, e, e.key, at, val)
}

func (s *Keyed[V]) update(v *Env, m map[string]*keyedEntry[V], e *keyedEntry[V], key string, at time.Time, val V) {
	if e == nil {
		e = &keyedEntry[V]{at: at, key: key}
		m[key] = e
		s.n++
	} else if s.idle(e, v.watermark) {
		e.at = at // an expired key starts afresh
	}
	e.val = val
	if at.After(e.at) {
		e.at = at
	}
	k := orgKey{v.org.id, e.key}
	if !e.dirty {
		e.dirty = true
		s.dirty = append(s.dirty, k)
	}
	if len(s.gone) > 0 {
		delete(s.gone, k)
	}
}

// Delete forgets key in the env's org.
func (s *Keyed[V]) Delete(v *Env, key string) {
	s.delete(v.org.id, s.orgs[v.org.id][key])
}

// DeleteBytes is Delete for a key held in a buffer the caller reuses.
func (s *Keyed[V]) DeleteBytes(v *Env, key []byte) {
	s.delete(v.org.id, s.orgs[v.org.id][string(key)])
}

func (s *Keyed[V]) delete(org string, e *keyedEntry[V]) {
	if e == nil {
		return
	}
	delete(s.orgs[org], e.key)
	s.n--
	s.gone[orgKey{org, e.key}] = true
}

func (s *Keyed[V]) idle(e *keyedEntry[V], frontier time.Time) bool {
	return e.at.Add(s.horizon).Before(frontier)
}

func (s *Keyed[V]) tableName() string  { return s.name }
func (s *Keyed[V]) bind(prefix string) { s.prefix = prefix + s.name + "/" }
func (s *Keyed[V]) owns(key string) bool {
	return strings.HasPrefix(key, s.prefix)
}
func (s *Keyed[V]) size() int { return s.n }

// Len is the number of keys the table holds, of every org; for tests and
// benchmarks of a check's state.
func (s *Keyed[V]) Len() int { return s.n }

// Values yields every value the table holds, in no order; for tests and
// benchmarks of a check's state.
func (s *Keyed[V]) Values() iter.Seq[V] {
	return func(yield func(V) bool) {
		for _, m := range s.orgs {
			for _, e := range m {
				if !yield(e.val) {
					return
				}
			}
		}
	}
}

func (s *Keyed[V]) stateKey(k orgKey) string {
	return s.prefix + url.PathEscape(k.org) + "/" + url.PathEscape(k.key)
}

// keyedState is one key's checkpoint.
type keyedState[V any] struct {
	At time.Time `json:"at"`
	V  V         `json:"v"`
}

func (s *Keyed[V]) restore(key string, value []byte) error {
	rest, ok := strings.CutPrefix(key, s.prefix)
	org, k, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return fmt.Errorf("state key is not %s<org>/<key>", s.prefix)
	}
	o, err1 := url.PathUnescape(org)
	kk, err2 := url.PathUnescape(k)
	if err1 != nil || err2 != nil || o == "" {
		return fmt.Errorf("state key is not path-escaped")
	}
	var st keyedState[V]
	if err := storedjson.Unmarshal(value, &st); err != nil {
		return fmt.Errorf("decode %s state: %w", s.name, err)
	}
	if st.At.IsZero() {
		return fmt.Errorf("%s state lacks its time", s.name)
	}
	m := s.table(o)
	if _, ok := m[kk]; !ok {
		s.n++
	}
	m[kk] = &keyedEntry[V]{val: st.V, at: st.At.UTC(), key: kk}
	return nil
}

func (s *Keyed[V]) evict(frontier map[string]time.Time) {
	for org, m := range s.orgs {
		f, ok := frontier[org]
		if !ok {
			continue
		}
		for k, e := range m {
			if s.idle(e, f) {
				delete(m, k)
				s.n--
				s.gone[orgKey{org, k}] = true
			}
		}
	}
}

func (s *Keyed[V]) drain(out []store.StateEntry, discard bool) ([]store.StateEntry, error) {
	for _, k := range s.dirty {
		e, ok := s.orgs[k.org][k.key]
		if !ok || !e.dirty {
			continue // deleted since
		}
		e.dirty = false
		if discard {
			continue
		}
		b, err := storedjson.Marshal(keyedState[V]{At: e.at, V: e.val})
		if err != nil {
			return out, fmt.Errorf("encode %s state: %w", s.name, err)
		}
		out = append(out, store.StateEntry{Key: s.stateKey(k), Value: b})
	}
	if !discard {
		for _, k := range sortedOrgKeys(s.gone) {
			out = append(out, store.StateEntry{Key: s.stateKey(k)})
		}
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	clear(s.gone)
	return out, nil
}

func (s *Keyed[V]) reset() {
	clear(s.orgs)
	s.n = 0
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	clear(s.gone)
}

func sortedOrgKeys(m map[orgKey]bool) []orgKey {
	ks := make([]orgKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b orgKey) int { return cmp.Or(strings.Compare(a.org, b.org), strings.Compare(a.key, b.key)) })
	return ks
}
