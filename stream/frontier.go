package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/store"
)

// The input frontier. The per-partition tasks judge an actor's events in
// the order of the actor's partition. The shared engine (keying.go) sees
// the events of every partition this daemon consumes, and partitions are
// consumed at their own pace: in a catch-up after downtime, in a first
// deployment that reads history, or whenever one producer or broker lags,
// one partition may be hours of event time behind another. Judging in the
// order events arrive would then raise alerts the data contradicts (a
// device "handed over" whose holder logged out in the slower partition).
// So the shared engine judges, per org, only up to the slowest live input
// partition's progress less the lateness bound, as Flink and Dataflow
// judge behind a watermark: its verdicts are those of the replay whatever
// the skew, and that same point is the org's completeness, shown wherever
// people judge.
//
// A partition's progress in an org is the newest event time of the org its
// task has accepted (durable task state, so restarts resume it exactly);
// one that has carried none of the org's events stands in with its
// progress in any org. A partition is idle — left out, so that it cannot
// hold the others back — once it has been caught up with its high
// watermark and has brought nothing for idle_release (wall clock); a
// partition with a backlog is never idle, however long it takes to reach.
// A partition never heard from since the last rebalance or restore holds
// every org back until it is, or until idle_release has passed since the
// first batch: an empty partition, or one another daemon of the group
// consumes.

// inputFrontier tracks the input partitions' liveness and computes the
// frontiers.
type inputFrontier struct {
	lateness, idleRelease time.Duration
	// partitions lists the input topics' partitions (the consumer's);
	// nil: those heard from.
	partitions func() ([]ingest.TopicPartition, bool)

	log *slog.Logger

	mu     sync.Mutex
	since  time.Time                 // the first batch since the last reset
	seen   map[string]fetchState     // task id → its last fetch
	states map[string]partitionState // task id → as last computed, to log changes
}

// fetchState is where a partition stood at its last message.
type fetchState struct {
	caughtUp bool
	at       time.Time // wall clock, when its batch was processed
}

func newInputFrontier(lateness, idleRelease time.Duration, log *slog.Logger) *inputFrontier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &inputFrontier{lateness: lateness, idleRelease: idleRelease, log: log,
		seen: map[string]fetchState{}, states: map[string]partitionState{}}
}

// observe records a batch's fetch positions at now.
func (f *inputFrontier) observe(fetched []ingest.PartitionFetch, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		f.since = now
	}
	for _, p := range fetched {
		f.seen[taskIDOf(p.Topic, p.Partition)] = fetchState{caughtUp: p.CaughtUp(), at: now}
	}
}

// rebalanced forgets which partitions were heard from: the group may have
// given them to another daemon.
func (f *inputFrontier) rebalanced() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since = time.Time{}
	clear(f.seen)
}

// partitionState is how a partition stands for the frontier.
type partitionState int

const (
	partitionLive partitionState = iota
	partitionIdle
	partitionWaiting // live, but not heard from: holds every org back
)

func (s partitionState) String() string {
	switch s {
	case partitionIdle:
		return "idle"
	case partitionWaiting:
		return "waiting"
	}
	return "live"
}

// frontierResult is the outcome of a frontier computation.
type frontierResult struct {
	// orgs is each org's frontier; nil: none can be set yet.
	orgs map[string]time.Time
	// states counts the partitions by state, for the metrics.
	states map[partitionState]int
}

