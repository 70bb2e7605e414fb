package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// engine is what the pipeline needs of the rules engine.
type engine interface {
	Process(fresh []event.Event) (store.Effects, error)
	Restore(entries []store.StateEntry) error
	Reset()
}

// statePrefix is the key prefix of every check's saved state.
const statePrefix = "rules/"

// pipeline is the ingest.Processor: it stores a batch and runs the checks
// over its new events in one durable unit, and keeps the engine's in-memory
// state equal to what is durable.
type pipeline struct {
	store  store.Store
	engine engine
	log    *slog.Logger
	wake   func() // tells alert delivery that new alert versions are stored

	mu    sync.Mutex
	stale bool // the engine's state may be ahead of the store's
}

// restore loads the durable check state into the engine.
func (p *pipeline) restore(ctx context.Context) error {
	entries, err := p.store.LoadState(ctx, statePrefix)
	if err != nil {
		return fmt.Errorf("load check state: %w", err)
	}
	p.engine.Reset()
	if err := p.engine.Restore(entries); err != nil {
		return fmt.Errorf("restore check state: %w", err)
	}
	p.stale = false
	return nil
}

// Process implements ingest.Processor.
func (p *pipeline) Process(ctx context.Context, events []event.Event) (store.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		if err := p.restore(ctx); err != nil {
			return store.Result{}, err
		}
	}
	res, err := p.store.Apply(ctx, events, p.engine.Process)
	if err != nil {
		// The engine may have advanced past what was stored: rebuild it
		// from the last durable state before the batch is retried.
		p.stale = true
		if rerr := p.restore(ctx); rerr != nil {
			p.log.Warn("check state not restored yet; will retry before the next batch", "err", rerr)
		}
		return res, err
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return res, nil
}
