package stream

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// repartProcessor is the ingest.Processor of a repartition topic: it runs
// its checks in per-partition tasks over events the main pipeline already
// stored, so it writes only alerts and state. Each task's engine judges in
// event time up to the frontier its sources' progress marks allow (see the
// top of repartition.go).
type repartProcessor struct {
	store       Store
	tasks       *taskEngine // state under <stream>/tasks/
	dedupPrefix string      // <stream>/dedup/<task id>
	// recentPrefix holds the recent event keys: <stream>/recent/<task id>/<seq>.
	recentPrefix string
	log          *slog.Logger
	wake         func()
	idleRelease  time.Duration
	// lateness is how far out of order a source's events may be: the
	// frontier trails the slowest source's progress by it.
	lateness time.Duration
	// expected are the input partitions every task waits for, even before
	// their first mark; empty: those that sent one.
	expected []string
	now      func() time.Time

	mu         sync.Mutex
	stale      bool
	dedup      map[string]*dedupState          // task id → its dedup state and sources' progress, as durable
	recent     map[string]*recentKeys          // task id → its last batches' event keys, as durable
	active     map[string]bool                 // tasks given events or marks since the last restore
	progressed map[string]map[string]time.Time // task → source → wall time its progress last moved
	sent       map[string]map[string]time.Time // task → the org frontiers its engine was last given
	restored   time.Time                       // wall time of the last restore
	lastEvents time.Time
	released   bool
}

func newRepartProcessor(st Store, stream string, newEngine func() (engine, error), log *slog.Logger, wake func(), idle time.Duration) *repartProcessor {
	t := newTaskEngine(newEngine)
	t.prefix = stream + "/tasks/"
	return &repartProcessor{store: st, tasks: t, dedupPrefix: stream + "/dedup/", recentPrefix: stream + "/recent/", log: log,
		wake: wake, idleRelease: idle, lateness: rules.DefaultLateness, now: time.Now, stale: true}
}

// Rebalanced implements ingest.Rebalancer: tasks may have moved.
func (p *repartProcessor) Rebalanced(uint64) {
	p.mu.Lock()
	p.stale = true
	p.mu.Unlock()
}

// frontiers returns task id's org frontiers: per org, the progress of its
// slowest live source less the lateness bound. A source is live unless it
// has shown no progress for idle_release; a live source that has never
// reported holds every org back. nil: no frontier can be set yet.
func (p *repartProcessor) frontiers(ds *dedupState, now time.Time, lastProgress func(src string) time.Time) map[string]time.Time {
	sources := slices.Clone(p.expected)
	for src := range ds.Sources {
		if !slices.Contains(sources, src) {
			sources = append(sources, src)
		}
	}
	var live []map[string]time.Time
	for _, src := range sources {
		last := p.restored
		if t := lastProgress(src); t.After(last) {
			last = t
		}
		if p.idleRelease > 0 && now.Sub(last) > p.idleRelease {
			continue // idle: it cannot hold the others back
		}
		prog := ds.Sources[src]
		if len(prog) == 0 {
			return nil // not heard from yet
		}
		live = append(live, prog)
	}
	if len(live) == 0 {
		return nil
	}
	return slowestLive(live, p.lateness)
}

// Process implements ingest.Processor for events that come with nothing
// but their positions.
func (p *repartProcessor) Process(ctx context.Context, events []event.Event, positions []store.Position) (store.Result, error) {
	return p.ProcessBatch(ctx, &ingest.Batch{Events: events, Positions: positions})
}

