package rules

import (
	"container/heap"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// Defaults of the event-time bounds (see the comment at the top of state.go).
const (
	DefaultLateness = 5 * time.Minute
	DefaultMaxAhead = 24 * time.Hour
	// NoLateness, as Options.Lateness, judges every event on arrival.
	NoLateness time.Duration = -1
	// AheadConfirm consecutive events beyond the future bound move the
	// watermark when there is no wall clock to tell a jump from a bad clock.
	AheadConfirm = 10
)

// Where the Engine keeps its event-time state: one entry per org clock and
// one per batch that left events waiting.
const (
	watermarkPrefix = StatePrefix + "watermark/"
	pendingPrefix   = StatePrefix + "pending/"
)

// Retention never deletes the state of events still waiting to be judged,
// nor each org's clock (store.RetentionPolicy.KeepStateContaining).
const (
	PendingStatePrefix   = pendingPrefix
	WatermarkStatePrefix = watermarkPrefix
)

func watermarkKey(org string) string { return watermarkPrefix + url.PathEscape(org) }
func unescapeKey(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// orgClock is one org's event time: its watermark, its evaluation frontier
// and the events waiting for the frontier to pass them.
type orgClock struct {
	wm       time.Time // newest event time accepted
	frontier time.Time // events at or before it have been evaluated
	// judged is the newest time of an event evaluated (far-future ones
	// aside): the "now" of the checks, against which episodes and state
	// expire, as it would be had every event come in order.
	judged   time.Time
	aheadN   int       // consecutive events beyond the future bound
	aheadMin time.Time // the earliest of them
	dirty    bool      // the clock entry changed in this batch

	wait   waitQueue      // events after the frontier, earliest first
	batch  []*event.Event // events buffered in this batch
	slab   []event.Event  // where push copies events (waitSlab)
	chunks []chunk        // checkpointed batches of waiting events
}

// chunk is one checkpoint entry of waiting events; it is deleted once the
// frontier has passed its latest event.
type chunk struct {
	key  string
	last time.Time
}

// clockState is an org clock's checkpoint.
type clockState struct {
	Watermark time.Time `json:"watermark"`
	Frontier  time.Time `json:"frontier,omitzero"`
	Judged    time.Time `json:"judged,omitzero"`
	Ahead     int       `json:"ahead,omitempty"`
	AheadMin  time.Time `json:"ahead_min,omitzero"`
}

func (c *orgClock) encode() ([]byte, error) {
	b, err := storedjson.Marshal(clockState{Watermark: c.wm, Frontier: c.frontier, Judged: c.judged, Ahead: c.aheadN, AheadMin: c.aheadMin})
	if err != nil {
		return nil, fmt.Errorf("encode watermark: %w", err)
	}
	return b, nil
}

// decodeClock reads a clock entry; a bare RFC 3339 time (the first format)
// is a watermark that is also the frontier.
func decodeClock(b []byte) (clockState, error) {
	var st clockState
	if len(b) > 0 && b[0] == '{' {
		if err := storedjson.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("decode watermark: %w", err)
		}
	} else if err := st.Watermark.UnmarshalText(b); err != nil {
		return st, fmt.Errorf("decode watermark: %w", err)
	} else {
		st.Frontier, st.Judged = st.Watermark, st.Watermark
	}
	switch {
	case st.Watermark.IsZero():
		return st, fmt.Errorf("decode watermark: no time")
	case st.Frontier.After(st.Watermark) || st.Judged.After(st.Watermark) || st.Ahead < 0:
		return st, fmt.Errorf("decode watermark: frontier after watermark")
	}
	st.Watermark, st.Frontier, st.Judged, st.AheadMin = st.Watermark.UTC(), st.Frontier.UTC(), st.Judged.UTC(), st.AheadMin.UTC()
	return st, nil
}

// pendingKey names the chunk whose earliest event is ev.
func pendingKey(ev *event.Event) string {
	return pendingPrefix + url.PathEscape(ev.Org) + "/" + strconv.FormatInt(ev.Time.UnixNano(), 10) + "-" +
		url.PathEscape(ev.System) + "-" + url.PathEscape(ev.ID)
}

// orgOfPending returns the org of a chunk key.
func orgOfPending(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, pendingPrefix)
	org, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || org == "" {
		return "", false
	}
	return unescapeKey(org), true
}

