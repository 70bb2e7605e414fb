package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/checks/bulkaccess"
	"github.com/dpiawatch/dpiawatch/checks/unlockedsession"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// Repartitioning (ingest.kafka.repartition). The device-keyed and team-keyed
// checks (keying.go) get keyed streams of their own, as Kafka Streams
// repartitions: the main pipeline forwards each batch's fresh events to
// <group>-by-device (keyed org+device) and <group>-by-team (keyed org+team),
// and two more consumer groups run those checks in per-partition tasks.
//
// Nothing is lost: the forwarded events are written as outbox rows in the
// batch's own transaction, produced after the commit, and deleted once the
// brokers have them; what an outbox still holds (a crash between produce and
// delete, or a daemon that stopped) is produced again, before the rows of
// the daemon that took the partitions over. The repartition topics may
// therefore hold an event twice; each task absorbs that by remembering the
// highest offset it processed (a redelivery) and the event keys of its last
// batches (an outbox re-send).
//
// Event time across the shuffle. A repartition partition mixes events of
// every input partition, and input partitions are consumed at their own
// pace: during a catch-up, or across a rebalance, one may be hours of event
// time ahead of another. So, as Dataflow and Flink carry watermarks through
// a shuffle, each forwarded batch is followed by a progress mark sent to
// every partition of both topics: for each input partition (source) of the
// batch and each org, the newest event time it held. A task's engine runs
// with an external frontier (rules.Options.ExternalFrontier): per org, the
// slowest source's progress less the lateness bound, so an event waits until
// every source has passed it and is judged as if the whole stream had come
// in order, however far apart the sources are. A source that has sent no
// progress for idle_release (wall clock) — a partition with no traffic, a
// daemon that died and whose partitions wait for the group's session
// timeout — is left out, as Flink's idle sources are, so that it cannot
// stall the others; its events arriving later behind the frontier are
// judged at once (counted as late), never dropped.
//
// The parts, a file each: this one sets the streams up; forwarder.go writes
// and produces the outbox; repartprocessor.go runs a repartition topic's
// tasks; repartstate.go is what those tasks keep durable to absorb
// redeliveries and re-sends.

// Stream names: the suffix of the topic and group, and the state prefix.
const (
	streamInput  = "input" // the main consumer's, in metrics
	streamDevice = "by-device"
	streamTeam   = "by-team"
)

// Headers of repartition messages: a progress mark, and the partition a
// message is addressed to (marks go to every partition).
const (
	headerMark      = "dpiawatch-mark"
	headerPartition = "dpiawatch-partition"
)

