// Package producer publishes access events to a Kafka topic at a chosen
// rate: the simulator's output for `dpiawatch simulate --kafka`, the demo and
// the benchmark. Messages are keyed by actor, the key every check's state is
// partitioned by, and written with acks from all in-sync replicas.
package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/event"
)

// Options configures a Producer.
type Options struct {
	Brokers []string
	Topic   string
	// Rate is events per second; 0 publishes as fast as the broker takes them.
	Rate int
	// BatchSize is how many messages go in one write; default 1000.
	BatchSize int
}

// Producer publishes events.
type Producer struct {
	o       Options
	w       *kafka.Writer
	pending []kafka.Message
	sent    int64
	start   time.Time
}

// New builds a Producer.
func New(o Options) (*Producer, error) {
	if len(o.Brokers) == 0 || o.Topic == "" {
		return nil, errors.New("producer: brokers and topic are required")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Rate > 0 {
		// Small batches keep a paced stream smooth.
		o.BatchSize = max(1, min(o.BatchSize, o.Rate/50))
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(o.Brokers...),
		Topic:                  o.Topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchSize:              o.BatchSize,
		BatchBytes:             16 << 20,
		BatchTimeout:           5 * time.Millisecond,
	}
	return &Producer{o: o, w: w, pending: make([]kafka.Message, 0, o.BatchSize)}, nil
}

// Publish queues ev (encoded now) and writes a batch when one is full,
// pacing to the configured rate.
func (p *Producer) Publish(ctx context.Context, ev *event.Event) error {
	b, err := event.Encode(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return p.PublishRaw(ctx, []byte(ev.Actor.ID), b)
}

// PublishRaw queues one message as it is (tests use it for invalid input).
func (p *Producer) PublishRaw(ctx context.Context, key, value []byte) error {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.pending = append(p.pending, kafka.Message{Key: key, Value: value})
	if len(p.pending) >= p.o.BatchSize {
		return p.Flush(ctx)
	}
	return nil
}

// Flush writes what is queued, waiting first if ahead of the rate.
func (p *Producer) Flush(ctx context.Context) error {
	if len(p.pending) == 0 {
		return nil
	}
	if p.o.Rate > 0 {
		due := p.start.Add(time.Duration(float64(p.sent) / float64(p.o.Rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	now := time.Now()
	for i := range p.pending {
		p.pending[i].Time = now // the benchmark measures latency from here
	}
	if err := p.w.WriteMessages(ctx, p.pending...); err != nil {
		return fmt.Errorf("publish to %s: %w", p.o.Topic, err)
	}
	p.sent += int64(len(p.pending))
	p.pending = p.pending[:0]
	return nil
}

// Sent is the number of events written so far.
func (p *Producer) Sent() int64 { return p.sent }

// Close flushes and closes the writer.
func (p *Producer) Close(ctx context.Context) error {
	err := p.Flush(ctx)
	return errors.Join(err, p.w.Close())
}
