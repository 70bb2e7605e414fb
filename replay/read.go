package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
)

// readBatch is how many lines go together through read's pipeline.
const readBatch = 4096

// lineBatch is a batch of input lines on its way through read's pipeline:
// read, then decoded by a worker, then kept in line order by read.
type lineBatch struct {
	buf   []byte      // the lines, one after another
	lines []batchLine //
	out   []decoded   // the outcomes, in line order (a Bundle line has several)
	enc   []byte      // the events' spill encodings, which out's slice
	bytes int64       // input bytes read at the end of the batch
	last  int         // the number of the last line read
	err   error       // reading failed after the batch's lines
	done  chan struct{}
}

// batchLine is one non-blank line of a batch: buf[lo:hi], or too long.
type batchLine struct {
	n       int
	lo, hi  int
	tooLong bool
}

// read decodes every line into events (valid events, in event time) and
// bads (refused lines); bad lines are never fatal. Three stages overlap:
// a reader splits the input into batches of lines, o.Parallel workers
// decode (and encode) a batch each, and read keeps their outcomes in
// input order, while the events' sorter writes its full runs in the
// background. At most two batches per worker, and two more, are in
// flight. It returns the newest event time read. max_age cannot be
// judged yet without o.Now: it is measured from the newest event, known
// only at the end (judge).
func read(ctx context.Context, in io.Reader, o Options, st *Stats, events, bads *sorter) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	inFlight := 2*o.Parallel + 2
	ordered := make(chan *lineBatch, inFlight)
	work := make(chan *lineBatch, inFlight)
	free := make(chan *lineBatch, inFlight)
	wg.Go(func() { readBatches(ctx, in, o.Decoder.MaxBytes(), ordered, work, free) })
	aheadOf := o.Now
	if aheadOf.IsZero() {
		aheadOf = o.Clock()
	}
	for range o.Parallel {
		wg.Go(func() {
			var res []event.Decoded
			spill := o.dict.encoder()
			for b := range work {
				res = decodeBatch(o, spill, aheadOf, b, res)
				close(b.done)
			}
		})
	}
	var newest int64 = math.MinInt64
	for b := range ordered {
		select {
		case <-b.done:
		case <-ctx.Done():
			return newest, ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return newest, err
		}
		for i := range b.out {
			d := &b.out[i]
			if d.err != nil {
				if err := addBad(bads, int32(d.line), d.err); err != nil {
					return newest, err
				}
				continue
			}
			if err := events.add(&rec{t: d.t, hash: d.hash, line: int32(d.line), win: d.win, b: d.encoded}); err != nil {
				return newest, err
			}
			newest = max(newest, d.t)
		}
		st.bytes, st.Lines = b.bytes, b.last
		if b.err != nil {
			return newest, b.err
		}
		if o.Progress != nil {
			o.Progress(Progress{Phase: PhaseReading, Bytes: st.bytes, Lines: st.Lines})
		}
		select {
		case free <- b:
		default:
		}
	}
	return newest, ctx.Err()
}

// readBatches splits in into batches of lines, each sent to ordered and to
// work, until the input ends or ctx is done; it closes both.
func readBatches(ctx context.Context, in io.Reader, maxBytes int, ordered, work chan<- *lineBatch, free <-chan *lineBatch) {
	defer close(ordered)
	defer close(work)
	var read int64
	r := bufio.NewReaderSize(countingReader{in, &read}, 1<<20)
	var line []byte
	n := 0
	for more := true; more; {
		var b *lineBatch
		select {
		case b = <-free:
			b.buf, b.lines, b.out, b.enc, b.err = b.buf[:0], b.lines[:0], b.out[:0], b.enc[:0], nil
		default:
			b = &lineBatch{buf: make([]byte, 0, 2<<20)}
		}
		b.done = make(chan struct{})
		for len(b.lines) < readBatch {
			var err error
			line, err = readLine(r, line[:0], maxBytes)
			if len(line) == 0 && err == io.EOF {
				more = false
				break
			}
			n++
			if err != nil && err != io.EOF && !errors.Is(err, errLineTooLong) {
				b.err, more = fmt.Errorf("replay: read line %d: %w", n, err), false
				break
			}
			if n > math.MaxInt32 {
				b.err, more = fmt.Errorf("replay: more than %d lines are not supported", math.MaxInt32), false
				break
			}
			switch {
			case errors.Is(err, errLineTooLong):
				b.lines = append(b.lines, batchLine{n: n, tooLong: true})
			case len(trimSpace(line)) > 0:
				b.lines = append(b.lines, batchLine{n: n, lo: len(b.buf), hi: len(b.buf) + len(line)})
				b.buf = append(b.buf, line...)
			}
			if err == io.EOF {
				more = false
				break
			}
		}
		b.bytes, b.last = read, n
		select {
		case ordered <- b:
		case <-ctx.Done():
			return
		}
		select {
		case work <- b:
		case <-ctx.Done():
			return
		}
	}
}

// decodeBatch decodes b's lines into b.out, with res as scratch space.
func decodeBatch(o Options, spill *spillEncoder, aheadOf time.Time, b *lineBatch, res []event.Decoded) []event.Decoded {
	for _, l := range b.lines {
		if l.tooLong {
			b.out = append(b.out, decoded{line: l.n, err: &event.Error{Reason: event.ReasonTooLarge,
				Detail: fmt.Sprintf("line is longer than %d bytes", o.Decoder.MaxBytes())}})
			continue
		}
		res = o.Decoder.DecodeAll(b.buf[l.lo:l.hi], res[:0])
		for j := range res {
			ev := &res[j].Event
			var d decoded
			d, b.enc = decodeResult(l.n, &res[j], spill, b.enc)
			if d.err == nil {
				d.win = o.wins.byOrg[ev.Org]
				win := o.wins.of[d.win]
				err := win.CheckAhead(ev.Time, aheadOf)
				if err == nil && !representable(ev.Time) {
					// Centuries outside any window: refused whatever
					// the newest event is (max_age is under 292 years).
					err = win.CheckAge(ev.Time, time.Unix(0, math.MaxInt64), ageRef(o))
				}
				if err != nil {
					d = decoded{line: l.n, err: err.(*event.Error)}
				}
			}
			b.out = append(b.out, d)
		}
	}
	return res
}

// countingReader counts the bytes read through it, for Progress.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
