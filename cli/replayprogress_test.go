package cli

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/replay"
)

func TestProgressLine(t *testing.T) {
	for _, c := range []struct {
		name    string
		p       replay.Progress
		size    int64
		elapsed time.Duration
		want    string
	}{
		{"reading a file", replay.Progress{Phase: replay.PhaseReading, Bytes: 1 << 30, Lines: 3_000_000}, 4 << 30, 10 * time.Second,
			"replay: reading 1.0 GiB of 4.0 GiB (25%), 3,000,000 lines, 300k events/s, ETA 30s"},
		{"reading standard input", replay.Progress{Phase: replay.PhaseReading, Bytes: 5 << 20, Lines: 20_000}, 0, 2 * time.Second,
			"replay: reading 5.0 MiB, 20,000 lines, 10k events/s"},
		{"just started", replay.Progress{Phase: replay.PhaseReading}, 4 << 30, 0,
			"replay: reading 0 B of 4.0 GiB (0%), 0 lines"},
		{"merging", replay.Progress{Phase: replay.PhaseMerging, Done: 1_000_000, Total: 4_000_000}, 4 << 30, 2 * time.Second,
			"replay: merging 1,000,000 of 4,000,000 events (25%), 500k events/s, ETA 6s"},
		{"judging", replay.Progress{Phase: replay.PhaseJudging, Done: 3_000_000, Total: 4_000_000}, 0, time.Minute,
			"replay: judging 3,000,000 of 4,000,000 events (75%), 50k events/s, ETA 20s"},
	} {
		if got := progressLine(c.p, c.size, c.elapsed); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestReplayProgressOnlyOnATerminal (issue 14, item 1): the progress line
// is drawn on a terminal and cleared before the summary; redirected, or
// with --quiet, stderr has the bad lines and the summary only.
func TestReplayProgressOnlyOnATerminal(t *testing.T) {
	dir := t.TempDir()
	var events strings.Builder
	for range 3 {
		events.WriteString(`{"id":"e1","time":"2026-03-02T09:00:00Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-1"}}` + "\n")
	}
	real := isTerminal
	t.Cleanup(func() { isTerminal = real })
	for _, c := range []struct {
		name     string
		terminal bool
		args     []string
		drawn    bool
	}{
		{"terminal", true, nil, true},
		{"terminal, --quiet", true, []string{"--quiet"}, false},
		{"redirected", false, nil, false},
	} {
		var stderr bytes.Buffer
		isTerminal = func(w io.Writer) bool { return w == &stderr && c.terminal }
		e := &env{stdin: strings.NewReader(events.String()), stdout: io.Discard, stderr: &stderr, logLevel: "error"}
		cmd := replayCommand(e)
		cmd.SetArgs(append([]string{"--config", shippedConfig, "--events", "-", "--alerts-out", filepath.Join(dir, "alerts.jsonl")}, c.args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		got := stderr.String()
		drawn := strings.Contains(got, "\rreplay: reading ")
		if drawn != c.drawn {
			t.Errorf("%s: progress drawn %v, want %v; stderr %q", c.name, drawn, c.drawn, got)
		}
		if c.drawn && !strings.Contains(got, "\r\x1b[Kreplay: 3 lines, 1 events, 2 duplicates") {
			t.Errorf("%s: the line is not cleared before the summary; stderr %q", c.name, got)
		}
		if !c.drawn && strings.ContainsAny(got, "\r\x1b") {
			t.Errorf("%s: control characters on stderr %q", c.name, got)
		}
	}
}