// ensureTopics creates the repartition topics, with as many partitions as
// the widest input topic, unless they exist. It returns the input
// partitions (the sources a task waits for) and each repartition topic's
// partition count (where marks go).
func ensureTopics(ctx context.Context, admin *kafka.Client, inputs, topics []string) (sources []string, parts map[string]int, err error) {
	width := -1
	meta, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: inputs})
	if err == nil {
		for _, t := range meta.Topics {
			if t.Error == nil {
				width = max(width, len(t.Partitions))
				for _, p := range t.Partitions {
					sources = append(sources, taskID(store.Position{Topic: t.Name, Partition: p.ID}))
				}
			}
		}
	}
	slices.Sort(sources)
	var cfgs []kafka.TopicConfig
	for _, t := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: width, ReplicationFactor: -1})
	}
	res, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return nil, nil, fmt.Errorf("create repartition topics: %w", err)
	}
	for t, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return nil, nil, fmt.Errorf("create repartition topic %s: %w", t, err)
		}
	}
	// Existing topics keep their own partition count: read it back.
	parts = map[string]int{}
	for attempt := 0; ; attempt++ {
		meta, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err == nil {
			for _, t := range meta.Topics {
				if t.Error == nil && len(t.Partitions) > 0 {
					parts[t.Name] = len(t.Partitions)
				}
			}
		}
		if len(parts) == len(topics) {
			return sources, parts, nil
		}
		if attempt == 50 {
			return nil, nil, fmt.Errorf("repartition topics %v: no partitions in the metadata: %v", topics, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// repartStream is one repartition topic's consumer and processor.
type repartStream struct {
	consumer  *ingest.Consumer
	processor *repartProcessor
}

// repartitionOptions derives the option sets of the two streams from the
// shared checks' options: devices run unlocked-session's device-handover,
// teams run bulk-access.
func repartitionOptions(shared rules.Options) (device, team rules.Options) {
	device, team = shared, shared
	device.Disabled, team.Disabled = slices.Clone(shared.Disabled), slices.Clone(shared.Disabled)
	if !slices.Contains(device.Disabled, bulkaccess.Name) {
		device.Disabled = append(device.Disabled, bulkaccess.Name)
	}
	if !slices.Contains(team.Disabled, unlockedsession.Name) {
		team.Disabled = append(team.Disabled, unlockedsession.Name)
	}
	return device, team
}

// setupRepartition builds the forwarder and the two repartition streams
// from the main consumer's options io.
func (s *Stream) setupRepartition(ctx context.Context, io ingest.Options, shared rules.Options,
	newEngine func(rules.Options) (*rules.Engine, error), idle time.Duration) error {
	group := io.GroupID
	if group == "" {
		group = "dpiawatch"
	}
	deviceOpts, teamOpts := repartitionOptions(shared)
	tlsCfg, err := io.TLS.Config()
	if err != nil {
		return err
	}
	mech, err := io.SASL.SASLMechanism()
	if err != nil {
		return err
	}
	transport := &kafka.Transport{ClientID: io.ClientID, TLS: tlsCfg, SASL: mech, DialTimeout: 10 * time.Second}
	f := &forwarder{
		store: s.store, log: s.log, instance: newInstanceID(), kick: make(chan struct{}, 1),
		roster: func() rules.Roster {
			if s.o.Roster == nil {
				return nil
			}
			return s.o.Roster()
		},
		writer: &kafka.Writer{Addr: kafka.TCP(io.Brokers...), Balancer: &partitionBalancer{}, RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond, BatchSize: 5000, Transport: transport},
	}
	var topics, inputs []string
	var processors []*repartProcessor
	for _, t := range io.Topics {
		inputs = append(inputs, t.Name)
	}
	for _, spec := range []struct {
		name  string
		opts  rules.Options
		topic *string
	}{{streamDevice, deviceOpts, &f.deviceTopic}, {streamTeam, teamOpts, &f.teamTopic}} {
		if slices.Contains(spec.opts.Disabled, unlockedsession.Name) && slices.Contains(spec.opts.Disabled, bulkaccess.Name) {
			continue // its check is disabled: no stream
		}
		if _, err := rules.New(spec.opts); err != nil {
			return fmt.Errorf("build %s checks: %w", spec.name, err)
		}
		*spec.topic = group + "-" + spec.name
		topics = append(topics, *spec.topic)
		opts := spec.opts
		opts.ExternalFrontier = true // the slowest source's progress moves it
		p := newRepartProcessor(s.store, spec.name, func() (engine, error) { return newEngine(opts) }, s.log, s.o.Wake, idle)
		switch {
		case opts.Lateness < 0: // rules.NoLateness
			p.lateness = 0
		case opts.Lateness > 0:
			p.lateness = opts.Lateness
		}
		processors = append(processors, p)
		co := io
		co.GroupID, co.Processor, co.OnBatch, co.MarkHeader = *spec.topic, p, nil, headerMark
		co.Topics = []ingest.Topic{{Name: *spec.topic, Format: event.FormatNative}}
		co.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"stream": spec.name}, s.o.Registerer)
		c, err := ingest.New(co)
		if err != nil {
			return fmt.Errorf("%s consumer: %w", spec.name, err)
		}
		s.streams = append(s.streams, repartStream{consumer: c, processor: p})
	}
	if len(topics) == 0 {
		return nil
	}
	admin := &kafka.Client{Addr: kafka.TCP(io.Brokers...), Transport: transport, Timeout: 30 * time.Second}
	sources, parts, err := ensureTopics(ctx, admin, inputs, topics)
	if err != nil {
		return err
	}
	for _, p := range processors {
		p.expected = sources
	}
	f.parts = parts
	s.forwarder = f
	s.engine.forward = f.rows
	s.pipeline.rebalanced = f.rebalanced
	prev := s.pipeline.observe
	s.pipeline.observe = func(events []event.Event, arrival time.Time) {
		if prev != nil {
			prev(events, arrival)
		}
		f.committed()
	}
	return nil
}
