package stream

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// taskPrefix is the key prefix of every task's state: tasks/<topic>/<partition>/
// followed by the engine's own key.
const taskPrefix = "tasks/"

// taskEngine shards check state by input partition, as Kafka Streams shards
// it into tasks: each topic partition has an engine of its own, with its
// own event-time watermark and its own state keys. Since the producer keys
// every event by actor, an actor's events — and so every actor-keyed state —
// live in exactly one partition, and when a rebalance moves the partition
// to another daemon that daemon loads the task's state from the shared
// store and carries on where the last owner stopped.
//
// It implements the pipeline's engine: Process routes each event to its
// partition's engine (route must be set first), Restore rebuilds every task
// found in the entries, and Flush releases only the tasks that were given
// events since the last restore — a task restored only because another
// daemon owns its partition is never written by this one.
type taskEngine struct {
	newEngine func() (engine, error)
	// prefix is the key prefix of the tasks' state; empty: taskPrefix.
	prefix string
	// mu guards tasks against SetRoster from the reference reloader; the
	// pipeline serialises everything else.
	mu    sync.Mutex
	tasks map[string]*task
	route map[event.Key]string // event key → task id, for the batch at hand
}

type task struct {
	id     string // <topic>/<partition>; noPosition for events read from no topic
	eng    engine
	active bool // given events since the last restore
}

func newTaskEngine(newEngine func() (engine, error)) *taskEngine {
	return &taskEngine{newEngine: newEngine, tasks: map[string]*task{}}
}

// noPosition is the task of events that came with no Kafka position.
const noPosition = "_/0"

// taskID names the task of a Kafka position.
func taskID(p store.Position) string { return p.Topic + "/" + strconv.Itoa(p.Partition) }

// setRoute records which task each event of a batch belongs to.
func (t *taskEngine) setRoute(events []event.Event, positions []store.Position) {
	t.route = make(map[event.Key]string, len(events))
	for i := range events {
		id := noPosition
		if positions != nil {
			id = taskID(positions[i])
		}
		t.route[events[i].Key()] = id
	}
}

// sourceOf returns the task of an event of the batch at hand.
func (t *taskEngine) sourceOf(k event.Key) string {
	if id, ok := t.route[k]; ok {
		return id
	}
	return noPosition
}

func (t *taskEngine) task(id string) (*task, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tk := t.tasks[id]; tk != nil {
		return tk, nil
	}
	eng, err := t.newEngine()
	if err != nil {
		return nil, err
	}
	tk := &task{id: id, eng: eng}
	t.tasks[id] = tk
	return tk, nil
}

// SetRoster implements engine: every task judges against r from its next
// batch on. A task engine created later takes the daemon's current roster
// from newEngine.
func (t *taskEngine) SetRoster(r rules.Roster) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tk := range t.tasks {
		tk.eng.SetRoster(r)
	}
}

// frontierEngine is an engine whose evaluation frontier the caller moves
// (rules.Options.ExternalFrontier): the repartition tasks'.
type frontierEngine interface {
	ProcessUntil(fresh []event.Event, frontiers map[string]time.Time) (store.Effects, error)
}

// Process implements engine.
func (t *taskEngine) Process(fresh []event.Event) (store.Effects, error) {
	return t.ProcessUntil(fresh, nil)
}

// ProcessUntil routes fresh to their tasks and hands each task's engine the
// org frontiers frontiers holds for it (a frontierEngine; others ignore
// them). A task named in frontiers runs even when given no events, so that
// its waiting events are judged as the frontier passes them.
func (t *taskEngine) ProcessUntil(fresh []event.Event, frontiers map[string]map[string]time.Time) (store.Effects, error) {
	byTask := map[string][]event.Event{}
	var ids []string
	for i := range fresh {
		id, ok := t.route[fresh[i].Key()]
		if !ok {
			id = noPosition
		}
		if _, ok := byTask[id]; !ok {
			ids = append(ids, id)
		}
		byTask[id] = append(byTask[id], fresh[i])
	}
	for id := range frontiers {
		if _, ok := byTask[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // deterministic order of effects
	var out store.Effects
	for _, id := range ids {
		tk, err := t.task(id)
		if err != nil {
			return store.Effects{}, err
		}
		tk.active = true
		var eff store.Effects
		if fe, ok := tk.eng.(frontierEngine); ok {
			eff, err = fe.ProcessUntil(byTask[id], frontiers[id])
		} else {
			eff, err = tk.eng.Process(byTask[id])
		}
		if err != nil {
			return store.Effects{}, fmt.Errorf("task %s: %w", id, err)
		}
		t.merge(&out, tk, eff)
	}
	return out, nil
}

// progress returns every task's watermarks: task id → org → the newest
// event time its engine has accepted.
func (t *taskEngine) progress() map[string]map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]map[string]time.Time, len(t.tasks))
	for id, tk := range t.tasks {
		if w, ok := tk.eng.(interface{ Watermarks() map[string]time.Time }); ok {
			out[id] = w.Watermarks()
		}
	}
	return out
}

