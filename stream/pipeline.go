package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// engine is what the pipeline needs of the rules engine.
type engine interface {
	Process(fresh []event.Event) (store.Effects, error)
	Flush() store.Effects
	Restore(entries []store.StateEntry) error
	Reset()
	SetRoster(r rules.Roster)
}

// pipeline is the ingest.Processor: it stores a batch and runs the checks
// over its new events in one durable unit, and keeps the engine's in-memory
// state equal to what is durable.
//
// Speculation. Storing a batch (SQLite's inserts and fsync) and running the
// checks over it each take about half of a batch's time, one core each. So,
// when the store can say cheaply which events it already holds
// (store.KeyLookup), Prepare runs the checks on batch n+1 while batch n is
// being written, and ProcessBatch writes n+1 with the effects computed
// ahead. Exactly-once holds because the write checks, inside its
// transaction, that the events it actually inserted are exactly the ones the
// checks saw; if not (or if anything fails), the transaction is rolled back,
// the engine is rebuilt from the durable state, and batches are evaluated
// again one at a time, in order, until speculation can resume. The engine
// sees every batch once and in batch order: Prepare only speculates on the
// batch right after the last one the engine has seen.
type pipeline struct {
	store  Store
	engine *splitEngine
	log    *slog.Logger
	wake   func() // tells alert delivery that new alert versions are stored
	// observe, if set, is told about every stored batch (feed heartbeats).
	observe func(events []event.Event, arrival time.Time)
	arrival *arrivalMetric
	// rebalanced, if set, is told when the consumer group has moved
	// partitions (the repartition forwarder).
	rebalanced func()
	// conflictAlert builds the alert for a conflicting duplicate
	// (rules.ConflictAlert with the org's DPIA); nil raises none.
	conflictAlert func(store.Conflict) alert.Alert
	// alertCounter counts the conflict alerts once stored; nil: not counted.
	alertCounter *rules.AlertCounter

	// idleRelease: after this long with no new events, waiting events
	// are judged (see run).
	idleRelease time.Duration

	engMu sync.Mutex // serialises every use of engine

	// Batches written with effects computed ahead, and those evaluated in
	// their write (no speculation, or it was void).
	speculated, inWrite atomic.Int64

	mu         sync.Mutex
	stale      bool                   // the engine's state may differ from the store's: restore before use
	gen        uint64                 // bumped whenever speculative results become invalid
	next       uint64                 // sequence number of the next batch the engine must see
	ahead      map[uint64][]event.Key // batches the engine has seen but that are not written yet: their keys, invisible to lookups
	prepared   map[uint64]*prepared   // what Prepare computed for a batch not written yet, by Batch.Seq
	lastEvents time.Time              // when a batch last brought new events
	released   bool                   // waiting events were judged since lastEvents
}

// prepared is the checks' result for a batch, computed ahead.
type prepared struct {
	gen     uint64
	fresh   []event.Key
	effects store.Effects
}

var errSpeculation = errors.New("the batch's new events differ from those the checks ran on ahead")

// restore loads the durable check state into the engine; engMu held.
func (p *pipeline) restore(ctx context.Context) error {
	var entries []store.StateEntry
	for _, prefix := range statePrefixes {
		es, err := p.store.LoadState(ctx, prefix)
		if err != nil {
			return fmt.Errorf("load check state: %w", err)
		}
		entries = append(entries, es...)
	}
	p.engine.Reset()
	if err := p.engine.Restore(entries); err != nil {
		return fmt.Errorf("restore check state: %w", err)
	}
	p.mu.Lock()
	p.stale = false
	p.mu.Unlock()
	return nil
}

// invalidate marks every speculative result void after a failed write of
// batch seq: the engine is rebuilt before its next use and batch seq is
// evaluated again.
func (p *pipeline) invalidate(seq uint64) {
	p.mu.Lock()
	p.gen++
	clear(p.prepared) // all of an older generation: void
	p.stale = true
	p.next = seq
	p.mu.Unlock()
}

// Rebalanced tells the pipeline that the consumer group moved partitions
// before batch seq (ingest.Rebalancer): tasks this daemon now owns may have
// been advanced by another, so the engine is rebuilt from the store.
func (p *pipeline) Rebalanced(seq uint64) {
	p.invalidate(seq)
	if f := p.engine.frontier; f != nil {
		f.rebalanced()
	}
	if p.rebalanced != nil {
		p.rebalanced()
	}
}

