package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

func benchStoreCommand(e *env) *cobra.Command {
	var (
		cfgPaths   []string
		eventsPath string
		batch      int
	)
	c := &cobra.Command{
		Use:   "store --config FILE [--config FILE …] --events FILE",
		Short: "Store a JSON Lines file of events the daemon's way, with the checks, into the configured stores",
		Long: `bench store fills stores for measuring what reads them (backtest, evidence export): it reads
native JSON Lines events (simulate's events.jsonl) in file order, batches of --batch, and applies
each batch to the store of every --config as the ingest pipeline does (store.Apply: new events
stored, duplicates dropped, the checks run on the new events, their alerts and state stored in the
same unit), then flushes the checks. The checks and reference data are those of the first
--config; their effects are computed once and stored in every store, so an embedded and a
ClickHouse store filled in one pass hold the same events and alerts. Lines that do not decode are
counted and skipped. No Kafka: events have no source positions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfgPaths) == 0 || eventsPath == "" {
				return usagef("--config and --events are required")
			}
			ctx := cmd.Context()
			stores := make([]store.Store, 0, len(cfgPaths))
			defer func() {
				for _, st := range stores {
					_ = st.Close()
				}
			}()
			var eval store.EvaluateFunc
			var flush func() store.Effects
			for i, p := range cfgPaths {
				cfg, err := loadConfig(e, p)
				if err != nil {
					return err
				}
				if i == 0 {
					eng, _, err := offlineEngine(cfg, e.logger(), cfg.Reference.Dir, false)
					if err != nil {
						return err
					}
					eval, flush = eng.Process, eng.Flush
				}
				st, err := daemon.OpenStore(ctx, cfg, e.logger())
				if err != nil {
					return err
				}
				stores = append(stores, st)
			}
			f, err := os.Open(eventsPath)
			if err != nil {
				return fmt.Errorf("--events: %w", err)
			}
			defer f.Close()
			start := time.Now()
			n, bad, err := storeEvents(ctx, f, stores, eval, batch, func(n int) {
				fmt.Fprintf(e.stderr, "bench store: %d events in %s\n", n, time.Since(start).Round(time.Second))
			})
			if err != nil {
				return err
			}
			flushed := constEffects(flush()) // what the checks still held, in every store
			for _, st := range stores {
				if _, err := st.Apply(ctx, nil, nil, flushed); err != nil {
					return fmt.Errorf("bench store: flush: %w", err)
				}
			}
			elapsed := time.Since(start)
			_, err = fmt.Fprintf(e.stdout, "stored %d events (%d lines skipped) into %d store(s) in %s (%.0f events/s)\n",
				n, bad, len(stores), elapsed.Round(time.Second), float64(n)/max(elapsed.Seconds(), 1e-9))
			return err
		},
	}
	c.Flags().StringArrayVar(&cfgPaths, "config", nil, "configuration whose store to fill (repeat for several; the first's checks run)")
	c.Flags().StringVar(&eventsPath, "events", "", "events file, native JSON Lines")
	c.Flags().IntVar(&batch, "batch", 20_000, "events per batch (one Apply each), as ingest.kafka.batch.max_events")
	return c
}

// constEffects is an evaluation that returns eff whatever the events.
func constEffects(eff store.Effects) store.EvaluateFunc {
	return func([]event.Event) (store.Effects, error) { return eff, nil }
}

// storeEvents applies r's events in batches to every store. The first
// store's Apply runs eval on the events it found new; the others store the
// same effects (they hold the same events, so the same are new).
func storeEvents(ctx context.Context, r io.Reader, stores []store.Store, eval store.EvaluateFunc, batch int, progress func(int)) (n, bad int, err error) {
	if batch <= 0 {
		return 0, 0, errors.New("bench store: --batch must be positive")
	}
	dec := event.NewDecoder(event.DecoderOptions{Format: event.FormatNative, MaxBytes: 1 << 20})
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	events := make([]event.Event, 0, batch)
	apply := func() error {
		var eff store.Effects
		for i, st := range stores {
			ev := constEffects(eff)
			if i == 0 {
				ev = func(fresh []event.Event) (store.Effects, error) {
					var err error
					eff, err = eval(fresh)
					return eff, err
				}
			}
			if _, err := st.Apply(ctx, events, nil, ev); err != nil {
				return fmt.Errorf("bench store: apply: %w", err)
			}
		}
		n += len(events)
		events = events[:0]
		if n%1_000_000 < batch {
			progress(n)
		}
		return ctx.Err()
	}
	for sc.Scan() {
		var ev event.Event
		if err := dec.Decode(sc.Bytes(), &ev); err != nil {
			bad++
			continue
		}
		events = append(events, ev)
		if len(events) == batch {
			if err := apply(); err != nil {
				return n, bad, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return n, bad, fmt.Errorf("bench store: read: %w", err)
	}
	if len(events) > 0 {
		if err := apply(); err != nil {
			return n, bad, err
		}
	}
	return n, bad, nil
}