// compute returns each org's frontier given every partition's progress
// (task id → org → newest event time accepted).
func (f *inputFrontier) compute(progress map[string]map[string]time.Time, now time.Time) frontierResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := map[string]bool{}
	if f.partitions != nil {
		if ps, ok := f.partitions(); ok {
			for _, p := range ps {
				ids[taskIDOf(p.Topic, p.Partition)] = true
			}
		}
	}
	for id := range progress {
		ids[id] = true
	}
	for id := range f.seen {
		ids[id] = true
	}
	res := frontierResult{states: map[partitionState]int{}}
	var live []map[string]time.Time
	waiting := false
	for _, id := range sortedTaskIDs(ids) {
		st, heard := f.seen[id]
		prog := progress[id]
		state := partitionLive
		switch {
		case heard && st.caughtUp && now.Sub(st.at) >= f.idleRelease,
			!heard && !f.since.IsZero() && now.Sub(f.since) >= f.idleRelease:
			state = partitionIdle
		case len(prog) == 0:
			// Live, and nothing known of how far it has got.
			state = partitionWaiting
		}
		if old, ok := f.states[id]; !ok || old != state {
			f.states[id] = state
			f.log.Info("input partition", "partition", id, "state", state.String(), "heard_from", heard)
		}
		res.states[state]++
		switch state {
		case partitionWaiting:
			waiting = true
		case partitionLive:
			live = append(live, prog)
		}
	}
	if waiting {
		return res
	}
	if len(live) == 0 {
		// Every partition idle: everything received can be judged.
		res.orgs = map[string]time.Time{}
		for _, prog := range progress {
			for org, t := range prog {
				if t.After(res.orgs[org]) {
					res.orgs[org] = t
				}
			}
		}
		return res
	}
	res.orgs = slowestLive(live, f.lateness)
	return res
}

// slowestLive returns, per org any of live has carried, the progress of the
// slowest of live less lateness. A partition (or repartition source) that
// has carried none of an org's events stands in with its progress in any
// org: it has got that far, and the org's next event there is newer.
func slowestLive(live []map[string]time.Time, lateness time.Duration) map[string]time.Time {
	orgs := map[string]bool{}
	for _, prog := range live {
		for org := range prog {
			orgs[org] = true
		}
	}
	out := make(map[string]time.Time, len(orgs))
	for org := range orgs {
		var fr time.Time
		for i, prog := range live {
			t, ok := prog[org]
			if !ok {
				for _, v := range prog {
					if v.After(t) {
						t = v
					}
				}
			}
			if i == 0 || t.Before(fr) {
				fr = t
			}
		}
		out[org] = fr.Add(-lateness)
	}
	return out
}

func taskIDOf(topic string, partition int) string {
	return taskID(store.Position{Topic: topic, Partition: partition})
}

// feedMetrics are the input frontier's metrics.
type feedMetrics struct {
	complete   *prometheus.GaugeVec
	partitions *prometheus.GaugeVec
}

func newFeedMetrics(reg prometheus.Registerer, orgs []string) *feedMetrics {
	m := &feedMetrics{
		complete: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_feed_complete_until_timestamp_seconds",
			Help: "Each org's completeness point in event time: every event of the org up to it has been stored and judged (later ones arriving after it are late). 0 until the feed has completed anything.",
		}, []string{"org"}),
		partitions: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_feed_partitions",
			Help: "Input partitions by how they stand for the completeness point: live (holding it), idle (caught up and quiet for idle_release, left out), waiting (live but not heard from yet: holding every org back).",
		}, []string{"state"}),
	}
	for _, org := range orgs {
		m.complete.WithLabelValues(org)
	}
	for _, s := range []string{"live", "idle", "waiting"} {
		m.partitions.WithLabelValues(s)
	}
	return m
}

func (m *feedMetrics) set(res frontierResult, complete map[string]time.Time) {
	if m == nil {
		return
	}
	for org, t := range complete {
		m.complete.WithLabelValues(org).Set(float64(t.UnixNano()) / 1e9)
	}
	if res.states == nil {
		return
	}
	m.partitions.WithLabelValues("live").Set(float64(res.states[partitionLive]))
	m.partitions.WithLabelValues("idle").Set(float64(res.states[partitionIdle]))
	m.partitions.WithLabelValues("waiting").Set(float64(res.states[partitionWaiting]))
}

