package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/backtest"
	"github.com/dpiawatch/dpiawatch/replay"
	"github.com/dpiawatch/dpiawatch/store"
)

func backtestCommand(e *env) *cobra.Command {
	var cfgPath, withPath, fromFlag, toFlag, org, jsonOut string
	var examples int
	var quiet bool
	c := &cobra.Command{
		Use:   "backtest --config FILE [--with OTHER_CONFIG] --from DATE --to DATE [--org ORG] [--json FILE]",
		Short: "Re-run the checks over the store's history and compare with the alerts stored at the time",
		Long: `backtest reads the events stored for a period (--from inclusive, --to exclusive; a date is
midnight UTC, or give an RFC 3339 instant) in event-time order, a chunk at a time, and runs the
checks over them as replay does: with the configuration of --config, or with another one given
by --with (a changed grace, a new override) before it is deployed. It is a dry run: the store of
--config is only read, and nothing is written to the alert tables or the checks' state.

The alerts the re-run raises are compared, per check and pattern, with the alerts stored for
the period: new (raised by the re-run only), gone (stored only) and changed (the same alert id
with other events, last_seen or severity), with up to --examples of each and their explanation.
Only alerts first seen within the period are compared, on both sides; feed-integrity and
feed-silent alerts are left out (the stored events alone cannot raise them again). The
checks start with no state at --from, so an episode running across --from may differ.

Reference data come from the reference directory of the configuration the checks run with
(--with, else --config), as loaded now. A table goes to standard output, --json writes the same
as JSON. On a terminal, a progress line shows events/s and ETA (--quiet: none).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromFlag == "" || toFlag == "" {
				return usagef("--from and --to are required")
			}
			from, err := parseInstant(fromFlag)
			if err != nil {
				return usagef("--from: %v", err)
			}
			to, err := parseInstant(toFlag)
			if err != nil {
				return usagef("--to: %v", err)
			}
			if !from.Before(to) {
				return usagef("--from must be before --to")
			}
			cfg, err := loadConfig(e, cfgPath)
			if err != nil {
				return err
			}
			if org != "" {
				if _, ok := cfg.Org(org); !ok {
					return usagef("--org: no org %q in the configuration", org)
				}
			}
			checks := cfg
			if withPath != "" {
				if checks, err = loadConfig(e, withPath); err != nil {
					return err
				}
			}
			log := e.logger()
			eng, _, err := offlineEngine(checks, log, checks.Reference.Dir, true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			src, kind, closeStore, err := openReadStore(ctx, cfg, e)
			if err != nil {
				return err
			}
			defer closeStore()
			total, err := src.CountEvents(ctx, store.EventFilter{Org: org, From: from, To: to})
			if err != nil {
				return err
			}
			bar := newReplayProgress(e.stderr, 0, quiet)
			start := time.Now()
			res, err := backtest.Run(ctx, src, eng, backtest.Options{Org: org, From: from, To: to, Examples: examples,
				Progress: func(n int) {
					bar.update(replay.Progress{Phase: replay.PhaseJudging, Done: n, Total: int(total)})
				}})
			bar.finish()
			if err != nil {
				return err
			}
			elapsed := time.Since(start)
			if jsonOut != "" {
				if err := writeJSONFile(jsonOut, res); err != nil {
					return err
				}
			}
			if err := backtest.WriteTable(e.stdout, res); err != nil {
				return err
			}
			rate := float64(res.Events) / max(elapsed.Seconds(), 1e-9)
			fmt.Fprintf(e.stderr, "backtest: %d events from the %s store in %s (%.0f events/s); nothing written\n",
				res.Events, kind, elapsed.Round(time.Millisecond), rate)
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", defaultConfigPath, "configuration file: the store read, and the checks unless --with")
	c.Flags().StringVar(&withPath, "with", "", "configuration whose checks and reference data to run instead (its store is not used)")
	c.Flags().StringVar(&fromFlag, "from", "", "start of the period, inclusive (2026-01-05 or RFC 3339)")
	c.Flags().StringVar(&toFlag, "to", "", "end of the period, exclusive (2026-04-01 or RFC 3339)")
	c.Flags().StringVar(&org, "org", "", "only this org's events and alerts (default: every org)")
	c.Flags().StringVar(&jsonOut, "json", "", "also write the difference as JSON to this file")
	c.Flags().IntVar(&examples, "examples", 3, "alerts shown per check, pattern and kind of difference")
	c.Flags().BoolVar(&quiet, "quiet", false, "no progress line on a terminal")
	return c
}

// parseInstant reads a date (midnight UTC) or an RFC 3339 instant.
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2026-01-05) nor an RFC 3339 instant", s)
	}
	return t, nil
}

// writeJSONFile writes the backtest's result to path through a temporary
// file, so that a failed run leaves no half-written file.
func writeJSONFile(path string, res backtest.Result) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".backtest-*.json")
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := backtest.WriteJSON(tmp, res); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	return nil
}
