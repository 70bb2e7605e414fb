package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/dpiawatch/dpiawatch/replay"
)

// replayProgress draws a replay's progress on one line of a terminal,
// redrawn at most every redrawEvery; elsewhere (a file, a pipe, --quiet)
// it draws nothing.
type replayProgress struct {
	w     io.Writer // nil: draw nothing
	size  int64     // of the input; 0 when not known (standard input)
	now   func() time.Time
	phase string
	since time.Time // the phase's start
	drawn time.Time // the last redraw
}

const redrawEvery = 250 * time.Millisecond

func newReplayProgress(w io.Writer, size int64, quiet bool) *replayProgress {
	p := &replayProgress{size: size, now: time.Now}
	if !quiet && isTerminal(w) {
		p.w = w
	}
	return p
}

// update redraws the line if it is due, and reports whether p starts a
// new phase.
func (p *replayProgress) update(pr replay.Progress) bool {
	now := p.now()
	newPhase := pr.Phase != p.phase
	if newPhase {
		p.phase, p.since = pr.Phase, now
	}
	if p.w == nil || now.Sub(p.drawn) < redrawEvery {
		return newPhase
	}
	p.drawn = now
	fmt.Fprintf(p.w, "\r%s\x1b[K", progressLine(pr, p.size, now.Sub(p.since)))
	return newPhase
}

// finish clears the line, for the summary to take its place.
func (p *replayProgress) finish() {
	if p.w != nil && !p.drawn.IsZero() {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// progressLine describes pr, elapsed into its phase, for an input of size
// bytes (0: unknown).
func progressLine(pr replay.Progress, size int64, elapsed time.Duration) string {
	secs := elapsed.Seconds()
	if pr.Phase == replay.PhaseReading {
		s := "replay: reading " + humanize.IBytes(uint64(pr.Bytes))
		if size > 0 {
			s += fmt.Sprintf(" of %s (%d%%)", humanize.IBytes(uint64(size)), 100*min(pr.Bytes, size)/size)
		}
		s += fmt.Sprintf(", %s lines", humanize.Comma(int64(pr.Lines)))
		if secs > 0 {
			s += fmt.Sprintf(", %s events/s", perSecond(float64(pr.Lines)/secs))
			if size > 0 && pr.Bytes > 0 {
				s += ", ETA " + eta(float64(size-min(pr.Bytes, size))/(float64(pr.Bytes)/secs))
			}
		}
		return s
	}
	s := fmt.Sprintf("replay: %s %s of %s events", pr.Phase, humanize.Comma(int64(pr.Done)), humanize.Comma(int64(pr.Total)))
	if pr.Total > 0 {
		s += fmt.Sprintf(" (%d%%)", 100*pr.Done/pr.Total)
	}
	if secs > 0 && pr.Done > 0 {
		rate := float64(pr.Done) / secs
		s += fmt.Sprintf(", %s events/s, ETA %s", perSecond(rate), eta(float64(pr.Total-pr.Done)/rate))
	}
	return s
}

// eta rounds a number of seconds left to the second.
func eta(secs float64) string {
	return (time.Duration(secs) * time.Second).Round(time.Second).String()
}

// perSecond writes a rate, in thousands past a thousand.
func perSecond(r float64) string {
	if r >= 1000 {
		return fmt.Sprintf("%.0fk", r/1000)
	}
	return fmt.Sprintf("%.0f", r)
}
