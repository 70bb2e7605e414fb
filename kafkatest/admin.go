package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// CreateTopic creates topic with the given partitions (replication 1) and
// waits until every partition has a leader, since Kafka creates topics
// asynchronously and an early produce would fail with
// UNKNOWN_TOPIC_OR_PARTITION.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int) error {
	if partitions <= 0 {
		return fmt.Errorf("kafkatest: create topic %q: partitions must be positive, got %d", topic, partitions)
	}
	res, err := c.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		return fmt.Errorf("kafkatest: create topic %q: %w", topic, err)
	}
	if err := res.Errors[topic]; err != nil {
		return fmt.Errorf("kafkatest: create topic %q: %w", topic, err)
	}
	return retry(ctx, func() error {
		ps, err := c.Partitions(ctx, topic)
		if err != nil {
			return err
		}
		if len(ps) != partitions {
			return fmt.Errorf("topic %q has %d of %d partitions", topic, len(ps), partitions)
		}
		return nil
	})
}

// Partitions returns the ids of topic's partitions, all of which have a
// leader, in ascending order.
func (c *Cluster) Partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("kafkatest: metadata for %q: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("kafkatest: metadata for %q: %w", topic, t.Error)
		}
		ids := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return nil, fmt.Errorf("kafkatest: partition %d of %q has no leader yet", p.ID, topic)
			}
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("kafkatest: topic %q not in metadata", topic)
}

// Produce writes msgs to topic and returns once every in-sync replica has
// them (acks=all). Messages go to partitions by murmur2 of their key, as
// with Kafka's Java producer; Message.Topic and Message.Partition are
// ignored.
func (c *Cluster) Produce(ctx context.Context, topic string, msgs ...kafka.Message) error {
	return c.produce(ctx, topic, &kafka.Murmur2Balancer{}, msgs)
}

// ProduceTo writes msgs to one partition of topic (acks=all).
func (c *Cluster) ProduceTo(ctx context.Context, topic string, partition int, msgs ...kafka.Message) error {
	return c.produce(ctx, topic, fixedPartition(partition), msgs)
}

type fixedPartition int

// Balance returns p even when the topic lacks it: the write then fails
// loudly instead of landing on another partition.
func (p fixedPartition) Balance(kafka.Message, ...int) int { return int(p) }

func (c *Cluster) produce(ctx context.Context, topic string, b kafka.Balancer, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	w := &kafka.Writer{
		Addr:         c.Addr(),
		Topic:        topic,
		Balancer:     b,
		RequiredAcks: kafka.RequireAll,
		// A synchronous write waits BatchTimeout (1 s by default) for a
		// batch to fill; tests hand over everything at once.
		BatchTimeout: time.Millisecond,
		BatchSize:    len(msgs),
		Transport:    c.transport,
	}
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		m.Topic, m.Partition, m.Offset = "", 0, 0
		out[i] = m
	}
	err := w.WriteMessages(ctx, out...)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("kafkatest: produce %d messages to %q: %w", len(msgs), topic, err)
	}
	return nil
}

// Offsets are a partition's first and next-to-be-written offsets.
type Offsets struct {
	First, End int64
}

// PartitionOffsets returns the first and end offset of every partition of
// topic.
func (c *Cluster) PartitionOffsets(ctx context.Context, topic string) (map[int]Offsets, error) {
	ps, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ps))
	for _, p := range ps {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("kafkatest: list offsets of %q: %w", topic, err)
	}
	out := make(map[int]Offsets, len(ps))
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("kafkatest: list offsets of %q partition %d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = Offsets{First: po.FirstOffset, End: po.LastOffset}
	}
	if len(out) != len(ps) {
		return nil, fmt.Errorf("kafkatest: list offsets of %q: %d of %d partitions answered", topic, len(out), len(ps))
	}
	return out, nil
}

// ReadAll waits until topic holds at least n messages, then returns all of
// them, ordered by partition and offset. It reads without a consumer group,
// so it commits nothing: use it to assert on output such as dead-letter
// topics. It fails if ctx ends before n messages are there. Not for
// transactional topics, whose control records take offsets too.
func (c *Cluster) ReadAll(ctx context.Context, topic string, n int) ([]kafka.Message, error) {
	var offs map[int]Offsets
	err := retry(ctx, func() error {
		var err error
		if offs, err = c.PartitionOffsets(ctx, topic); err != nil {
			return err
		}
		var total int64
		for _, o := range offs {
			total += o.End - o.First
		}
		if total < int64(n) {
			return fmt.Errorf("topic %q holds %d of %d messages", topic, total, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kafkatest: read %q: %w", topic, err)
	}
	ps := make([]int, 0, len(offs))
	for p := range offs {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	var out []kafka.Message
	for _, p := range ps {
		msgs, err := c.readPartition(ctx, topic, p, offs[p])
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

func (c *Cluster) readPartition(ctx context.Context, topic string, partition int, o Offsets) ([]kafka.Message, error) {
	if o.End <= o.First {
		return nil, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.Brokers,
		Topic:     topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(o.First); err != nil {
		return nil, fmt.Errorf("kafkatest: read %q partition %d: %w", topic, partition, err)
	}
	out := make([]kafka.Message, 0, o.End-o.First)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("kafkatest: read %q partition %d at %d of [%d,%d): %w",
				topic, partition, len(out), o.First, o.End, err)
		}
		out = append(out, m)
		if m.Offset >= o.End-1 {
			return out, nil
		}
	}
}

// CommittedOffsets returns group's committed offsets on topic by partition
// (the offset of the next message to consume). Partitions without a
// commit are absent.
func (c *Cluster) CommittedOffsets(ctx context.Context, group, topic string) (map[int]int64, error) {
	ps, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	res, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, fmt.Errorf("kafkatest: committed offsets of group %q: %w", group, err)
	}
	out := make(map[int]int64)
	// kfake answers GROUP_ID_NOT_FOUND for a group that never committed,
	// Kafka answers offset -1: both mean "no commits".
	if errors.Is(res.Error, kafka.GroupIdNotFound) {
		return out, nil
	}
	if res.Error != nil {
		return nil, fmt.Errorf("kafkatest: committed offsets of group %q: %w", group, res.Error)
	}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("kafkatest: committed offset of group %q partition %d: %w", group, p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// Lag returns how many messages of topic group has not committed yet,
// summed over partitions; a partition without a commit counts in full.
func (c *Cluster) Lag(ctx context.Context, group, topic string) (int64, error) {
	offs, err := c.PartitionOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	committed, err := c.CommittedOffsets(ctx, group, topic)
	if err != nil {
		return 0, err
	}
	var lag int64
	for p, o := range offs {
		from := o.First
		if off, ok := committed[p]; ok && off > from {
			from = off
		}
		lag += max(o.End-from, 0)
	}
	return lag, nil
}

// retry calls fn every 50 ms until it succeeds or ctx ends, returning
// fn's last error with ctx's.
func retry(ctx context.Context, fn func() error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-tick.C:
		}
	}
}
