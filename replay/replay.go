// Package replay runs the daemon's checks offline over a file of access events
// (CONTRACT §5): events in any order are sorted into event time, duplicates
// are absorbed, and the final alerts are written as JSON Lines.
package replay

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// Evaluator is the part of the rules engine replay needs: the same function
// the daemon hands its store for every batch. Process must not keep fresh,
// nor pointers into it, once it returns: replay fills it again (the engine
// copies what it holds on to, and its checks keep strings, not events).
type Evaluator interface {
	Process(fresh []event.Event) (store.Effects, error)
	Flush() store.Effects
}

// Options configures a replay.
type Options struct {
	Evaluator Evaluator
	Decoder   *event.Decoder
	// Errors receives one line per bad input line ("line 12: reason: detail").
	Errors io.Writer
	// ChunkSize is how many events go to the evaluator at once, as a daemon
	// batch would; default 50,000 (the checks' results do not depend on it,
	// and fewer, larger chunks checkpoint state less often).
	ChunkSize int
	// Progress, if set, is called every few thousand records with how far
	// the replay is.
	Progress func(Progress)
	// Memory is the budget of the events held to sort them (arena and
	// index, bad-line reports, read buffers of spilled runs); default
	// DefaultMemory. The checks' own state and the chunk of events being
	// judged are not in it.
	Memory int64
	// SpillDir is where sorted runs go when Memory is reached, in a
	// directory of their own removed when Run returns; "" is os.TempDir().
	SpillDir string
	// EventTime refuses events outside their org's window, as the daemon's
	// ingest does (reason event_time_out_of_range); a zero bound of
	// EventTime.Default is the event package's default. Without Now, the
	// window is measured as a replay's result must be, independent of the
	// day it runs: MaxAhead after the wall clock (a later event is
	// impossible whenever it runs), MaxAge before the newest event time in
	// the input (among the events that pass decoding and MaxAhead).
	EventTime event.TimeWindows
	// Now, if set, is the instant both bounds of EventTime are measured
	// from, as the daemon measures them from its clock (--now).
	Now time.Time
	// Clock is the wall clock MaxAhead is measured from when Now is zero;
	// nil means time.Now. Tests fake it.
	Clock func() time.Time
	// ConflictAlert, if set, builds the alert of a conflicting duplicate
	// (the daemon's: daemon.ConflictAlerter); the replay's alerts then
	// include them, as the daemon's do.
	ConflictAlert func(store.Conflict) alert.Alert
	// Parallel is how many goroutines decode the input; beyond 1, the
	// events' runs are also sorted and written in the background while
	// reading goes on. 1 is the serial path: the results never depend on
	// it (TestRunParallelEqualsSerial). Default 2; the checks run side by
	// side whatever it is (rules.Engine).
	Parallel int
	// KnownIDs are the actor and device ids of the reference data the
	// Evaluator judges by (its staff and devices). The events it is given
	// hold these very strings: a map keyed by them then finds an event's
	// actor by comparing pointers, without reading bytes that a county's
	// roster keeps out of the cache. Optional; the results never depend
	// on it.
	KnownIDs []string

	wins windows     // EventTime, numbered
	dict *dictionary // the spill codec's words
}

