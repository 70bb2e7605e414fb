package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/backoff"
)

// Event time across partitions. A Processor that judges events of several
// partitions together (the daemon's device- and team-keyed checks) must
// wait for the slowest partition it is given, and must know which ones
// exist before their first message arrives: a partition with a backlog
// that has not been fetched yet would otherwise be overtaken. So the
// consumer tells it, with every batch, where each partition of the batch
// stood against its high watermark when fetched (Batch.Fetched), and, at any
// time, which partitions the input topics have (Partitions).

// PartitionFetch is where one partition of a batch stood when fetched.
type PartitionFetch struct {
	Topic     string
	Partition int
	// Offset is the offset of the partition's last message in the batch.
	Offset int64
	// HighWaterMark is the partition's high watermark when that message
	// was fetched: Offset+1 >= HighWaterMark means nothing more was
	// waiting on the broker then (the partition was caught up).
	HighWaterMark int64
}

// CaughtUp reports whether the partition had nothing more on the broker
// when its last message in the batch was fetched.
func (f PartitionFetch) CaughtUp() bool { return f.HighWaterMark > 0 && f.Offset+1 >= f.HighWaterMark }

// fetchedOf summarises msgs: each partition's last message.
func fetchedOf(msgs []kafka.Message) []PartitionFetch {
	var out []PartitionFetch
	idx := map[fetchedKey2]int{}
	for i := range msgs {
		m := &msgs[i]
		k := fetchedKey2{m.Topic, m.Partition}
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, PartitionFetch{Topic: m.Topic, Partition: m.Partition, Offset: -1})
		}
		if m.Offset >= out[j].Offset {
			out[j].Offset, out[j].HighWaterMark = m.Offset, m.HighWaterMark
		}
	}
	return out
}

type fetchedKey2 struct {
	topic     string
	partition int
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int
}

// partitionList is the input topics' partitions as last read.
type partitionList struct {
	mu    sync.Mutex
	known bool
	list  []TopicPartition
}

// Partitions returns the partitions of the input topics as last read from
// the brokers' metadata, sorted, and whether they have been read at all.
// Run reads them before it fetches the first message, and again every
// LagInterval.
func (c *Consumer) Partitions() ([]TopicPartition, bool) {
	c.parts.mu.Lock()
	defer c.parts.mu.Unlock()
	return slices.Clone(c.parts.list), c.parts.known
}

// readPartitions reads the input topics' partitions from the brokers.
func (c *Consumer) readPartitions(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := c.admin.Metadata(ctx, &kafka.MetadataRequest{Topics: c.topicNames()})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var list []TopicPartition
	for _, t := range md.Topics {
		if t.Error != nil {
			continue // not created yet: it has no events either
		}
		for _, p := range t.Partitions {
			list = append(list, TopicPartition{Topic: t.Name, Partition: p.ID})
		}
	}
	slices.SortFunc(list, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return a.Partition - b.Partition
	})
	c.parts.mu.Lock()
	c.parts.list, c.parts.known = list, true
	c.parts.mu.Unlock()
	return nil
}

// watchPartitions reads the input topics' partitions until it has them
// once, returning then (so that Run fetches nothing before), and goes on
// re-reading them every interval in the background until ctx ends.
func (c *Consumer) watchPartitions(ctx context.Context, interval time.Duration) {
	for attempt := 0; ; attempt++ {
		err := c.readPartitions(ctx)
		if err == nil {
			break
		}
		c.o.Logger.Warn("input partitions not read; retrying", "err", err)
		if backoff.Sleep(ctx, c.o.retryBackoff().Wait(attempt)) != nil {
			return
		}
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.readPartitions(ctx); err != nil && ctx.Err() == nil {
					c.o.Logger.Debug("input partitions not read", "err", err)
				}
			}
		}
	}()
}

// topicNames are the input topics' names.
func (c *Consumer) topicNames() []string {
	names := make([]string, len(c.o.Topics))
	for i, t := range c.o.Topics {
		names[i] = t.Name
	}
	return names
}
