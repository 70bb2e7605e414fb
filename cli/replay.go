package cli

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/replay"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/store"
)

// replayHeadroom is the Go heap's soft limit during a replay beyond
// --memory (GOMEMLIMIT overrides it): the checks' state, the reference data
// and the chunk of events being judged.
const replayHeadroom = 388 << 20

// replayGCPercent is GOGC during a replay whose heap is bounded by the
// memory limit (replayHeadroom).
const replayGCPercent = 400

func replayCommand(e *env) *cobra.Command {
	var cfgPath, refDir, eventsPath, alertsOut, format, fhirOrg, fhirSystem, fhirTopic, cpuProfile, nowFlag, memoryFlag, spillDir, memProfile string
	var quiet bool
	var parallel int
	var maxAge, maxAhead time.Duration
	c := &cobra.Command{
		Use:   "replay --config FILE --reference DIR --events FILE --alerts-out FILE",
		Short: "Run the daemon's checks offline over a file of events and write the alerts",
		Long: `replay reads access events (JSON Lines, native or FHIR AuditEvent, in any order; "-" is
standard input), runs exactly the checks the daemon runs, in event time, and writes the final
alerts as JSON Lines (CONTRACT §3). Bad lines are reported on stderr with their line numbers
and counted; they do not stop the run. FHIR AuditEvents carry no org or system: give them
with --fhir-org and --fhir-system, or read the file as a configured topic is read (its org,
system and fhir mapping) with --fhir-topic. A line holding a FHIR Bundle gives one event
per AuditEvent entry; each bad entry is reported with its FHIR path.

Event time is bounded as the daemon bounds it (ingest.event_time), but so that a replay's
result does not depend on the day it runs: an event further ahead of the wall clock than
--event-time-max-ahead, or older than --event-time-max-age (or its org's events retention)
before the newest event time in the file, is a bad line (event_time_out_of_range), never judged.
With --now, both bounds are measured from that instant instead, as the daemon measures them
from its clock. An event whose id was already read with other
content is a bad line too (conflicting_duplicate): the first is kept, and a feed-integrity alert
is written, as the daemon raises one.

Memory is bounded by --memory whatever the input's size: beyond it, events are sorted in runs
written under --spill-dir (or $TMPDIR) and merged; the runs are removed at the end, on error
and on interrupt. On a terminal, a progress line shows the phase, bytes read, events/s and ETA
(--quiet: none). --parallel 1 decodes on one goroutine and writes runs in the foreground: the
same alerts, more slowly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if eventsPath == "" || alertsOut == "" {
				return usagef("--events and --alerts-out are required")
			}
			cfg, err := loadConfig(e, cfgPath)
			if err != nil {
				return err
			}
			f, err := event.ParseFormat(format)
			if err != nil {
				return usagef("--format: %v", err)
			}
			var fhirOpts event.FHIROptions
			if fhirTopic != "" {
				t, ok := configuredTopic(cfg, fhirTopic)
				if !ok {
					return usagef("--fhir-topic: no topic %q in the configuration", fhirTopic)
				}
				fhirOpts = t.FHIR.Options()
				if !cmd.Flags().Changed("fhir-org") {
					fhirOrg = t.Org
				}
				if !cmd.Flags().Changed("fhir-system") {
					fhirSystem = t.System
				}
			}
			log := e.logger()
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			if parallel < 1 || parallel > 64 {
				return usagef("--parallel: %d is not between 1 and 64", parallel)
			}
			memory, err := humanize.ParseBytes(memoryFlag)
			if err != nil || memory == 0 || memory > math.MaxInt64/2 {
				return usagef("--memory: %q is not a size (512MiB, 2GiB)", memoryFlag)
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				// Keep the heap, not just the live data, near the budget:
				// under 1 GiB by default.
				debug.SetMemoryLimit(int64(memory) + replayHeadroom)
				if os.Getenv("GOGC") == "" {
					// The limit bounds the heap: collecting at every
					// doubling of the live heap only spends CPU (a tenth
					// of a replay's at GOGC=100).
					debug.SetGCPercent(replayGCPercent)
				}
			}
			var now time.Time // zero: the window follows the input (replay.Options)
			if nowFlag != "" {
				if now, err = time.Parse(time.RFC3339, nowFlag); err != nil {
					return usagef("--now: %q is not an RFC 3339 time", nowFlag)
				}
			}
			if !cmd.Flags().Changed("event-time-max-age") {
				maxAge = cfg.Ingest.EventTime.MaxAge.D()
			}
			if !cmd.Flags().Changed("event-time-max-ahead") {
				maxAhead = cfg.Ingest.EventTime.MaxAhead.D()
			}
			if maxAge <= 0 || maxAhead <= 0 {
				return usagef("--event-time-max-age and --event-time-max-ahead must be longer than 0s")
			}
			window := daemon.EventTimeWindows(cfg, maxAge, maxAhead)
			eng, ids, err := offlineEngine(cfg, log, refDir, true)
			if err != nil {
				return err
			}
			var in io.Reader = e.stdin
			var size int64 // of the input, when it is a file
			if eventsPath != "-" {
				fh, err := os.Open(eventsPath)
				if err != nil {
					return usagef("--events: %v", err)
				}
				defer fh.Close()
				in = fh
				if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() {
					size = fi.Size()
				}
			}
			bar := newReplayProgress(e.stderr, size, quiet)
			// Write to a temporary file and rename, so that a failed run
			// never leaves a half-written alerts file behind.
			tmp, err := os.CreateTemp(filepath.Dir(alertsOut), ".alerts-*.jsonl")
			if err != nil {
				return fmt.Errorf("--alerts-out: %w", err)
			}
			defer os.Remove(tmp.Name())
			start := time.Now()
			phases := newPhaseClock(start)
			st, err := replay.Run(cmd.Context(), in, tmp, replay.Options{
				Evaluator:     eng,
				Decoder:       event.NewDecoder(event.DecoderOptions{Format: f, Org: fhirOrg, System: fhirSystem, MaxBytes: cfg.Ingest.MaxEventBytes, FHIR: fhirOpts}),
				Errors:        e.stderr,
				EventTime:     window,
				Now:           now,
				ConflictAlert: daemon.ConflictAlerter(cfg),
				Memory:        int64(memory),
				SpillDir:      spillDir,
				Parallel:      parallel,
				KnownIDs:      ids,
				Progress: func(p replay.Progress) {
					if bar.update(p) {
						phases.next(log, p.Phase)
						log.Info("replay phase", "phase", p.Phase, "lines", p.Lines)
					}
				},
			})
			bar.finish()
			phases.next(log, "")
			if err == nil {
				// The checks' state at the end of the history, kept live
				// until written.
				err = writeHeapProfile(memProfile)
				runtime.KeepAlive(eng)
			}
			if err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), alertsOut); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "replay: %d lines, %d events, %d duplicates, %d bad lines, %d alerts in %s (%d runs spilled)\n",
				st.Lines, st.Events, st.Duplicates, st.Bad, st.Alerts, time.Since(start).Round(time.Millisecond), st.Runs)
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", defaultConfigPath, "configuration file")
	c.Flags().StringVar(&refDir, "reference", "", "reference data directory (CONTRACT §2 CSV files)")
	c.Flags().StringVar(&eventsPath, "events", "", `events file, JSON Lines ("-" for standard input)`)
	c.Flags().StringVar(&alertsOut, "alerts-out", "", "where to write the alerts, JSON Lines")
	c.Flags().StringVar(&format, "format", "auto", "event format: auto, native or fhir")
	c.Flags().StringVar(&fhirOrg, "fhir-org", "", "org of FHIR AuditEvents in the file")
	c.Flags().StringVar(&fhirSystem, "fhir-system", "", "system of FHIR AuditEvents in the file")
	c.Flags().StringVar(&fhirTopic, "fhir-topic", "", "read FHIR AuditEvents as this configured Kafka topic reads them (org, system, fhir mapping)")
	c.Flags().StringVar(&nowFlag, "now", "", "RFC 3339 instant the event-time window is measured from (default: max-ahead after the wall clock, max-age before the newest event in the file)")
	c.Flags().DurationVar(&maxAge, "event-time-max-age", 0, "oldest event accepted, before the newest event in the file or --now (default: the configuration's ingest.event_time.max_age)")
	c.Flags().DurationVar(&maxAhead, "event-time-max-ahead", 0, "furthest event accepted, after the wall clock or --now (default: the configuration's ingest.event_time.max_ahead)")
	c.Flags().StringVar(&memoryFlag, "memory", "256MiB", "memory for the events held to sort them (KiB, MiB, GiB); beyond it, sorted runs are spilled to disk and merged")
	c.Flags().StringVar(&spillDir, "spill-dir", "", "directory for the spilled runs, in a directory of their own removed at the end (default $TMPDIR)")
	c.Flags().IntVar(&parallel, "parallel", replay.DefaultParallel, "goroutines decoding the input, the events' runs then written in the background; 1 is the serial path (the alerts never depend on it)")
	c.Flags().BoolVar(&quiet, "quiet", false, "no progress line on a terminal")
	c.Flags().StringVar(&memProfile, "memprofile", "", "write a heap profile of what is live at the end of the run, the checks' state (go tool pprof)")
	c.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	return c
}

// configuredTopic returns the input topic named name, if configured.
func configuredTopic(cfg *config.Config, name string) (config.Topic, bool) {
	if cfg.Ingest.Kafka == nil {
		return config.Topic{}, false
	}
	for _, t := range cfg.Ingest.Kafka.Topics {
		if t.Name == name {
			return t, true
		}
	}
	return config.Topic{}, false
}

// offlineEngine builds the rules engine as the daemon does; discardState
// when the checks' state is never stored (replay, backtest). It also
// returns the actor and device ids of the reference data
// (replay.Options.KnownIDs).
func offlineEngine(cfg *config.Config, log *slog.Logger, refDir string, discardState bool) (*rules.Engine, []string, error) {
	opts, err := checkconfig.EngineOptions(cfg, log, nil)
	if err != nil {
		return nil, nil, err
	}
	opts.DiscardState = discardState
	var ids []string
	if refDir != "" {
		// Display references are for the web UI: a replay, a backtest
		// and a benchmark's store judge without them.
		d, err := reference.LoadDirWith(refDir, reference.LoadOptions{WithoutSubjects: true})
		if err != nil {
			return nil, nil, usagef("--reference: %v", err)
		}
		// Named as the daemon names it, so that each alert says
		// which reference data it was judged against.
		id, err := store.ReferenceID(d)
		if err != nil {
			return nil, nil, fmt.Errorf("--reference: %w", err)
		}
		opts.Roster = reference.NewNamedIndex(d, id)
		ids = make([]string, 0, len(d.Staff)+len(d.Devices))
		for _, s := range d.Staff {
			ids = append(ids, s.ActorID)
		}
		for _, v := range d.Devices {
			ids = append(ids, v.DeviceID)
		}
	}
	eng, err := rules.New(opts)
	return eng, ids, err
}

// phaseClock logs the wall and CPU time of each phase of a replay as it
// ends: where the time goes, from the command line (docs/replay.md).
type phaseClock struct {
	name  string
	wall0 time.Time
	cpu0  time.Duration
}

func newPhaseClock(start time.Time) *phaseClock {
	return &phaseClock{wall0: start, cpu0: processCPU()}
}

// next ends the current phase, if any, and starts the one named ("": the
// end).
func (c *phaseClock) next(log *slog.Logger, name string) {
	now, cpu := time.Now(), processCPU()
	if c.name != "" {
		log.Info("replay phase done", "phase", c.name, "wall", now.Sub(c.wall0).Round(time.Millisecond),
			"cpu", (cpu - c.cpu0).Round(time.Millisecond))
	}
	c.name, c.wall0, c.cpu0 = name, now, cpu
}
