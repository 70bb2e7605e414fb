package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/replay"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/score"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/store"
)

// scoreFlags are the flags of simulate --score.
type scoreFlags struct {
	on                      bool
	cfgPath                 string
	json, details           bool
	minPrecision, minRecall float64
}

func (s *scoreFlags) register(c *cobra.Command) {
	c.Flags().BoolVar(&s.on, "score", false, "replay the simulated events through the daemon's checks and print precision and recall per check and pattern")
	c.Flags().StringVar(&s.cfgPath, "config", defaultConfigPath, "with --score: configuration file whose checks are run")
	c.Flags().BoolVar(&s.json, "json", false, "with --score: print the report as JSON")
	c.Flags().BoolVar(&s.details, "details", false, "with --score: list the false positives and missed episodes after the table")
	c.Flags().Float64Var(&s.minPrecision, "min-precision", 0, "with --score: exit 1 when a check with labelled episodes has a lower precision")
	c.Flags().Float64Var(&s.minRecall, "min-recall", 0, "with --score: exit 1 when a check with labelled episodes has a lower recall")
}

// validate rejects score flags without --score, and --score with --kafka.
func (s *scoreFlags) validate(c *cobra.Command, brokers string) error {
	if !s.on {
		for _, f := range []string{"config", "json", "details", "min-precision", "min-recall"} {
			if c.Flags().Changed(f) {
				return usagef("--%s needs --score", f)
			}
		}
		return nil
	}
	if brokers != "" {
		return usagef("--score runs in memory; it cannot be combined with --kafka")
	}
	for _, v := range []float64{s.minPrecision, s.minRecall} {
		if v < 0 || v > 1 {
			return usagef("--min-precision and --min-recall must lie between 0 and 1")
		}
	}
	return nil
}

