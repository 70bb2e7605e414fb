package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/replay"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/simulate"
)

// county is simulated events of both seed organisations, each with its
// reference data, for the shipped configuration's checks.
type county struct {
	cfg   *config.Config
	ref   *reference.Data
	lines []string
}

func simulated(tb testing.TB, days int, scale float64) county {
	tb.Helper()
	cfg, diags := config.Load(filepath.Join("..", "configs", "dpiawatch.yaml"))
	if cfg == nil {
		tb.Fatal(diags)
	}
	c := county{cfg: cfg, ref: &reference.Data{}}
	for _, org := range []string{simulate.OrgStMartins, simulate.OrgWiltshire} {
		sim, err := simulate.New(simulate.Options{Org: org, From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Days: days, Seed: 5, Scale: scale})
		if err != nil {
			tb.Fatal(err)
		}
		d := sim.Reference()
		c.ref.Staff = append(c.ref.Staff, d.Staff...)
		c.ref.Relationships = append(c.ref.Relationships, d.Relationships...)
		c.ref.Shifts = append(c.ref.Shifts, d.Shifts...)
		c.ref.Absences = append(c.ref.Absences, d.Absences...)
		c.ref.Devices = append(c.ref.Devices, d.Devices...)
		c.ref.SharingAgreements = append(c.ref.SharingAgreements, d.SharingAgreements...)
		err = sim.Run(context.Background(), func(ev *event.Event, _ *simulate.Label) error {
			b, err := event.Encode(ev)
			c.lines = append(c.lines, string(b))
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// replay replays in through the shipped configuration's checks as the CLI
// does, and returns the alerts, the bad-line reports and the stats.
func (c county) replay(tb testing.TB, in string, parallel int, memory int64) (alerts, errs string, st replay.Stats) {
	return c.replayWith(tb, in, parallel, memory, true)
}

// replayWith is replay; offline false keeps the engine as the daemon runs
// it (its state encoded after every chunk, no known ids given the codec).
func (c county) replayWith(tb testing.TB, in string, parallel int, memory int64, offline bool) (alerts, errs string, st replay.Stats) {
	tb.Helper()
	opts, err := checkconfig.EngineOptions(c.cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		tb.Fatal(err)
	}
	opts.Roster = reference.NewIndex(c.ref)
	opts.DiscardState = offline
	var known []string
	if offline {
		for _, s := range c.ref.Staff {
			known = append(known, s.ActorID)
		}
		for _, d := range c.ref.Devices {
			known = append(known, d.DeviceID)
		}
	}
	eng, err := rules.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	var out, errOut bytes.Buffer
	st, err = replay.Run(context.Background(), strings.NewReader(in), &out, replay.Options{
		Evaluator:     eng,
		Decoder:       event.NewDecoder(event.DecoderOptions{MaxBytes: c.cfg.Ingest.MaxEventBytes}),
		Errors:        &errOut,
		EventTime:     daemon.EventTimeWindows(c.cfg, c.cfg.Ingest.EventTime.MaxAge.D(), c.cfg.Ingest.EventTime.MaxAhead.D()),
		Now:           time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC),
		ConflictAlert: daemon.ConflictAlerter(c.cfg),
		Parallel:      parallel,
		Memory:        memory,
		SpillDir:      tb.TempDir(),
		KnownIDs:      known,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out.String(), errOut.String(), st
}

// TestRunParallelEqualsSerial (issue 14): the pipelined replay — input
// decoded on several goroutines, runs written in the background — writes
// byte for byte the alerts, bad-line reports and stats of the serial one
// (Parallel 1), in memory and spilled under a tiny budget, over both seed
// organisations' events shuffled together, with repeats, conflicting
// repeats, events too old and bad lines among them.
// The serial replay compared with runs the engine as the daemon does; the
// others as the CLI does (its state not encoded, the reference ids given
// to the codec).
func TestRunParallelEqualsSerial(t *testing.T) {
	c := simulated(t, 2, 0.3)
	rng := rand.New(rand.NewPCG(14, 2))
	lines := append([]string(nil), c.lines...)
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	for i := range 200 {
		l := lines[rng.IntN(len(lines))]
		switch i % 4 {
		case 0: // a repeat
		case 1: // other content under the same key: a conflict
			l = strings.Replace(l, `"outcome":"success"`, `"outcome":"failure"`, 1)
		case 2: // far too old: refused, and wins no key
			l = strings.Replace(l, `"time":"2026-03-0`, `"time":"2016-03-0`, 1)
		default:
			l = l[:len(l)/2]
		}
		at := rng.IntN(len(lines) + 1)
		lines = append(lines[:at], append([]string{l}, lines[at:]...)...)
	}
	in := strings.Join(lines, "\n")
	alerts, errs, st := c.replayWith(t, in, 1, 0, false)
	if st.Alerts == 0 || st.Duplicates == 0 || st.BadReasons[string(event.ReasonConflictingDuplicate)] == 0 ||
		st.BadReasons[string(event.ReasonEventTimeOutOfRange)] == 0 || st.BadReasons[string(event.ReasonMalformed)] == 0 {
		t.Fatalf("the input does not exercise what it should: %+v", st)
	}
	t.Logf("%d lines: %+v", len(lines), st)
	for _, tc := range []struct {
		parallel int
		memory   int64
	}{{1, 0}, {2, 0}, {4, 0}, {1, 256 << 10}, {2, 256 << 10}, {3, 64 << 10}} {
		gotAlerts, gotErrs, gotSt := c.replay(t, in, tc.parallel, tc.memory)
		if tc.memory > 0 && gotSt.Runs < 4 {
			t.Errorf("parallel %d, memory %d: %d runs; the test would prove nothing about spilling", tc.parallel, tc.memory, gotSt.Runs)
		}
		gotSt.Runs = st.Runs
		if gotAlerts != alerts || gotErrs != errs || fmt.Sprint(gotSt) != fmt.Sprint(st) {
			t.Errorf("parallel %d, memory %d: not the serial replay's output\nstats %+v\nwant  %+v\nerrors equal: %v, alerts equal: %v",
				tc.parallel, tc.memory, gotSt, st, gotErrs == errs, gotAlerts == alerts)
		}
	}
}

// BenchmarkRunCounty is the engine-level throughput of a replay: a
// simulated week of both seed organisations (about 440,000 events) read,
// deduplicated, sorted in event time within DefaultMemory and judged by
// the shipped configuration's checks; events/s is the figure.
func BenchmarkRunCounty(b *testing.B) {
	c := simulated(b, 7, 1)
	in := strings.Join(c.lines, "\n")
	for _, bc := range []struct {
		name   string
		memory int64
	}{{"in-memory", 0}, {"spilled-64MiB", 64 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				c.replay(b, in, 0, bc.memory)
			}
			b.ReportMetric(float64(len(c.lines)*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