// Flush implements engine, for the active tasks only.
func (t *taskEngine) Flush() store.Effects {
	var out store.Effects
	for _, id := range sortedTaskIDs(t.tasks) {
		if tk := t.tasks[id]; tk.active {
			t.merge(&out, tk, tk.eng.Flush())
		}
	}
	return out
}

func (t *taskEngine) merge(out *store.Effects, tk *task, eff store.Effects) {
	out.Alerts = append(out.Alerts, eff.Alerts...)
	for _, e := range eff.State {
		out.State = append(out.State, store.StateEntry{Key: t.keyPrefix() + tk.id + "/" + e.Key, Value: e.Value})
	}
}

func (t *taskEngine) keyPrefix() string {
	if t.prefix == "" {
		return taskPrefix
	}
	return t.prefix
}

// Reset implements engine: every task is dropped.
func (t *taskEngine) Reset() {
	t.mu.Lock()
	t.tasks = map[string]*task{}
	t.mu.Unlock()
}

// Restore implements engine: entries are the store's entries under
// taskPrefix; each task found gets its own.
func (t *taskEngine) Restore(entries []store.StateEntry) error {
	byTask := map[string][]store.StateEntry{}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Key, t.keyPrefix())
		if !ok {
			return fmt.Errorf("state key %q is not a task's", e.Key)
		}
		// <topic>/<partition>/<engine key>; topic names have no "/".
		topic, rest, ok1 := strings.Cut(rest, "/")
		part, key, ok2 := strings.Cut(rest, "/")
		if !ok1 || !ok2 {
			return fmt.Errorf("state key %q is not tasks/<topic>/<partition>/<key>", e.Key)
		}
		id := topic + "/" + part
		byTask[id] = append(byTask[id], store.StateEntry{Key: key, Value: e.Value})
	}
	for _, id := range sortedTaskIDs(byTask) {
		tk, err := t.task(id)
		if err != nil {
			return err
		}
		if err := tk.eng.Restore(byTask[id]); err != nil {
			return fmt.Errorf("task %s: %w", id, err)
		}
	}
	return nil
}

func sortedTaskIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sharedPrefix is the key prefix of the shared engine's state.
const sharedPrefix = "shared/"

// splitEngine runs every event through its partition's task engine and
// through the shared engine (see keying.go), merging their effects.
type splitEngine struct {
	tasks  *taskEngine
	shared engine // nil: no shared checks
	// frontier, when set, holds the shared engine (a frontierEngine) back
	// to the slowest live input partition, and each org's completeness
	// point is recorded with every batch (frontier.go); feed exports it.
	frontier *inputFrontier
	feed     *feedMetrics
	now      time.Time               // the batch at hand's wall clock (setBatch)
	fetched  []ingest.PartitionFetch // and its partitions' fetch positions
	complete map[string]time.Time    // completeness last recorded, per org
	// alone reports whether this daemon is the only member of its consumer
	// group; nil: it is. With several, each sees only its own partitions,
	// and a completeness point computed from them could overstate the
	// feed's: it is then not recorded (see docs/event-time.md).
	alone func() bool
	// forward, if set, adds to a batch's effects the outbox rows that
	// forward its fresh events, and each input partition's progress, to
	// the repartition topics (repartition.go); sourceOf names the input
	// partition (task) of an event.
	forward func(fresh []event.Event, sourceOf func(event.Key) string) ([]store.StateEntry, error)
}

// statePrefixes are the store key prefixes of everything splitEngine saves.
var statePrefixes = []string{taskPrefix, sharedPrefix, store.CompletenessPrefix}

// setBatch tells the engine about the batch at hand, read at wall clock
// now: which task each of its events belongs to, and where its partitions
// stood when fetched.
func (s *splitEngine) setBatch(b *ingest.Batch, now time.Time) {
	positions := b.Positions
	if len(positions) != len(b.Events) {
		positions = nil // not this batch's: better none than wrong ones
	}
	s.tasks.setRoute(b.Events, positions)
	s.now, s.fetched = now, b.Fetched
	if s.frontier != nil {
		s.frontier.observe(b.Fetched, now)
	}
}