// withDefaults fills the zero values of o with their defaults.
func (o Options) withDefaults() Options {
	if o.Errors == nil {
		o.Errors = io.Discard
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 50_000
	}
	if o.EventTime.Default.MaxAge <= 0 {
		o.EventTime.Default.MaxAge = event.DefaultMaxAge
	}
	if o.EventTime.Default.MaxAhead <= 0 {
		o.EventTime.Default.MaxAhead = event.DefaultMaxAhead
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	o.wins = newWindows(o.EventTime)
	o.dict = newDictionary(o.KnownIDs)
	return o
}

// DefaultMemory is the default budget of the events a replay holds to sort
// them: with the checks' state, the reference data and the events being
// judged, a county's replay peaks at 530–670 MiB (the CLI's GOGC=400
// included: docs/replay.md). A larger budget only makes fewer, larger
// runs of an input that does not fit: each event is still written and
// read once.
const DefaultMemory = 256 << 20

// DefaultParallel is Options.Parallel's default: both cores of the machine
// the targets were set on.
const DefaultParallel = 2

// Phases of a replay, as Progress reports them.
const (
	PhaseReading = "reading" // decoding the input
	PhaseMerging = "merging" // deduplicating by key, across spilled runs
	PhaseJudging = "judging" // the checks, in event time
)

// Progress is how far a replay is through its phase.
type Progress struct {
	Phase string
	Bytes int64 // input bytes read
	Lines int   // input lines read
	// Done of Total records are through the phase (merging, judging);
	// Total is 0 while reading, when it is not known yet.
	Done, Total int
}

// Stats summarises a replay.
type Stats struct {
	Lines      int            `json:"lines"`
	Events     int            `json:"events"`
	Duplicates int            `json:"duplicates"`
	Bad        int            `json:"bad"`
	BadReasons map[string]int `json:"bad_reasons,omitempty"`
	Alerts     int            `json:"alerts"`
	// Runs is how many sorted runs were written to disk (0: all in
	// memory), merge passes included.
	Runs int `json:"runs"`

	bytes int64 // input bytes read, for Progress
}

// Run reads events from in and writes the final alerts to out.
//
// Memory is bounded by Options.Memory, whatever the input's size: each
// valid event is kept in a compact binary form (codec.go) in an arena,
// with an index entry (time, key hash, line); when the budget is reached
// the arena is sorted by event time and written to a file (a run) in the
// spill directory, and the runs are merged at the end (an input that fits
// is one run, never written). The events are written once: beside them,
// a second, small sort of their keys (key, input line, and where the
// event lies) finds the first occurrence of each key, and marks the later
// ones dropped where they lie, before the events are merged in event time
// for the checks.
func Run(ctx context.Context, in io.Reader, out io.Writer, o Options) (st Stats, err error) {
	if o.Evaluator == nil || o.Decoder == nil {
		return Stats{}, errors.New("replay: evaluator and decoder are required")
	}
	o = o.withDefaults()
	st = Stats{BadReasons: map[string]int{}}
	spill := &spillDir{parent: o.SpillDir}
	defer func() { err = errors.Join(err, spill.remove()) }()
	// A sixteenth of the budget for bad lines, an eighth for the keys, an
	// eighth for reading spilled runs back (sorter.readBuffer), the rest
	// for events.
	events := newSorter(byTime, o.Memory-o.Memory/16-o.Memory/8-o.Memory/8, spill)
	keys := newSorter(byKey, o.Memory/8, spill)
	var kr []byte // scratch for the key records: keys.add copies them
	events.written = func(r *rec, at place) error {
		var k *rec
		k, kr = keyRec(r, at, kr[:0])
		return keys.add(k)
	}
	events.background = o.Parallel > 1
	defer func() {
		_ = events.wait() // on an early return, before the directory is removed
		events.closeMarks()
	}()
	bads := newSorter(byLine, o.Memory/16, spill)
	newest, err := read(ctx, in, o, &st, events, bads)
	if err != nil {
		return st, err
	}
	if err := events.finish(); err != nil {
		return st, err
	}
	ref := o.Now
	if ref.IsZero() {
		ref = time.Unix(0, newest) // unused when no event was read
	}
	alerts := map[string]alert.Alert{}
	if err := judge(ctx, o, &st, events, keys, bads, ref, alerts); err != nil {
		return st, err
	}
	if err := report(o, &st, bads); err != nil {
		return st, err
	}
	err = evaluate(ctx, o, &st, events, ref, alerts)
	st.Runs = spill.n
	if err != nil {
		return st, err
	}

	final := make([]alert.Alert, 0, len(alerts))
	for _, a := range alerts {
		final = append(final, a)
	}
	slices.SortFunc(final, func(a, b alert.Alert) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.ID, b.ID))
	})
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range final {
		if err := enc.Encode(&final[i]); err != nil {
			return st, fmt.Errorf("replay: write alerts: %w", err)
		}
	}
	st.Alerts = len(final)
	if err := w.Flush(); err != nil {
		return st, fmt.Errorf("replay: write alerts: %w", err)
	}
	return st, nil
}

