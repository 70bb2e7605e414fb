// Package replay runs the daemon's checks offline over a file of access events
// (CONTRACT §5): events in any order are sorted into event time, duplicates
// are absorbed, and the final alerts are written as JSON Lines.
package replay

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// Evaluator is the part of the rules engine replay needs: the same function
// the daemon hands its store for every batch.
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
	// Progress, if set, is called with the number of lines read so far.
	Progress func(lines int)
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
	return o
}

// Stats summarises a replay.
type Stats struct {
	Lines      int            `json:"lines"`
	Events     int            `json:"events"`
	Duplicates int            `json:"duplicates"`
	Bad        int            `json:"bad"`
	BadReasons map[string]int `json:"bad_reasons,omitempty"`
	Alerts     int            `json:"alerts"`
}

// Run reads events from in and writes the final alerts to out.
//
// Memory: a county's month is millions of events, and a decoded Event costs
// over a kilobyte. Run keeps each valid event re-encoded in the compact
// native form in one arena, with a 32-byte index entry (time, key hash,
// position) per event; it sorts the index and decodes events again, a chunk
// at a time, as they go to the evaluator.
func Run(ctx context.Context, in io.Reader, out io.Writer, o Options) (Stats, error) {
	if o.Evaluator == nil || o.Decoder == nil {
		return Stats{}, errors.New("replay: evaluator and decoder are required")
	}
	o = o.withDefaults()
	st := Stats{BadReasons: map[string]int{}}
	set, err := read(ctx, in, o, &st)
	if err != nil {
		return st, err
	}
	st.Events = len(set.index)
	st.Duplicates = set.duplicates

	// Event time drives every check; the key orders ties so that the same
	// input always yields the same alerts, whatever order it came in.
	slices.SortFunc(set.index, func(a, b entry) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return set.compareKeys(a, b)
	})

	alerts := map[string]alert.Alert{}
	collect := func(eff store.Effects) {
		for _, a := range eff.Alerts {
			alerts[a.ID] = a
		}
	}
	if o.ConflictAlert != nil {
		for _, c := range set.conflicts {
			a := o.ConflictAlert(c)
			alerts[a.ID] = a
		}
	}
	// Decode chunk k+1 while the evaluator judges chunk k.
	type chunk struct {
		events []event.Event
		err    error
	}
	chunks := make(chan chunk, 1)
	dctx, stopDecode := context.WithCancel(ctx)
	defer stopDecode()
	go func() {
		defer close(chunks)
		dec := event.NewDecoder(event.DecoderOptions{Format: event.FormatNative, MaxBytes: 1 << 20})
		for lo := 0; lo < len(set.index); lo += o.ChunkSize {
			c := chunk{events: make([]event.Event, 0, min(o.ChunkSize, len(set.index)-lo))}
			for _, e := range set.index[lo:min(lo+o.ChunkSize, len(set.index))] {
				var ev event.Event
				if err := dec.Decode(set.bytes(e), &ev); err != nil {
					c.err = fmt.Errorf("replay: decode a stored event again: %w", err) // a bug: it decoded once
					break
				}
				c.events = append(c.events, ev)
			}
			select {
			case chunks <- c:
			case <-dctx.Done():
				return
			}
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return st, c.err
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		eff, err := o.Evaluator.Process(c.events)
		if err != nil {
			return st, fmt.Errorf("replay: evaluate: %w", err)
		}
		collect(eff)
	}
	collect(o.Evaluator.Flush())

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

// entry indexes one event of the arena.
type entry struct {
	t     int64  // event time, Unix nanoseconds
	hash  uint64 // of the event key: orders ties, finds duplicates
	block int32  // arena block
	off   int32  // offset in the block
	n     int32
	line  int32 // input line, for its report
	win   int32 // index of its org's event-time window in windows.of
}

// blockSize is the arena's unit of allocation: fixed blocks, so that
// growing never copies (and never briefly doubles) what is already held.
const blockSize = 8 << 20

// eventSet is every valid event read, deduplicated by key: the first
// occurrence within the event-time window wins, as in the daemon.
type eventSet struct {
	arena      [][]byte // blocks of blockSize (or one event, if larger)
	index      []entry
	keys       map[uint64]int32   // key hash → index position of the first event with it
	collisions map[uint64][]int32 // further positions whose different keys share a hash
	duplicates int
	conflicts  []store.Conflict // events that reuse a kept key with other content, not kept
}

func (s *eventSet) bytes(e entry) []byte { return s.arena[e.block][e.off : e.off+e.n] }

// store appends b to the arena and returns where it went.
func (s *eventSet) store(b []byte) (block, off int32) {
	last := len(s.arena) - 1
	if last < 0 || len(s.arena[last])+len(b) > cap(s.arena[last]) {
		s.arena = append(s.arena, make([]byte, 0, max(blockSize, len(b))))
		last++
	}
	off = int32(len(s.arena[last]))
	s.arena[last] = append(s.arena[last], b...)
	return int32(last), off
}

// key decodes the key of an indexed event; only needed on a hash match.
func (s *eventSet) key(e entry) event.Key {
	var ev event.Event
	_ = nativeDecoder.Decode(s.bytes(e), &ev)
	return ev.Key()
}

func (s *eventSet) compareKeys(a, b entry) int {
	ka, kb := s.key(a), s.key(b)
	return cmp.Or(cmp.Compare(ka.Org, kb.Org), cmp.Compare(ka.System, kb.System), cmp.Compare(ka.ID, kb.ID))
}

var nativeDecoder = event.NewDecoder(event.DecoderOptions{Format: event.FormatNative, MaxBytes: 1 << 20})

// decoded is one line's outcome: an event (its key, time and native
// encoding) or why the line was refused.
type decoded struct {
	line    int
	key     event.Key
	t       int64
	win     int32
	encoded []byte
	err     *event.Error
}

// add keeps e unless an event with its key is already kept. A later event
// under a kept key with other content (event.Diff) is a conflict, as in the
// daemon: it is returned as the line's error and kept in s.conflicts for
// its alert. e's bytes are in the arena already; add appends e to s.index.
func (s *eventSet) add(e entry) *event.Error {
	h := e.hash
	first, seen := s.keys[h]
	if seen {
		k := s.key(e)
		for _, i := range append([]int32{first}, s.collisions[h]...) {
			if s.key(s.index[i]) == k {
				var kept, ev event.Event
				_ = nativeDecoder.Decode(s.bytes(s.index[i]), &kept) // both decoded once already
				_ = nativeDecoder.Decode(s.bytes(e), &ev)
				if fields := event.Diff(&kept, &ev); fields != nil {
					s.conflicts = append(s.conflicts, store.Conflict{Index: int(e.line), Event: ev, Kept: kept, Fields: fields})
					return &event.Error{Reason: event.ReasonConflictingDuplicate,
						Detail: "same org, system and id as a kept event; differs in " + strings.Join(fields, ", ")}
				}
				s.duplicates++
				return nil
			}
		}
		s.collisions[h] = append(s.collisions[h], int32(len(s.index)))
	} else {
		s.keys[h] = int32(len(s.index))
	}
	s.index = append(s.index, e)
	return nil
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

// readBatch is how many lines are decoded together, across decodeWorkers.
const (
	readBatch     = 4096
	decodeWorkers = 2
)

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

// badLine is a refused line whose report waits for its turn in line order.
type badLine struct {
	line int
	err  *event.Error
}

// newestInInput names a replay's default reference for max_age in the
// details of its refusals.
const newestInInput = "the newest event in the input"

// read decodes every line; bad lines are reported and counted, never fatal.
// Lines are decoded (and re-encoded) in parallel, a batch at a time, then
// kept in input order. Without o.Now, max_age is measured from the newest
// event, known only at the end: every decoded event is held until then,
// and only then are events judged against max_age and deduplicated, in
// line order, so that an event refused for its age wins no key from a
// later one (live, it is dead-lettered before the store), and the first
// of two events with one key wins. Bad-line reports wait too, to come out
// in line order.
func read(ctx context.Context, in io.Reader, o Options, st *Stats) (*eventSet, error) {
	set := &eventSet{keys: map[uint64]int32{}, collisions: map[uint64][]int32{}}
	wins := newWindows(o.EventTime)
	aheadOf := o.Now
	if aheadOf.IsZero() {
		aheadOf = o.Clock()
	}
	var newest int64 = math.MinInt64
	var bads []badLine
	r := bufio.NewReaderSize(in, 1<<20)
	lines := make([][]byte, 0, readBatch)
	nums := make([]int, 0, readBatch)
	out := make([][]decoded, readBatch) // a line holds one event, or a Bundle's
	flush := func() {
		n := len(lines)
		var wg sync.WaitGroup
		per := (n + decodeWorkers - 1) / decodeWorkers
		for w := range decodeWorkers {
			lo, hi := w*per, min(n, (w+1)*per)
			wg.Go(func() {
				var res []event.Decoded
				for i := lo; i < hi; i++ {
					res = o.Decoder.DecodeAll(lines[i], res[:0])
					out[i] = out[i][:0]
					for j := range res {
						ev := &res[j].Event
						d := decodeResult(nums[i], &res[j])
						if d.err == nil {
							d.win = wins.byOrg[ev.Org]
							win := wins.of[d.win]
							err := win.CheckAhead(ev.Time, aheadOf)
							if err == nil && !representable(ev.Time) {
								// Centuries outside any window: refused whatever
								// the newest event is (max_age is under 292 years).
								err = win.CheckAge(ev.Time, time.Unix(0, math.MaxInt64), ageRef(o))
							}
							if err != nil {
								d = decoded{line: nums[i], err: err.(*event.Error)}
							}
						}
						out[i] = append(out[i], d)
					}
				}
			})
		}
		wg.Wait()
		for i := range n {
			for j := range out[i] {
				d := &out[i][j]
				if d.err != nil {
					bads = append(bads, badLine{d.line, d.err})
					continue
				}
				block, off := set.store(d.encoded)
				set.index = append(set.index, entry{t: d.t, hash: keyHash(d.key), block: block, off: off, n: int32(len(d.encoded)), line: int32(d.line), win: d.win})
				newest = max(newest, d.t)
			}
		}
		lines, nums = lines[:0], nums[:0]
	}
	var line []byte
	for n := 1; ; n++ {
		var err error
		line, err = readLine(r, line[:0], o.Decoder.MaxBytes())
		if len(line) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF && !errors.Is(err, errLineTooLong) {
			return set, fmt.Errorf("replay: read line %d: %w", n, err)
		}
		st.Lines = n
		if n%100000 == 0 {
			if cerr := ctx.Err(); cerr != nil {
				return set, cerr
			}
			if o.Progress != nil {
				o.Progress(n)
			}
		}
		switch {
		case errors.Is(err, errLineTooLong):
			flush() // keep bad-line reports in line order
			bads = append(bads, badLine{n, &event.Error{Reason: event.ReasonTooLarge, Detail: fmt.Sprintf("line is longer than %d bytes", o.Decoder.MaxBytes())}})
		case len(trimSpace(line)) > 0:
			lines = append(lines, slices.Clone(line))
			nums = append(nums, n)
			if len(lines) == readBatch {
				flush()
			}
		}
		if err == io.EOF {
			break
		}
	}
	flush()
	if st.Lines > math.MaxInt32 {
		return set, fmt.Errorf("replay: %d lines; at most %d are supported", st.Lines, math.MaxInt32)
	}

	ref := o.Now
	if ref.IsZero() {
		ref = time.Unix(0, newest) // unused when no event was read
	}
	// Judge in line order: s.index is rebuilt in place, never ahead of the
	// entry being judged.
	pending := set.index
	set.index = pending[:0]
	next := 0
	for i, e := range pending {
		if i%100000 == 0 {
			if err := ctx.Err(); err != nil {
				return set, err
			}
		}
		for ; next < len(bads) && bads[next].line < int(e.line); next++ {
			bad(o, st, bads[next].line, bads[next].err)
		}
		if err := wins.of[e.win].CheckAge(time.Unix(0, e.t), ref, ageRef(o)); err != nil {
			bad(o, st, int(e.line), err.(*event.Error))
			continue
		}
		if err := set.add(e); err != nil {
			bad(o, st, int(e.line), err)
		}
	}
	for ; next < len(bads); next++ {
		bad(o, st, bads[next].line, bads[next].err)
	}
	return set, nil
}

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
// its outcome.
func decodeResult(n int, r *event.Decoded) decoded {
	if r.Err != nil {
		var de *event.Error
		if !errors.As(r.Err, &de) {
			de = &event.Error{Reason: event.ReasonMalformed, Detail: r.Err.Error()}
		}
		return decoded{line: n, err: de}
	}
	ev := &r.Event
	b, err := event.Encode(ev)
	if err != nil {
		return decoded{line: n, err: &event.Error{Reason: event.ReasonInvalidField, Detail: "event cannot be re-encoded"}}
	}
	return decoded{line: n, key: ev.Key(), t: ev.Time.UnixNano(), encoded: b}
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
