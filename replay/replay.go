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
	"slices"

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
	// batch would; default 5000.
	ChunkSize int
	// Progress, if set, is called with the number of lines read so far.
	Progress func(lines int)
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
func Run(ctx context.Context, in io.Reader, out io.Writer, o Options) (Stats, error) {
	if o.Evaluator == nil || o.Decoder == nil {
		return Stats{}, errors.New("replay: evaluator and decoder are required")
	}
	if o.Errors == nil {
		o.Errors = io.Discard
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 5000
	}
	st := Stats{BadReasons: map[string]int{}}
	events, err := read(ctx, in, o, &st)
	if err != nil {
		return st, err
	}

	// Event time drives every check; the key orders ties so that the same
	// input always yields the same alerts, whatever order it came in.
	slices.SortStableFunc(events, func(a, b event.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.System, b.System), cmp.Compare(a.ID, b.ID))
	})
	events = slices.CompactFunc(events, func(a, b event.Event) bool {
		if a.Key() == b.Key() {
			st.Duplicates++
			return true
		}
		return false
	})
	st.Events = len(events)

	alerts := map[string]alert.Alert{}
	collect := func(eff store.Effects) {
		for _, a := range eff.Alerts {
			alerts[a.ID] = a
		}
	}
	for lo := 0; lo < len(events); lo += o.ChunkSize {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		eff, err := o.Evaluator.Process(events[lo:min(lo+o.ChunkSize, len(events))])
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

// read decodes every line; bad lines are reported and counted, never fatal.
func read(ctx context.Context, in io.Reader, o Options, st *Stats) ([]event.Event, error) {
	r := bufio.NewReaderSize(in, 1<<20)
	var events []event.Event
	var line []byte
	for n := 1; ; n++ {
		var err error
		line, err = readLine(r, line[:0], o.Decoder.MaxBytes())
		if len(line) == 0 && err == io.EOF {
			return events, nil
		}
		if err != nil && err != io.EOF && !errors.Is(err, errLineTooLong) {
			return events, fmt.Errorf("replay: read line %d: %w", n, err)
		}
		st.Lines = n
		if n%100000 == 0 {
			if cerr := ctx.Err(); cerr != nil {
				return events, cerr
			}
			if o.Progress != nil {
				o.Progress(n)
			}
		}
		if errors.Is(err, errLineTooLong) {
			bad(o, st, n, &event.Error{Reason: event.ReasonTooLarge, Detail: fmt.Sprintf("line is longer than %d bytes", o.Decoder.MaxBytes())})
			continue
		}
		if len(trimSpace(line)) == 0 {
			if err == io.EOF {
				return events, nil
			}
			continue
		}
		var ev event.Event
		if derr := o.Decoder.Decode(line, &ev); derr != nil {
			var de *event.Error
			if !errors.As(derr, &de) {
				de = &event.Error{Reason: event.ReasonMalformed, Detail: derr.Error()}
			}
			bad(o, st, n, de)
		} else {
			events = append(events, ev)
		}
		if err == io.EOF {
			return events, nil
		}
	}
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
