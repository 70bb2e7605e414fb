package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/store"
)

// fetchProcessor records, per call, the partitions known to the consumer
// and the batch's fetch positions.
type fetchProcessor struct {
	cons *Consumer
	mu   sync.Mutex
	// known is false if a batch came before the partitions were read.
	known   bool
	calls   int
	last    map[int]PartitionFetch // partition → its newest fetch position
	stored  int
	partsAt []TopicPartition
	nextSeq uint64
	wrong   []string // batches whose metadata does not fit their events
}

// Process is never called: the consumer gives a BatchProcessor its Batch.
func (p *fetchProcessor) Process(context.Context, []event.Event, []store.Position) (store.Result, error) {
	return store.Result{}, errors.New("Process called on a BatchProcessor")
}

func (p *fetchProcessor) ProcessBatch(_ context.Context, b *Batch) (store.Result, error) {
	evs := b.Events
	p.mu.Lock()
	defer p.mu.Unlock()
	parts, known := p.cons.Partitions()
	if p.calls == 0 {
		p.known, p.partsAt = known, parts
	}
	p.calls++
	// The Batch is one typed value: its sequence number, and a position
	// for each event that its partition's fetch position covers.
	if b.Seq != p.nextSeq {
		p.wrong = append(p.wrong, fmt.Sprintf("batch %d: Seq %d, want %d", p.calls, b.Seq, p.nextSeq))
	}
	p.nextSeq = b.Seq + 1
	if len(b.Positions) != len(b.Events) {
		p.wrong = append(p.wrong, fmt.Sprintf("batch %d: %d positions for %d events", p.calls, len(b.Positions), len(b.Events)))
	}
	for _, pos := range b.Positions {
		if !slices.ContainsFunc(b.Fetched, func(f PartitionFetch) bool {
			return f.Topic == pos.Topic && f.Partition == pos.Partition && f.Offset >= pos.Offset
		}) {
			p.wrong = append(p.wrong, fmt.Sprintf("batch %d: position %+v beyond its partition's fetch position %+v", p.calls, pos, b.Fetched))
			break
		}
	}
	for _, f := range b.Fetched {
		if f.Offset >= p.last[f.Partition].Offset {
			p.last[f.Partition] = f
		}
	}
	p.stored += len(evs)
	return store.Result{Stored: len(evs)}, nil
}

// TestKafkaConsumerTellsWherePartitionsStand: the input topic's partitions
// are known before the first batch, each Batch numbers itself and gives
// each event's position, and each batch says where its
// partitions stood against their high watermark — caught up once the last
// message is read.
func TestKafkaConsumerTellsWherePartitionsStand(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 3)
		produceEvents(t, c, topic, 0, 600)
		p := &fetchProcessor{last: map[int]PartitionFetch{}}
		cons := newTestConsumer(t, c, topic, kafkatest.UniqueName(t, "g"), p, nil)
		p.cons = cons
		runUntil(t, cons, 60*time.Second, func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.stored >= 600
		})
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, w := range p.wrong {
			t.Error(w)
		}
		if !p.known || len(p.partsAt) != 3 {
			t.Fatalf("first batch: partitions known %v, %v; want the topic's 3", p.known, p.partsAt)
		}
		ends, err := c.PartitionOffsets(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		for part, o := range ends {
			if o.End == 0 {
				continue
			}
			f, ok := p.last[part]
			if !ok {
				t.Errorf("partition %d: no fetch position handed over", part)
				continue
			}
			if f.Offset != o.End-1 || !f.CaughtUp() {
				t.Errorf("partition %d: last fetch %+v, want offset %d caught up (end %d)", part, f, o.End-1, o.End)
			}
		}
	})
}

func TestPartitionFetchCaughtUp(t *testing.T) {
	for _, tc := range []struct {
		f    PartitionFetch
		want bool
	}{
		{PartitionFetch{Offset: 9, HighWaterMark: 10}, true},
		{PartitionFetch{Offset: 9, HighWaterMark: 11}, false},
		{PartitionFetch{Offset: 9, HighWaterMark: 0}, false}, // unknown: not caught up
	} {
		if got := tc.f.CaughtUp(); got != tc.want {
			t.Errorf("%+v: CaughtUp %v, want %v", tc.f, got, tc.want)
		}
	}
}