// eventBefore orders waiting events: time, then system and id, so that
// simultaneous events are released in the same order whatever order they
// came in.
func eventBefore(a, b *event.Event) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	if a.System != b.System {
		return a.System < b.System
	}
	return a.ID < b.ID
}

type pendingHeap []*event.Event

func (h pendingHeap) Len() int           { return len(h) }
func (h pendingHeap) Less(i, j int) bool { return eventBefore(h[i], h[j]) }
func (h pendingHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)        { *h = append(*h, x.(*event.Event)) }
func (h *pendingHeap) Pop() any {
	old := *h
	n := len(old) - 1
	x := old[n]
	old[n] = nil
	*h = old[:n]
	return x
}

// waitQueue holds the events waiting for the frontier, earliest first
// (eventBefore). Events that come in that order, as a replay's and most of
// a live stream's do, are appended to a run and taken from its front; only
// those that come out of order go into a heap, and the earlier of the two
// heads is taken first. A heap alone cost a replay a tenth of its judging,
// all of it on the one goroutine that feeds the checks.
type waitQueue struct {
	run  []*event.Event // run[head:] wait, in order
	head int
	heap pendingHeap
}

func (q *waitQueue) Len() int { return len(q.run) - q.head + len(q.heap) }

func (q *waitQueue) push(ev *event.Event) {
	if n := len(q.run); n == q.head || !eventBefore(ev, q.run[n-1]) {
		q.run = append(q.run, ev)
		return
	}
	heap.Push(&q.heap, ev)
}

// peek returns the earliest waiting event; the queue must not be empty.
func (q *waitQueue) peek() *event.Event {
	if q.head == len(q.run) || (len(q.heap) > 0 && eventBefore(q.heap[0], q.run[q.head])) {
		return q.heap[0]
	}
	return q.run[q.head]
}

// pop removes and returns the earliest waiting event; the queue must not be
// empty.
func (q *waitQueue) pop() *event.Event {
	if q.head == len(q.run) || (len(q.heap) > 0 && eventBefore(q.heap[0], q.run[q.head])) {
		return heap.Pop(&q.heap).(*event.Event)
	}
	ev := q.run[q.head]
	q.run[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.run):
		q.run, q.head = q.run[:0], 0
	case q.head >= 1024 && q.head*2 >= len(q.run):
		n := copy(q.run, q.run[q.head:])
		clear(q.run[n:])
		q.run, q.head = q.run[:n], 0
	}
	return ev
}

// push buffers a copy of ev. Its strings and slices are shared, read-only.
// The copies are cut from slabs of waitSlab events: one allocation instead
// of one per event, every event of a replay waiting its turn here. A slab
// lives while any of its events waits or is being judged.
func (c *orgClock) push(ev *event.Event) {
	if len(c.slab) == cap(c.slab) {
		c.slab = make([]event.Event, 0, waitSlab)
	}
	c.slab = append(c.slab, *ev)
	cp := &c.slab[len(c.slab)-1]
	cp.Time = cp.Time.UTC()
	c.wait.push(cp)
	c.batch = append(c.batch, cp)
}

// waitSlab is how many waiting events one allocation holds.
const waitSlab = 64

// next pops the earliest waiting event if the frontier has passed it.
func (c *orgClock) next() (*event.Event, bool) {
	if c.wait.Len() == 0 || c.wait.peek().Time.After(c.frontier) {
		return nil, false
	}
	return c.wait.pop(), true
}

// waitingKeys is a chunk of waiting events checkpointed as their keys only
// (Options.LoadEvents): the events are stored in the same transaction.
type waitingKeys struct {
	Keys [][2]string `json:"keys"` // system, id; the org is the chunk's
}