// Completeness with several daemons. Each daemon sees only the partitions
// the group gave it, so the point one computes from them could overstate
// the feed's. So every batch also records, per partition it carried, how
// far the partition had got (progressPrefix), and while the group has more
// than one member each daemon combines every partition's record, whoever
// wrote it, by the same rule as the input frontier: the slowest partition
// that is not idle, less the lateness bound.

// progressPrefix is the key prefix of the partitions' progress records:
// progress/<topic>/<partition>.
const progressPrefix = "progress/"

// partitionProgress is one partition's progress record.
type partitionProgress struct {
	Orgs     map[string]time.Time `json:"orgs"`
	CaughtUp bool                 `json:"caught_up,omitempty"`
	At       time.Time            `json:"at"` // wall clock of the batch that wrote it
}

// groupCompleteness combines the partitions' progress records into each
// org's completeness point; nil when no record has any progress yet.
func groupCompleteness(records []partitionProgress, now time.Time, idleRelease, lateness time.Duration) map[string]time.Time {
	var live, all []map[string]time.Time
	for _, r := range records {
		if len(r.Orgs) == 0 {
			continue
		}
		all = append(all, r.Orgs)
		if r.CaughtUp && now.Sub(r.At) >= idleRelease {
			continue // idle: it cannot hold the others back
		}
		live = append(live, r.Orgs)
	}
	if len(all) == 0 {
		return nil
	}
	if len(live) == 0 {
		out := map[string]time.Time{}
		for _, prog := range all {
			for org, t := range prog {
				if t.After(out[org]) {
					out[org] = t
				}
			}
		}
		return out
	}
	return slowestLive(live, lateness)
}

// watchGroupCompleteness records, while several daemons share the consumer
// group, each org's completeness point combined from every partition's
// progress record (while alone, each batch records it: splitEngine).
func (s *Stream) watchGroupCompleteness(ctx context.Context, every, idleRelease, lateness time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	grouped := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n := s.consumer.Members(); n <= 1 {
			grouped = false
			continue
		} else if !grouped {
			grouped = true
			s.log.Info("several daemons share the consumer group: completeness combined from every partition's progress record", "members", n)
		}
		if err := s.recordGroupCompleteness(ctx, time.Now(), idleRelease, lateness); err != nil && ctx.Err() == nil {
			s.log.Warn("group completeness not recorded; will retry", "err", err)
		}
	}
}

// recordGroupCompleteness records the orgs whose combined completeness point
// has moved on since the store last said.
func (s *Stream) recordGroupCompleteness(ctx context.Context, now time.Time, idleRelease, lateness time.Duration) error {
	entries, err := s.store.LoadState(ctx, progressPrefix)
	if err != nil {
		return fmt.Errorf("load partition progress: %w", err)
	}
	records := make([]partitionProgress, 0, len(entries))
	for _, e := range entries {
		var r partitionProgress
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return fmt.Errorf("partition progress %s: %w", e.Key, err)
		}
		records = append(records, r)
	}
	points := groupCompleteness(records, now, idleRelease, lateness)
	current, err := store.LoadCompleteness(ctx, s.store)
	if err != nil {
		return err
	}
	var state []store.StateEntry
	for _, org := range sortedTaskIDs(points) {
		if t := points[org]; t.After(current[org]) {
			state = append(state, store.CompletenessEntry(org, t))
			current[org] = t
		}
	}
	if len(state) == 0 {
		return nil
	}
	if _, err := s.store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return store.Effects{State: state}, nil }); err != nil {
		return fmt.Errorf("record completeness: %w", err)
	}
	// The batches' own record, should this daemon be alone again, starts
	// from here: the point never moves back.
	s.pipeline.engMu.Lock()
	for org, t := range current {
		if s.engine.complete == nil {
			s.engine.complete = map[string]time.Time{}
		}
		if t.After(s.engine.complete[org]) {
			s.engine.complete[org] = t
		}
	}
	s.engine.feed.set(frontierResult{}, s.engine.complete)
	s.pipeline.engMu.Unlock()
	return nil
}
