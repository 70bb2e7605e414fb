// Package stream is the daemon's event stream: it consumes batches from
// Kafka (ingest), stores each with the effects of the checks over its new
// events in one durable unit (pipeline.go), shards the actor-keyed check
// state by input partition (tasks.go), holds the shared checks back to the
// slowest live input partition (frontier.go), and, when configured, feeds
// the device- and team-keyed checks through repartition topics of their
// own (keying.go, repartition.go).
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// Store is what the stream needs of the store: batches applied as one
// durable unit with their check state, and that state read back. A store
// that can also say which events it holds (store.KeyLookup) lets the
// pipeline run the checks ahead of the write.
type Store interface {
	Apply(ctx context.Context, events []event.Event, positions []store.Position, evaluate store.EvaluateFunc) (store.Result, error)
	LoadState(ctx context.Context, prefix string) ([]store.StateEntry, error)
}

// Options configures a Stream. Store is required; everything else has a
// safe zero value.
type Options struct {
	Store Store
	// Rules are every check's options (checkconfig.EngineOptions); the
	// stream splits them between the per-partition and shared engines.
	Rules rules.Options
	// Roster returns the reference data a new engine starts from; nil, or
	// a nil result: none loaded yet. SetRoster hands later reloads on.
	Roster func() rules.Roster
	// Wake tells alert delivery that new alert versions are stored; nil:
	// nobody is told.
	Wake func()
	// Observe, if set, is told about every stored batch (feed heartbeats).
	Observe func(events []event.Event, arrival time.Time)
	// ConflictAlert builds the alert of a conflicting duplicate; nil
	// raises none.
	ConflictAlert func(store.Conflict) alert.Alert
	// AlertCounter counts the conflict alerts once stored; nil: not
	// counted.
	AlertCounter *rules.AlertCounter
	// IdleRelease: after this long with no new events, waiting events are
	// judged (checks.idle_release); zero: never.
	IdleRelease time.Duration
	// Lateness is how far behind the slowest live input partition the
	// shared checks are held (checks.lateness); negative: zero.
	Lateness time.Duration
	// Orgs label the feed metrics.
	Orgs []string
	// Systems, with Orgs, label the feed's last-arrival metric: the
	// systems the configuration names. Events of any other org or system
	// are counted as "other".
	Systems []string
	// Ingest, when set, is the consumer's options: the stream consumes
	// from Kafka (its Processor and Registerer are the stream's). Nil: no
	// consumer; batches come through Process only.
	Ingest *ingest.Options
	// Repartition gives the device- and team-keyed checks repartition
	// topics of their own (ingest.kafka.repartition); only with Ingest.
	Repartition bool
	Logger      *slog.Logger
	// Registerer takes the stream's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// Stream is the running event stream.
type Stream struct {
	o        Options
	log      *slog.Logger
	store    Store
	engine   *splitEngine
	pipeline *pipeline
	consumer *ingest.Consumer // nil: no consumer
	// Repartitioning (repartition.go); nil and empty when off.
	forwarder *forwarder
	streams   []repartStream
	// keyedPartial is set while several daemons share the group without
	// repartitioning (keying.go); nil when there is no consumer or the
	// keyed checks are repartitioned.
	keyedPartial prometheus.Gauge
}

// New builds the engines, restores their durable state and builds the
// consumers. Nothing consumes until Run.
func New(ctx context.Context, o Options) (*Stream, error) {
	if o.Store == nil {
		return nil, errors.New("stream: no store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry() // registered nowhere
	}
	s := &Stream{o: o, log: o.Logger, store: o.Store}
	actorOpts, sharedOpts := splitByKeying(o.Rules)
	newEngine := func(ro rules.Options) (*rules.Engine, error) {
		e, err := rules.New(ro)
		if err != nil {
			return nil, fmt.Errorf("build checks: %w", err)
		}
		if o.Roster != nil {
			if r := o.Roster(); r != nil {
				e.SetRoster(r)
			}
		}
		return e, nil
	}
	if _, err := rules.New(actorOpts); err != nil { // the tasks' options, checked up front
		return nil, fmt.Errorf("build checks: %w", err)
	}
	s.engine = &splitEngine{tasks: newTaskEngine(func() (engine, error) { return newEngine(actorOpts) })}
	repartition := o.Ingest != nil && o.Repartition
	consuming := o.Ingest != nil
	if consuming {
		// Every org is judged behind the slowest live input partition, and
		// its completeness recorded (frontier.go).
		s.engine.frontier = newInputFrontier(max(o.Lateness, 0), o.IdleRelease, o.Logger)
		s.engine.feed = newFeedMetrics(o.Registerer, o.Orgs)
	}
	if !repartition {
		opts := sharedOpts
		opts.ExternalFrontier = consuming
		var err error
		if s.engine.shared, err = newEngine(opts); err != nil {
			return nil, err
		}
	}
	s.pipeline = &pipeline{store: o.Store, engine: s.engine, log: o.Logger, wake: o.Wake, observe: o.Observe,
		arrival:     newArrivalMetric(o.Registerer, o.Orgs, o.Systems),
		idleRelease: o.IdleRelease, conflictAlert: o.ConflictAlert, alertCounter: o.AlertCounter}
	if err := s.pipeline.restore(ctx); err != nil {
		return nil, err
	}
	if !consuming {
		return s, nil
	}
	io := *o.Ingest
	io.Processor = s.pipeline
	// The repartition streams' consumers export the same metrics: "stream"
	// tells them apart.
	io.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"stream": streamInput}, o.Registerer)
	if repartition {
		if err := s.setupRepartition(ctx, io, sharedOpts, newEngine, o.IdleRelease); err != nil {
			return nil, err
		}
	}
	var err error
	if s.consumer, err = ingest.New(io); err != nil {
		return nil, err
	}
	s.engine.frontier.partitions = s.consumer.Partitions
	s.engine.alone = func() bool { return s.consumer.Members() <= 1 }
	if s.engine.shared != nil {
		s.keyedPartial = newKeyedPartialGauge(o.Registerer)
	}
	return s, nil
}