// Prepare runs the checks on a batch ahead of its write (ingest.Preparer)
// and keeps the result for ProcessBatch. It keeps none when it cannot
// speculate; the batch is then evaluated inside its write.
func (p *pipeline) Prepare(ctx context.Context, b *ingest.Batch) {
	if pr := p.prepare(ctx, b); pr != nil {
		p.mu.Lock()
		if p.prepared == nil {
			p.prepared = map[uint64]*prepared{}
		}
		p.prepared[b.Seq] = pr
		p.mu.Unlock()
	}
}

func (p *pipeline) prepare(ctx context.Context, b *ingest.Batch) *prepared {
	seq, events := b.Seq, b.Events
	lookup, ok := p.store.(store.KeyLookup)
	if !ok {
		return nil
	}
	stored, err := lookup.Stored(ctx, events)
	if err != nil {
		return nil
	}
	p.engMu.Lock()
	defer p.engMu.Unlock()
	p.mu.Lock()
	if p.stale || seq != p.next {
		p.mu.Unlock()
		return nil
	}
	gen := p.gen
	// Batches seen ahead but not written yet are invisible to lookups.
	seen := make(map[event.Key]bool, len(events))
	for _, keys := range p.ahead {
		for _, k := range keys {
			seen[k] = true
		}
	}
	all := make([]event.Key, len(events))
	for i := range events {
		all[i] = events[i].Key()
	}
	if p.ahead == nil {
		p.ahead = map[uint64][]event.Key{}
	}
	p.ahead[seq] = all
	p.next++
	p.mu.Unlock()

	fresh := make([]event.Event, 0, len(events))
	keys := make([]event.Key, 0, len(events))
	for i := range events {
		k := all[i]
		if stored[i] || seen[k] {
			continue
		}
		seen[k] = true
		fresh = append(fresh, events[i])
		keys = append(keys, k)
	}
	p.engine.setBatch(b, time.Now())
	eff, err := p.engine.Process(fresh)
	if err != nil {
		p.invalidate(seq)
		return nil
	}
	return &prepared{gen: gen, fresh: keys, effects: eff}
}

// Process implements ingest.Processor for a batch that comes with nothing
// but its events and their positions: it is evaluated inside its write.
func (p *pipeline) Process(ctx context.Context, events []event.Event, positions []store.Position) (store.Result, error) {
	p.mu.Lock()
	seq := p.next
	p.mu.Unlock()
	return p.ProcessBatch(ctx, &ingest.Batch{Seq: seq, Events: events, Positions: positions})
}

// ProcessBatch writes batch b with what Prepare computed for it, or
// evaluates it inside the write when that is void or missing
// (ingest.BatchProcessor).
func (p *pipeline) ProcessBatch(ctx context.Context, b *ingest.Batch) (_ store.Result, rerr error) {
	seq, events := b.Seq, b.Events
	p.mu.Lock()
	pr := p.prepared[seq]
	fast := pr != nil && pr.gen == p.gen && !p.stale
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.ahead, seq) // written, or to be evaluated again
		if rerr == nil {
			// A retry of a failed batch is judged against what was
			// prepared, as the first try was (invalidate voids it when
			// the failure touched the engine).
			delete(p.prepared, seq)
		}
		p.mu.Unlock()
	}()

	var res store.Result
	var err error
	if fast {
		p.speculated.Add(1)
		res, err = p.store.Apply(ctx, events, b.Positions, func(fresh []event.Event) (store.Effects, error) {
			if len(fresh) != len(pr.fresh) {
				return store.Effects{}, errSpeculation
			}
			for i := range fresh {
				if fresh[i].Key() != pr.fresh[i] {
					return store.Effects{}, errSpeculation
				}
			}
			return pr.effects, nil
		})
		if err != nil {
			p.invalidate(seq)
		}
	} else {
		p.inWrite.Add(1)
		res, err = p.evaluateInWrite(ctx, b)
	}
	if err != nil {
		return res, err
	}
	if res.Conflicts, err = p.unrecorded(ctx, res.Conflicts); err != nil {
		return res, err
	}
	p.mu.Lock()
	if res.Stored > 0 {
		p.lastEvents, p.released = time.Now(), false
	}
	p.mu.Unlock()
	if len(events) > 0 {
		now := time.Now()
		p.arrival.stored(events, now)
		if p.observe != nil {
			p.observe(events, now)
		}
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return res, nil
}

// conflictPrefix keys the check state that records each conflicting
// duplicate once dead-lettered and alerted: org, system, id and the
// digest of both versions (rules.ConflictDigest).
const conflictPrefix = store.ConflictStatePrefix