// ProcessBatch implements ingest.BatchProcessor: the batch's events, and
// the progress its marks carry.
func (p *repartProcessor) ProcessBatch(ctx context.Context, b *ingest.Batch) (store.Result, error) {
	events := b.Events
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		if err := p.restore(ctx); err != nil {
			return store.Result{}, err
		}
	}
	now := p.now()
	positions := b.Positions
	if len(positions) != len(events) {
		positions = nil // not this batch's: better none than wrong ones
	}
	touched := map[string]*dedupState{}
	batchKeys := map[string][]uint64{}
	seen := map[string]map[uint64]bool{} // this batch's, per task
	state := func(id string) *dedupState {
		ds := touched[id]
		if ds == nil {
			ds = &dedupState{Offset: -1}
			if old := p.dedup[id]; old != nil {
				ds = old.clone()
			}
			touched[id] = ds
			seen[id] = map[uint64]bool{}
		}
		return ds
	}
	var keep []event.Event
	var keepPos []store.Position
	for i := range events {
		id, off := noPosition, int64(-1)
		if positions != nil {
			id, off = taskID(positions[i]), positions[i].Offset
		}
		ds := state(id)
		if off >= 0 && off <= ds.Offset {
			continue // redelivered
		}
		ds.Offset = max(ds.Offset, off)
		h := keyHash(events[i].Key())
		if seen[id][h] || (p.recent[id] != nil && p.recent[id].has(h)) {
			continue // re-sent from an outbox
		}
		seen[id][h] = true
		batchKeys[id] = append(batchKeys[id], h)
		keep = append(keep, events[i])
		if positions != nil {
			keepPos = append(keepPos, positions[i])
		}
	}
	// Marks after the batch's events: a mark only ever follows the events
	// it reports on, and taking progress as the batch's end holds events
	// back no less than taking it where the mark stood. A redelivered mark
	// is applied again, harmlessly: progress only grows.
	progressed := map[string]map[string]bool{}
	for _, m := range b.Marks {
		id := taskID(store.Position{Topic: m.Topic, Partition: m.Partition})
		ds := state(id)
		ds.Offset = max(ds.Offset, m.Offset)
		var mark progressMark
		if err := json.Unmarshal(m.Value, &mark); err != nil {
			p.log.Warn("ignoring an unreadable repartition progress mark", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		for _, sp := range mark.Sources {
			if ds.Sources == nil {
				ds.Sources = map[string]map[string]time.Time{}
			}
			prog := ds.Sources[sp.Source]
			if prog == nil {
				prog = map[string]time.Time{}
				ds.Sources[sp.Source] = prog
			}
			for org, t := range sp.Max {
				if t.After(prog[org]) {
					prog[org] = t.UTC()
					if progressed[id] == nil {
						progressed[id] = map[string]bool{}
					}
					progressed[id][sp.Source] = true
				}
			}
		}
	}
	if len(touched) == 0 {
		return store.Result{}, nil
	}
	var dedupRows []store.StateEntry
	fronts := map[string]map[string]time.Time{}
	progressedAt := func(id, src string) time.Time {
		if progressed[id][src] {
			return now
		}
		return p.progressed[id][src]
	}
	for _, id := range sortedTaskIDs(touched) {
		ds := touched[id]
		if hs := batchKeys[id]; len(hs) > 0 {
			ds.Seq++
			dedupRows = append(dedupRows, store.StateEntry{Key: p.recentKey(id, ds.Seq), Value: encodeHashes(hs)})
			if ds.Seq > recentBatches {
				dedupRows = append(dedupRows, store.StateEntry{Key: p.recentKey(id, ds.Seq-recentBatches)})
			}
		}
		v, err := json.Marshal(ds)
		if err != nil {
			return store.Result{}, err
		}
		dedupRows = append(dedupRows, store.StateEntry{Key: p.dedupPrefix + id, Value: v})
		// The frontier as it will stand once this batch is durable.
		if f := p.frontiers(ds, now, func(src string) time.Time { return progressedAt(id, src) }); f != nil {
			fronts[id] = f
		}
	}
	if positions == nil {
		keepPos = nil
	}
	p.tasks.setRoute(keep, keepPos)
	res, err := p.store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) {
		eff, err := p.tasks.ProcessUntil(keep, fronts)
		if err != nil {
			return store.Effects{}, err
		}
		eff.State = append(eff.State, dedupRows...)
		return eff, nil
	})
	if err != nil {
		p.stale = true // the tasks may have advanced past what is durable
		return res, err
	}
	for id, ds := range touched {
		p.dedup[id] = ds
		if hs := batchKeys[id]; len(hs) > 0 {
			if p.recent[id] == nil {
				p.recent[id] = newRecentKeys()
			}
			p.recent[id].add(ds.Seq, hs)
		}
		p.active[id] = true
		if p.progressed[id] == nil {
			p.progressed[id] = map[string]time.Time{}
		}
		for src := range progressed[id] {
			p.progressed[id][src] = now
		}
		if f := fronts[id]; f != nil {
			p.sent[id] = f
		}
	}
	if len(keep) > 0 {
		p.lastEvents, p.released = now, false
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return res, nil
}

// SetRoster passes the reference data on to every task.
func (p *repartProcessor) SetRoster(r rules.Roster) { p.tasks.SetRoster(r) }

// run, every quarter of idle_release, moves the frontier of tasks whose
// slow sources have gone idle, and judges every waiting event once the
// whole stream has been idle (see pipeline.run).
func (p *repartProcessor) run(ctx context.Context) error {
	everyQuarterOf(ctx, p.idleRelease, func() {
		if err := p.advanceIdle(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("advancing repartitioned tasks past idle sources failed; will retry", "err", err)
		}
		if err := p.releaseIfIdle(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("releasing waiting repartitioned events failed; will retry", "err", err)
		}
	})
	return nil
}

// advanceIdle moves the frontier of this daemon's tasks where a source has
// gone idle since their last batch.
func (p *repartProcessor) advanceIdle(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		return nil // restored with the next batch
	}
	now := p.now()
	fronts := map[string]map[string]time.Time{}
	for id := range p.active {
		ds := p.dedup[id]
		if ds == nil {
			continue
		}
		f := p.frontiers(ds, now, func(src string) time.Time { return p.progressed[id][src] })
		for org, t := range f {
			if t.After(p.sent[id][org]) {
				fronts[id] = f
				break
			}
		}
	}
	if len(fronts) == 0 {
		return nil
	}
	p.tasks.setRoute(nil, nil)
	res, err := p.store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return p.tasks.ProcessUntil(nil, fronts) })
	if err != nil {
		p.stale = true
		return err
	}
	for id, f := range fronts {
		p.sent[id] = f
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return nil
}

func (p *repartProcessor) releaseIfIdle(ctx context.Context) error {
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
	res, err := p.store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return p.tasks.Flush(), nil })
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