// progressEvery is how many records pass between two Progress calls.
const progressEvery = 1 << 14

// keyRec is the record of the keys' sort for event r, which lies at at:
// its key's part of r's encoding, then where it lies, appended to b.
func keyRec(r *rec, at place, b []byte) (*rec, []byte) {
	b = append(b, r.b[:keyLen(r.b)]...)
	b = binary.AppendUvarint(b, uint64(at.run+1))
	b = binary.AppendUvarint(b, uint64(at.off))
	return &rec{t: r.t, hash: r.hash, line: r.line, win: r.win, b: b}, b
}

// placeOf reads where the event of a key record lies.
func placeOf(b []byte) (place, error) {
	c := cursor{b: b[keyLen(b):]}
	run, off := c.uvarint(), c.uvarint()
	if c.bad || len(c.b) != 0 {
		return place{}, errCorrupt
	}
	return place{int(run) - 1, int64(off)}, nil
}

// judge reads the events' keys by key, in input order within a key, and
// keeps the first occurrence of each key within the event-time window, as
// the daemon does: an event older than max_age before ref is refused and
// wins no key from a later one (live, it is dead-lettered before the
// store); a later event under a kept key is dropped from events, as a
// duplicate, or with other content (event.Diff) a conflict, reported and
// alerted as in the daemon. Bad lines go to bads; st.Events counts the
// events kept.
func judge(ctx context.Context, o Options, st *Stats, events, keys, bads *sorter, ref time.Time, alerts map[string]alert.Alert) error {
	seq, err := keys.sorted()
	if err != nil {
		return err
	}
	defer seq.close()
	var (
		group, keptEv held       // the first and the kept event of the current key
		groupHash     uint64     //
		groupKey      *event.Key // decoded only when another event has its hash
		ageRef        = ageRef(o)
		dupDecoder    = o.dict.decoder()
		kb, rb        []byte // the kept and the later event, fetched
	)
	for i := 0; ; i++ {
		r, ok, err := seq.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if i%progressEvery == 0 {
			if o.Progress != nil {
				o.Progress(Progress{Phase: PhaseMerging, Bytes: st.bytes, Lines: st.Lines, Done: i, Total: keys.count})
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		same := i > 0 && r.hash == groupHash
		if same {
			// The group's events may be older than the previous record:
			// hold copies from now on.
			group.keep()
			keptEv.keep()
			if groupKey == nil {
				k := keyOf(group.b)
				groupKey = &k
			}
			same = keyOf(r.b) == *groupKey
		}
		if !same {
			group.set(r.b)
			keptEv.set(nil)
			groupHash, groupKey = r.hash, nil
		}
		if err := o.wins.of[r.win].CheckAge(time.Unix(0, r.t), ref, ageRef); err != nil {
			// evaluate skips it too.
			if err := addBad(bads, r.line, err.(*event.Error)); err != nil {
				return err
			}
			continue
		}
		if keptEv.b == nil {
			keptEv.set(r.b)
			st.Events++
			continue
		}
		keptAt, err := placeOf(keptEv.b)
		if err != nil {
			return err
		}
		at, err := placeOf(r.b)
		if err != nil {
			return err
		}
		if err := events.drop(at); err != nil {
			return err
		}
		if kb, err = events.fetch(keptAt, kb); err != nil {
			return err
		}
		if rb, err = events.fetch(at, rb); err != nil {
			return err
		}
		var k, ev event.Event
		if err := dupDecoder.decode(kb, &k); err != nil {
			return err
		}
		if err := dupDecoder.decode(rb, &ev); err != nil {
			return err
		}
		fields := event.Diff(&k, &ev)
		if fields == nil {
			st.Duplicates++
			continue
		}
		if o.ConflictAlert != nil {
			a := o.ConflictAlert(store.Conflict{Index: int(r.line), Event: ev, Kept: k, Fields: fields})
			alerts[a.ID] = a
		}
		if err := addBad(bads, r.line, &event.Error{Reason: event.ReasonConflictingDuplicate,
			Detail: "same org, system and id as a kept event; differs in " + strings.Join(fields, ", ")}); err != nil {
			return err
		}
	}
	seq.close()
	return keys.removeRuns()
}

// held is a record's bytes, referred to while the sequence keeps them
// valid (the next record), copied once they must outlive that (keep).
type held struct {
	b     []byte
	own   []byte
	owned bool
}

func (h *held) set(b []byte) { h.b, h.owned = b, false }

func (h *held) keep() {
	if !h.owned && h.b != nil {
		h.own = append(h.own[:0], h.b...)
		h.b, h.owned = h.own, true
	}
}

// addBad keeps a bad line's report for its turn in line order.
func addBad(bads *sorter, line int32, e *event.Error) error {
	b := make([]byte, 0, len(e.Reason)+1+len(e.Detail))
	b = append(append(append(b, e.Reason...), 0), e.Detail...)
	return bads.add(&rec{line: line, b: b})
}

// report writes the bad lines in line order and counts them.
func report(o Options, st *Stats, bads *sorter) error {
	seq, err := bads.sorted()
	if err != nil {
		return err
	}
	defer seq.close()
	for {
		r, ok, err := seq.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		reason, detail, _ := strings.Cut(string(r.b), "\x00")
		bad(o, st, int(r.line), &event.Error{Reason: event.Reason(reason), Detail: detail})
	}
}

// evaluate runs the evaluator over the kept events in event time, a chunk
// at a time, decoding chunk k+1 while the evaluator judges chunk k: the
// events, without those judge dropped or refused (older than max_age
// before ref).
func evaluate(ctx context.Context, o Options, st *Stats, events *sorter, ref time.Time, alerts map[string]alert.Alert) error {
	seq, err := events.sorted()
	if err != nil {
		return err
	}
	type chunk struct {
		events []event.Event
		err    error
	}
	chunks := make(chan chunk, 1)
	// Chunks judged come back to be filled again: 50,000 events are 15 MB
	// to allocate and clear. The Evaluator keeps nothing of a chunk once
	// Process returns (Evaluator).
	free := make(chan []event.Event, 2)
	dctx, stopDecode := context.WithCancel(ctx)
	done := make(chan struct{})
	defer func() { stopDecode(); <-done }()
	go func() {
		defer close(done)
		defer close(chunks)
		defer seq.close()
		dec := o.dict.decoder()
		for more := true; more; {
			var c chunk
			select {
			case c.events = <-free:
			default:
				c.events = make([]event.Event, 0, min(o.ChunkSize, st.Events))
			}
			for len(c.events) < o.ChunkSize {
				r, ok, err := seq.next()
				if err != nil {
					c.err = err
					break
				}
				if !ok {
					more = false
					break
				}
				if o.wins.of[r.win].CheckAge(time.Unix(0, r.t), ref, "") != nil {
					continue // reported by judge
				}
				var ev event.Event
				if err := dec.decode(r.b, &ev); err != nil {
					c.err = err
					break
				}
				c.events = append(c.events, ev)
			}
			if c.err != nil {
				more = false
			}
			if len(c.events) == 0 && c.err == nil {
				return
			}
			orderTies(c.events)
			select {
			case chunks <- c:
			case <-dctx.Done():
				return
			}
		}
	}()
	collect := func(eff store.Effects) {
		for _, a := range eff.Alerts {
			alerts[a.ID] = a
		}
	}
	judged := 0
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		eff, err := o.Evaluator.Process(c.events)
		if err != nil {
			return fmt.Errorf("replay: evaluate: %w", err)
		}
		collect(eff)
		judged += len(c.events)
		select {
		case free <- c.events[:0]:
		default:
		}
		if o.Progress != nil {
			o.Progress(Progress{Phase: PhaseJudging, Bytes: st.bytes, Lines: st.Lines, Done: judged, Total: st.Events})
		}
	}
	if err := ctx.Err(); err != nil {
		return err // the decoder stopped early
	}
	collect(o.Evaluator.Flush())
	return nil
}

// orderTies puts each run of simultaneous events in the order the rules
// engine judges them (system, then id; rules.eventBefore), instead of the
// order of their keys' hashes that merging gave them: the engine takes
// events that come in its order from the front of a queue, and sorts the
// others on its one goroutine. The alerts are the same either way.
func orderTies(evs []event.Event) {
	for lo := 0; lo < len(evs); {
		hi := lo + 1
		for hi < len(evs) && evs[hi].Time.Equal(evs[lo].Time) {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(evs[lo:hi], func(a, b event.Event) int {
				return cmp.Or(strings.Compare(a.System, b.System), strings.Compare(a.ID, b.ID))
			})
		}
		lo = hi
	}
}

// keyHash is FNV-1a over the key's parts, NUL-separated, written out so that
// hashing a million keys allocates nothing.
func keyHash(k event.Key) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, part := range [...]string{k.Org, k.System, k.ID} {
		for i := 0; i < len(part); i++ {
			h ^= uint64(part[i])
			h *= prime
		}
		h *= prime // the separator: a zero byte
	}
	return h
}