func conflictKey(c store.Conflict) string {
	return conflictPrefix + c.Event.Org + "\x00" + c.Event.System + "\x00" + c.Event.ID + "\x00" + rules.ConflictDigest(c)
}

// unrecorded leaves out the conflicts RecordConflicts has recorded: a batch
// redelivered after a crash between its write and its commit reports them
// again, and they must not be dead-lettered or alerted twice.
func (p *pipeline) unrecorded(ctx context.Context, conflicts []store.Conflict) ([]store.Conflict, error) {
	var out []store.Conflict
	for _, c := range conflicts {
		st, err := p.store.LoadState(ctx, conflictKey(c))
		if err != nil {
			return nil, fmt.Errorf("look up recorded conflicts: %w", err)
		}
		if len(st) == 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// RecordConflicts stores, once the consumer has dead-lettered them, the
// alert of each conflicting duplicate with the record that it was handled,
// in one durable unit (ingest.ConflictRecorder). A crash before this
// dead-letters them again on redelivery (nothing lost); after it, nothing
// is repeated.
func (p *pipeline) RecordConflicts(ctx context.Context, conflicts []store.Conflict) error {
	var eff store.Effects
	for _, c := range conflicts {
		if p.conflictAlert != nil {
			eff.Alerts = append(eff.Alerts, p.conflictAlert(c))
		}
		eff.State = append(eff.State, store.StateEntry{Key: conflictKey(c), Value: []byte(strings.Join(c.Fields, ","))})
	}
	res, err := p.store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return eff, nil })
	if err != nil {
		return fmt.Errorf("record conflicting duplicates: %w", err)
	}
	if p.alertCounter != nil {
		for i := range eff.Alerts {
			p.alertCounter.Count(&eff.Alerts[i])
		}
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return nil
}

// evaluateInWrite is the plain path: the engine runs inside the write.
func (p *pipeline) evaluateInWrite(ctx context.Context, b *ingest.Batch) (store.Result, error) {
	seq, events := b.Seq, b.Events
	p.engMu.Lock()
	defer p.engMu.Unlock()
	p.mu.Lock()
	stale := p.stale
	p.mu.Unlock()
	if stale {
		if err := p.restore(ctx); err != nil {
			return store.Result{}, err
		}
	}
	p.engine.setBatch(b, time.Now())
	res, err := p.store.Apply(ctx, events, b.Positions, p.engine.Process)
	if err != nil {
		// The engine may have advanced past what was stored: rebuild it
		// from the last durable state before the batch is retried.
		p.invalidate(seq)
		if rerr := p.restore(ctx); rerr != nil {
			p.log.Warn("check state not restored yet; will retry before the next batch", "err", rerr)
		}
		return res, err
	}
	p.mu.Lock()
	p.next = seq + 1
	p.mu.Unlock()
	return res, nil
}

// run judges the events still waiting out the lateness bound once the input
// has been quiet for idleRelease, so that the last events before a quiet
// spell raise their alerts now rather than when traffic resumes. The release
// is stored like a batch: alerts and state in one durable unit.
func (p *pipeline) run(ctx context.Context) error {
	everyQuarterOf(ctx, p.idleRelease, func() {
		if err := p.releaseIfIdle(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("releasing waiting events failed; will retry", "err", err)
		}
	})
	return nil
}

// everyQuarterOf calls f every quarter of idleRelease (at least every 10 ms)
// until ctx ends; with idle release off it only waits for ctx.
func everyQuarterOf(ctx context.Context, idleRelease time.Duration, f func()) {
	if idleRelease <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(max(idleRelease/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func (p *pipeline) releaseIfIdle(ctx context.Context) error {
	p.engMu.Lock()
	defer p.engMu.Unlock()
	p.mu.Lock()
	// Never while a batch the engine has seen is unwritten: the release
	// would store effects of events that are not stored.
	idle := !p.released && !p.lastEvents.IsZero() && time.Since(p.lastEvents) >= p.idleRelease && len(p.ahead) == 0
	stale, seq := p.stale, p.next
	p.mu.Unlock()
	if !idle {
		return nil
	}
	if stale {
		if err := p.restore(ctx); err != nil {
			return err
		}
	}
	res, err := p.store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return p.engine.Flush(), nil })
	if err != nil {
		p.invalidate(seq)
		return err
	}
	p.mu.Lock()
	p.released = true
	// A batch prepared ahead saw the engine before this release: void it.
	p.gen++
	clear(p.prepared)
	p.mu.Unlock()
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return nil
}
