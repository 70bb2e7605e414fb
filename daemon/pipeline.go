package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// engine is what the pipeline needs of the rules engine.
type engine interface {
	Process(fresh []event.Event) (store.Effects, error)
	Flush() store.Effects
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
	// observe, if set, is told about every stored batch (feed heartbeats).
	observe func(events []event.Event, arrival time.Time)

	// idleRelease: after this long with no new events, waiting events
	// are judged (see run).
	idleRelease time.Duration

	mu         sync.Mutex
	stale      bool      // the engine's state may be ahead of the store's
	lastEvents time.Time // when a batch last brought new events
	released   bool      // waiting events were judged since lastEvents
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
	if err == nil && res.Stored > 0 {
		p.lastEvents, p.released = time.Now(), false
	}
	if err == nil && p.observe != nil && len(events) > 0 {
		p.observe(events, time.Now())
	}
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

// run judges the events still waiting out the lateness bound once the input
// has been quiet for idleRelease, so that the last events before a quiet
// spell raise their alerts now rather than when traffic resumes. The release
// is stored like a batch: alerts and state in one durable unit.
func (p *pipeline) run(ctx context.Context) error {
	if p.idleRelease <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(max(p.idleRelease/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.releaseIfIdle(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("releasing waiting events failed; will retry", "err", err)
			}
		}
	}
}

func (p *pipeline) releaseIfIdle(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released || p.lastEvents.IsZero() || time.Since(p.lastEvents) < p.idleRelease {
		return nil
	}
	if p.stale {
		if err := p.restore(ctx); err != nil {
			return err
		}
	}
	res, err := p.store.Apply(ctx, nil, func([]event.Event) (store.Effects, error) { return p.engine.Flush(), nil })
	if err != nil {
		p.stale = true
		return err
	}
	p.released = true
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return nil
}