// Process implements engine.
func (s *splitEngine) Process(fresh []event.Event) (store.Effects, error) {
	out, err := s.tasks.Process(fresh)
	if err != nil {
		return out, err
	}
	if s.forward != nil {
		rows, err := s.forward(fresh, s.tasks.sourceOf)
		if err != nil {
			return store.Effects{}, fmt.Errorf("repartition outbox: %w", err)
		}
		out.State = append(out.State, rows...)
	}
	var fronts map[string]time.Time
	if s.frontier != nil {
		progress := s.tasks.progress()
		res := s.frontier.compute(progress, s.now)
		fronts = res.orgs
		out.State = s.recordComplete(out.State, fronts)
		s.feed.set(res, s.complete)
		if out.State, err = s.recordProgress(out.State, progress); err != nil {
			return store.Effects{}, err
		}
	}
	if s.shared == nil {
		return out, nil
	}
	var eff store.Effects
	if fe, ok := s.shared.(frontierEngine); ok && s.frontier != nil {
		eff, err = fe.ProcessUntil(fresh, fronts)
	} else {
		eff, err = s.shared.Process(fresh)
	}
	if err != nil {
		return store.Effects{}, fmt.Errorf("shared checks: %w", err)
	}
	mergeShared(&out, eff)
	return out, nil
}

// recordProgress appends the progress records of the batch's partitions
// (frontier.go: completeness with several daemons).
func (s *splitEngine) recordProgress(state []store.StateEntry, progress map[string]map[string]time.Time) ([]store.StateEntry, error) {
	for _, f := range s.fetched {
		id := taskIDOf(f.Topic, f.Partition)
		b, err := json.Marshal(partitionProgress{Orgs: progress[id], CaughtUp: f.CaughtUp(), At: s.now.UTC()})
		if err != nil {
			return state, fmt.Errorf("encode partition progress: %w", err)
		}
		state = append(state, store.StateEntry{Key: progressPrefix + id, Value: b})
	}
	return state, nil
}

// recordComplete appends the completeness entries of the orgs whose point
// moved on; it never moves back (a partition back from idleness, or a new
// one, can lower the frontier, not what was complete).
func (s *splitEngine) recordComplete(state []store.StateEntry, points map[string]time.Time) []store.StateEntry {
	if s.alone != nil && !s.alone() {
		return state
	}
	for _, org := range sortedTaskIDs(points) {
		t := points[org]
		if !t.After(s.complete[org]) {
			continue
		}
		if s.complete == nil {
			s.complete = map[string]time.Time{}
		}
		s.complete[org] = t
		state = append(state, store.CompletenessEntry(org, t))
	}
	return state
}

// Flush implements engine: every waiting event is judged, so each org is
// complete up to the newest event any partition brought.
func (s *splitEngine) Flush() store.Effects {
	out := s.tasks.Flush()
	if s.frontier != nil {
		all := map[string]time.Time{}
		for _, prog := range s.tasks.progress() {
			for org, t := range prog {
				if t.After(all[org]) {
					all[org] = t
				}
			}
		}
		out.State = s.recordComplete(out.State, all)
		s.feed.set(frontierResult{}, s.complete)
	}
	if s.shared != nil {
		mergeShared(&out, s.shared.Flush())
	}
	return out
}

func mergeShared(out *store.Effects, eff store.Effects) {
	out.Alerts = append(out.Alerts, eff.Alerts...)
	for _, e := range eff.State {
		out.State = append(out.State, store.StateEntry{Key: sharedPrefix + e.Key, Value: e.Value})
	}
}

// SetRoster implements engine.
func (s *splitEngine) SetRoster(r rules.Roster) {
	s.tasks.SetRoster(r)
	if s.shared != nil {
		s.shared.SetRoster(r)
	}
}

// Reset implements engine.
func (s *splitEngine) Reset() {
	s.complete = nil // recorded again as it moves: nothing durable is lost
	s.tasks.Reset()
	if s.shared != nil {
		s.shared.Reset()
	}
}

// Restore implements engine: entries are the store's entries under
// statePrefixes.
func (s *splitEngine) Restore(entries []store.StateEntry) error {
	var tasks, shared []store.StateEntry
	for _, e := range entries {
		if org, ok := strings.CutPrefix(e.Key, store.CompletenessPrefix); ok {
			t, err := time.Parse(time.RFC3339Nano, string(e.Value))
			if err != nil {
				return fmt.Errorf("completeness of %s: %w", org, err)
			}
			if s.complete == nil {
				s.complete = map[string]time.Time{}
			}
			s.complete[org] = t
			continue
		}
		if k, ok := strings.CutPrefix(e.Key, sharedPrefix); ok {
			shared = append(shared, store.StateEntry{Key: k, Value: e.Value})
		} else {
			tasks = append(tasks, e)
		}
	}
	if err := s.tasks.Restore(tasks); err != nil {
		return err
	}
	if s.shared != nil {
		if err := s.shared.Restore(shared); err != nil {
			return fmt.Errorf("shared checks: %w", err)
		}
	}
	return nil
}