// discardCheckpoint forgets what checkpoint would have saved
// (Options.DiscardState).
func (c *orgClock) discardCheckpoint() {
	clear(c.batch)
	c.batch = c.batch[:0]
	c.dirty = false
}

// checkpoint returns the state entries of c changed in this batch: a chunk
// of this batch's events still waiting (whole, or their keys only when
// keysOnly), deletions of chunks the frontier has passed, and the clock
// itself.
func (c *orgClock) checkpoint(org string, out []store.StateEntry, keysOnly bool) ([]store.StateEntry, error) {
	var still []*event.Event
	for _, ev := range c.batch {
		if ev.Time.After(c.frontier) {
			still = append(still, ev)
		}
	}
	clear(c.batch)
	c.batch = c.batch[:0]
	if len(still) > 0 {
		first, last := still[0], still[0].Time
		for _, ev := range still {
			if eventBefore(ev, first) {
				first = ev
			}
			if ev.Time.After(last) {
				last = ev.Time
			}
		}
		var v any
		if keysOnly {
			ks := waitingKeys{Keys: make([][2]string, len(still))}
			for i, ev := range still {
				ks.Keys[i] = [2]string{ev.System, ev.ID}
			}
			v = ks
		} else {
			evs := make([]event.Event, len(still))
			for i, ev := range still {
				evs[i] = *ev
			}
			v = evs
		}
		b, err := storedjson.Marshal(v)
		if err != nil {
			return out, fmt.Errorf("encode waiting events: %w", err)
		}
		k := pendingKey(first)
		out = append(out, store.StateEntry{Key: k, Value: b})
		c.chunks = append(c.chunks, chunk{key: k, last: last})
	}
	kept := c.chunks[:0]
	for _, ch := range c.chunks {
		if ch.last.After(c.frontier) {
			kept = append(kept, ch)
			continue
		}
		out = append(out, store.StateEntry{Key: ch.key})
	}
	c.chunks = kept
	if c.dirty {
		b, err := c.encode()
		if err != nil {
			return out, err
		}
		out = append(out, store.StateEntry{Key: watermarkKey(org), Value: b})
		c.dirty = false
	}
	return out, nil
}

// restoreChunk loads a checkpointed chunk: the events the frontier has not
// yet passed wait again. A chunk of keys is read back through load.
func (c *orgClock) restoreChunk(org, key string, value []byte, load func([]event.Key) ([]event.Event, error)) error {
	var evs []event.Event
	if len(value) > 0 && value[0] == '{' {
		var ks waitingKeys
		if err := storedjson.Unmarshal(value, &ks); err != nil {
			return fmt.Errorf("decode waiting event keys: %w", err)
		}
		if load == nil {
			return fmt.Errorf("waiting events checkpointed as keys, and no store to read them from")
		}
		keys := make([]event.Key, len(ks.Keys))
		for i, k := range ks.Keys {
			keys[i] = event.Key{Org: org, System: k[0], ID: k[1]}
		}
		var err error
		if evs, err = load(keys); err != nil {
			return fmt.Errorf("read waiting events back: %w", err)
		}
		if len(evs) != len(keys) {
			return fmt.Errorf("read waiting events back: %d of %d found in the store", len(evs), len(keys))
		}
	} else if err := storedjson.Unmarshal(value, &evs); err != nil {
		return fmt.Errorf("decode waiting events: %w", err)
	}
	var last time.Time
	for i := range evs {
		ev := &evs[i]
		if ev.Org != org || ev.ID == "" || ev.Time.IsZero() {
			return fmt.Errorf("waiting event of another org or without id or time")
		}
		if !ev.Time.After(c.frontier) {
			continue // evaluated before the checkpoint
		}
		ev.Time = ev.Time.UTC()
		c.wait.push(ev)
		last = maxTime(last, ev.Time)
	}
	// A chunk with nothing left is deleted at the end of the next batch.
	c.chunks = append(c.chunks, chunk{key: key, last: last})
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