// SetRoster hands reloaded reference data to every engine.
func (s *Stream) SetRoster(r rules.Roster) {
	s.engine.SetRoster(r)
	for _, rs := range s.streams {
		rs.processor.SetRoster(r)
	}
}

// Ready reports why the stream cannot take events yet: its consumer has
// not joined its group or does not know the group's committed positions.
func (s *Stream) Ready() error {
	if s.consumer != nil && !s.consumer.Ready() {
		return errors.New("consumer group not joined yet, or its committed positions not known")
	}
	return nil
}

// Process stores and checks one batch of events outside Kafka, as the
// consumer's batches are (tests, tools).
func (s *Stream) Process(ctx context.Context, events []event.Event) (store.Result, error) {
	return s.pipeline.Process(ctx, events, nil)
}

// Run runs the consumers and the stream's background jobs until ctx is
// done or one of them fails, then stops them all: each consumer drains and
// commits what it fetched, and the forwarder forwards the last batches'
// events.
func (s *Stream) Run(ctx context.Context) error {
	var g run.Group
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	}
	// Each job gets a context of its own, ended by its interrupt only: the
	// consumers drain on their own terms once told to stop.
	add := func(job func(ctx context.Context) error) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return job(ctx) }, func(error) { cancel() })
	}
	if s.consumer != nil {
		add(s.consumer.Run)
	}
	add(s.pipeline.run)
	if s.forwarder != nil {
		add(s.forwarder.run)
	}
	if s.consumer != nil && s.engine.frontier != nil {
		f := s.engine.frontier
		add(func(ctx context.Context) error {
			return s.watchGroupCompleteness(ctx, max(f.idleRelease/4, time.Second), f.idleRelease, f.lateness)
		})
	}
	if s.keyedPartial != nil {
		add(func(ctx context.Context) error { return s.watchKeying(ctx, s.consumer.Members, s.keyedPartial) })
	}
	for _, rs := range s.streams {
		add(rs.consumer.Run)
		add(rs.processor.run)
	}
	err := g.Run()
	if s.forwarder != nil {
		// The consumer has applied its last batches: forward their events now.
		s.forwarder.final(context.WithoutCancel(ctx))
	}
	return err
}