// runScore simulates, replays the events through the checks the daemon
// runs (checkconfig.EngineOptions, rules.New, replay.Run: the replay command's
// path, fed through a pipe instead of a file), and scores the alerts
// against the simulator's labels. With out set it also leaves the files
// simulate --out writes, and the alerts, in out.
func runScore(ctx context.Context, e *env, sim *simulate.Simulation, o simulate.Options, out string, s *scoreFlags) error {
	began := time.Now()
	cfg, err := loadConfig(e, s.cfgPath)
	if err != nil {
		return err
	}
	log := e.logger()
	opts, err := checkconfig.EngineOptions(cfg, log, nil)
	if err != nil {
		return err
	}
	ref := sim.Reference()
	var files *scoreFiles
	if out != "" {
		if files, err = createScoreFiles(out, ref); err != nil {
			return err
		}
		defer files.close()
		// --out's alerts are what replay gives over --out's files, and
		// name the reference data as replay reads it back (rows sorted, so
		// another content hash than the simulator's order gives).
		if ref, err = reference.LoadDir(filepath.Join(out, "reference")); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	id, err := store.ReferenceID(ref)
	if err != nil {
		return err
	}
	opts.Roster = reference.NewNamedIndex(ref, id)
	eng, err := rules.New(opts)
	if err != nil {
		return err
	}

	// The simulator writes native JSON into the pipe as it goes; replay
	// decodes, sorts and evaluates it exactly as it would a file.
	pr, pw := io.Pipe()
	truth := score.NewTruth()
	events := 0
	simDone := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		err := sim.Run(ctx, func(ev *event.Event, l *simulate.Label) error {
			events++
			b, err := event.Encode(ev)
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if _, err := bw.Write(b); err != nil {
				return err
			}
			if files != nil {
				files.events.Write(b)
			}
			if l == nil {
				return nil
			}
			if files != nil {
				if err := files.labelEnc.Encode(labelLine{EventID: ev.ID, Org: ev.Org, System: ev.System, Label: *l}); err != nil {
					return err
				}
			}
			return truth.Add(score.LabelledEvent{
				Org: ev.Org, EventID: ev.ID, ActorID: ev.Actor.ID, Time: ev.Time,
				Check: l.Check, Pattern: l.Pattern, Episode: l.Episode,
			})
		})
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err) // nil: replay sees the end of input
		simDone <- err
	}()

	var alertsJSONL bytes.Buffer
	st, err := replay.Run(ctx, pr, &alertsJSONL, replay.Options{
		Evaluator: eng,
		Decoder:   event.NewDecoder(event.DecoderOptions{MaxBytes: cfg.Ingest.MaxEventBytes}),
		Errors:    e.stderr,
	})
	pr.CloseWithError(errors.New("replay stopped")) // unblocks the simulator if replay failed
	if simErr := <-simDone; simErr != nil {
		return fmt.Errorf("simulate: %w", simErr)
	}
	if err != nil {
		return err
	}
	if st.Bad > 0 {
		// The simulator's own events should all be valid: scoring with some
		// dropped would be scoring something else.
		return fmt.Errorf("replay rejected %d simulated events", st.Bad)
	}
	if files != nil {
		if _, err := files.alerts.Write(alertsJSONL.Bytes()); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		if err := files.finish(); err != nil {
			return err
		}
	}
	alerts, err := score.ReadAlerts(&alertsJSONL)
	if err != nil {
		return err
	}
	var ran []string // the checks this engine runs: only they are scored
	for _, c := range rules.Checks() {
		if !slices.Contains(opts.Disabled, c) {
			ran = append(ran, c)
		}
	}
	rep := score.Score(truth, alerts, score.Options{Checks: ran})

	if s.json {
		err = rep.WriteJSON(e.stdout)
	} else {
		fmt.Fprintf(e.stdout, "%s, %d days from %s, seed %d: %d events, %d labelled episodes, %d alerts\n\n",
			o.Org, o.Days, o.From.Format("2006-01-02"), o.Seed, events, truth.Episodes(), len(alerts))
		err = rep.WriteText(e.stdout, s.details)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "simulate --score: %d events, %d alerts, %d labelled episodes in %s\n",
		events, len(alerts), truth.Episodes(), time.Since(began).Round(time.Millisecond))

	if fails := rep.Below(s.minPrecision, s.minRecall); len(fails) > 0 {
		msgs := make([]string, len(fails))
		for i, f := range fails {
			msgs[i] = f.String()
		}
		return fmt.Errorf("below the thresholds: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// scoreFiles are what simulate --score --out leaves behind: the files of
// simulate --out, and the alerts of the replay.
type scoreFiles struct {
	ef, lf, af     *os.File
	events, labels *bufio.Writer
	labelEnc       *json.Encoder
	alerts         *bufio.Writer
}

func createScoreFiles(out string, ref *reference.Data) (*scoreFiles, error) {
	if err := reference.WriteDir(filepath.Join(out, "reference"), ref); err != nil {
		return nil, err
	}
	f := &scoreFiles{}
	for _, x := range []struct {
		name string
		fh   **os.File
	}{{"events.jsonl", &f.ef}, {"labels.jsonl", &f.lf}, {"alerts.jsonl", &f.af}} {
		fh, err := os.Create(filepath.Join(out, x.name))
		if err != nil {
			f.close()
			return nil, fmt.Errorf("--out: %w", err)
		}
		*x.fh = fh
	}
	f.events, f.labels, f.alerts = bufio.NewWriterSize(f.ef, 1<<20), bufio.NewWriter(f.lf), bufio.NewWriter(f.af)
	f.labelEnc = json.NewEncoder(f.labels)
	return f, nil
}

// finish flushes and closes the files, reporting the first error.
func (f *scoreFiles) finish() error {
	var errs []error
	for _, w := range []*bufio.Writer{f.events, f.labels, f.alerts} {
		errs = append(errs, w.Flush())
	}
	for _, fh := range []*os.File{f.ef, f.lf, f.af} {
		errs = append(errs, fh.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// close releases the files after a failure; after finish it does nothing
// useful and its errors are of no interest.
func (f *scoreFiles) close() {
	for _, fh := range []*os.File{f.ef, f.lf, f.af} {
		if fh != nil {
			fh.Close()
		}
	}
}