// windows is each org's event-time window, numbered so that an entry
// carries its org's in four bytes.
type windows struct {
	of    []event.TimeWindow // [0] is the default
	byOrg map[string]int32
}

func newWindows(w event.TimeWindows) windows {
	ws := windows{of: []event.TimeWindow{w.Default}, byOrg: map[string]int32{}}
	for _, org := range slices.Sorted(maps.Keys(w.ByOrg)) {
		ws.byOrg[org] = int32(len(ws.of))
		ws.of = append(ws.of, w.ByOrg[org])
	}
	return ws
}

// decoded is one line's outcome: an event (its key's hash, time and spill
// encoding) or why the line was refused.
type decoded struct {
	line    int
	hash    uint64
	t       int64
	win     int32
	encoded []byte
	err     *event.Error
}

// newestInInput names a replay's default reference for max_age in the
// details of its refusals.
const newestInInput = "the newest event in the input"

// ageRef names what max_age is measured from, in a refusal's detail.
func ageRef(o Options) string {
	if o.Now.IsZero() {
		return newestInInput
	}
	return "now"
}

// representable reports whether t fits in Unix nanoseconds (1678 to 2262),
// as entry.t holds it.
func representable(t time.Time) bool {
	return !t.Before(time.Unix(0, math.MinInt64)) && !t.After(time.Unix(0, math.MaxInt64))
}

