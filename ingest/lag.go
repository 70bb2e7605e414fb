package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// pollLag sets the lag gauge from the brokers every interval: for each
// partition of the input topics, the messages not yet committed by the group
// (end offset − committed offset). Measured this way, and not from what the
// consumer last fetched, lag keeps growing while the consumer is paused —
// a store outage shows on the dashboards as it happens.
func (c *Consumer) pollLag(ctx context.Context, interval time.Duration) {
	go c.pollReady(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := c.measureLag(ctx); err != nil && ctx.Err() == nil {
			c.o.Logger.Debug("consumer lag not measured", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readyPoll is how often the group is asked whether it has joined, until
// it has: ready within moments of the join, whatever LagInterval is.
const readyPoll = 250 * time.Millisecond

// pollReady measures readiness right after start and then every readyPoll
// until the consumer is ready (it stays ready) or ctx ends.
func (c *Consumer) pollReady(ctx context.Context) {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for !c.Ready() {
		if err := c.measureReady(ctx); err != nil && ctx.Err() == nil {
			c.o.Logger.Debug("consumer readiness not measured", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// measureReady marks the consumer ready once the brokers say that the
// group has joined (state Stable, a member of this client assigned
// partitions of the input topics) and answer for the committed positions
// of those partitions (none committed is an answer: the group starts at the
// beginning). Unlike the first fetch or commit, this holds on an empty
// topic too. kafka-go does not tell a reader's own member id, so with
// several daemons under one client id a member is any of theirs: a daemon
// joining a group that is already stable may be called ready a moment
// before its own join completes.
func (c *Consumer) measureReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.admin.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{c.o.GroupID}})
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	ours := make(map[string]bool, len(c.o.Topics))
	for _, t := range c.o.Topics {
		ours[t.Name] = true
	}
	assigned := map[string][]int{}
	for _, g := range res.Groups {
		if g.GroupID != c.o.GroupID || g.Error != nil || g.GroupState != "Stable" {
			continue
		}
		for _, m := range g.Members {
			if m.ClientID != c.o.ClientID {
				continue
			}
			for _, t := range m.MemberAssignments.Topics {
				if ours[t.Topic] && len(t.Partitions) > 0 {
					assigned[t.Topic] = append(assigned[t.Topic], t.Partitions...)
				}
			}
		}
	}
	if len(assigned) == 0 {
		return nil // not joined yet
	}
	committed, err := c.admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.o.GroupID, Topics: assigned})
	if err != nil {
		return fmt.Errorf("committed offsets: %w", err)
	}
	if committed.Error != nil {
		return fmt.Errorf("committed offsets: %w", committed.Error)
	}
	for topic, ps := range assigned {
		known := map[int]bool{}
		for _, p := range committed.Topics[topic] {
			if p.Error != nil {
				return fmt.Errorf("committed offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			known[p.Partition] = true
		}
		for _, p := range ps {
			if !known[p] {
				return fmt.Errorf("committed offset of %s/%d not answered", topic, p)
			}
		}
	}
	c.setReady()
	return nil
}

// Members returns how many members the consumer group had when last
// measured (every LagInterval); 0 before the first measurement.
func (c *Consumer) Members() int { return int(c.members.Load()) }

// measureMembers counts the group's members: with several daemons in one
// group, checks that are not keyed by the partition key need repartitioning.
func (c *Consumer) measureMembers(ctx context.Context) error {
	res, err := c.admin.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{c.o.GroupID}})
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	for _, g := range res.Groups {
		if g.GroupID == c.o.GroupID && g.Error == nil {
			c.members.Store(int64(len(g.Members)))
			c.m.members.Set(float64(len(g.Members)))
		}
	}
	return nil
}

func (c *Consumer) measureLag(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.measureMembers(ctx); err != nil {
		c.o.Logger.Debug("consumer group members not counted", "err", err)
	}
	md, err := c.admin.Metadata(ctx, &kafka.MetadataRequest{Topics: c.topicNames()})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	partitions := map[string][]int{}
	offsetReqs := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue // not created yet
		}
		for _, p := range t.Partitions {
			partitions[t.Name] = append(partitions[t.Name], p.ID)
			offsetReqs[t.Name] = append(offsetReqs[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(partitions) == 0 {
		return nil
	}
	ends, err := c.admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: offsetReqs})
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	committed, err := c.admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.o.GroupID, Topics: partitions})
	if err != nil {
		return fmt.Errorf("committed offsets: %w", err)
	}
	// A group that never committed: Kafka answers offset -1, some
	// brokers GROUP_ID_NOT_FOUND; either way, everything is lag.
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return fmt.Errorf("committed offsets: %w", committed.Error)
	}
	done := map[string]map[int]int64{}
	for topic, ps := range committed.Topics {
		done[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error == nil && p.CommittedOffset >= 0 {
				done[topic][p.Partition] = p.CommittedOffset
			}
		}
	}
	for topic, ps := range ends.Topics {
		for _, p := range ps {
			if p.Error != nil {
				continue
			}
			from, ok := done[topic][p.Partition]
			if !ok {
				from = p.FirstOffset
			}
			c.m.lag.WithLabelValues(topic, strconv.Itoa(p.Partition)).Set(float64(max(0, p.LastOffset-from)))
		}
	}
	return nil
}