// decodeResult turns one event of line n (a Bundle line holds several) into
// its outcome, its encoding appended to enc.
func decodeResult(n int, r *event.Decoded, spill *spillEncoder, enc []byte) (decoded, []byte) {
	if r.Err != nil {
		var de *event.Error
		if !errors.As(r.Err, &de) {
			de = &event.Error{Reason: event.ReasonMalformed, Detail: r.Err.Error()}
		}
		return decoded{line: n, err: de}, enc
	}
	ev := &r.Event
	at := len(enc)
	b, err := spill.encode(enc, ev)
	if err != nil {
		return decoded{line: n, err: &event.Error{Reason: event.ReasonInvalidField, Detail: "event cannot be re-encoded"}}, enc
	}
	return decoded{line: n, hash: keyHash(ev.Key()), t: ev.Time.UnixNano(), encoded: b[at:]}, b
}

func bad(o Options, st *Stats, line int, e *event.Error) {
	st.Bad++
	st.BadReasons[string(e.Reason)]++
	fmt.Fprintf(o.Errors, "line %d: %s: %s\n", line, e.Reason, e.Detail)
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line (without its newline) into buf. A line longer than
// limit is consumed and reported as errLineTooLong, so one huge line neither
// exhausts memory nor stops the replay.
func readLine(r *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	tooLong := false
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if tooLong {
				return buf[:0], errLineTooLong
			}
			return buf, err
		}
		if !tooLong {
			buf = append(buf, chunk...)
			if len(buf) > limit {
				tooLong, buf = true, buf[:0]
			}
		}
		if !isPrefix {
			if tooLong {
				return buf, errLineTooLong
			}
			return buf, nil
		}
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
