package ingest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testwait"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

// memProcessor is an in-memory Processor with the store's deduplication.
type memProcessor struct {
	mu       sync.Mutex
	seen     map[event.Key]int
	calls    [][]string // event ids of each call
	failNext int        // fail this many calls
	delay    time.Duration
	block    chan struct{} // when set, Process waits for it to close
	blocked  atomic.Int32  // calls waiting on block
}

func newMemProcessor() *memProcessor { return &memProcessor{seen: map[event.Key]int{}} }

func (p *memProcessor) Process(ctx context.Context, evs []event.Event, _ []store.Position) (store.Result, error) {
	if p.block != nil {
		p.blocked.Add(1)
		defer p.blocked.Add(-1)
		select {
		case <-p.block:
		case <-ctx.Done():
			return store.Result{}, ctx.Err()
		}
	}
	if p.delay > 0 {
		time.Sleep(p.delay) // a slow store: the behaviour under test, not a wait
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	p.calls = append(p.calls, ids)
	if p.failNext > 0 {
		p.failNext--
		return store.Result{}, fmt.Errorf("injected store failure")
	}
	var r store.Result
	for i := range evs {
		k := evs[i].Key()
		if p.seen[k] > 0 {
			r.Duplicates++
		} else {
			r.Stored++
		}
		p.seen[k]++
	}
	return r, nil
}

func (p *memProcessor) unique() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

func (p *memProcessor) total() (stored, dups int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.seen {
		stored++
		dups += n - 1
	}
	return
}

var testNow = time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)

func testEvent(i int) []byte {
	ev := event.Event{
		ID: fmt.Sprintf("e-%06d", i), Time: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Org: "st-martins", System: "logmycare", Action: event.ActionView,
		Actor:   event.Actor{ID: fmt.Sprintf("u-%d", i%17), Role: "support-worker", Team: "webster-court"},
		Subject: event.Subject{ID: "c-0042"}, Record: event.Record{Type: "care-plan", ID: "cp-1"},
	}
	b, err := event.Encode(&ev)
	if err != nil {
		panic(err)
	}
	return b
}

func produceEvents(t *testing.T, c *kafkatest.Cluster, topic string, from, to int) {
	t.Helper()
	msgs := make([]kafka.Message, 0, to-from)
	for i := from; i < to; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i % 17)), Value: testEvent(i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Produce(ctx, topic, msgs...); err != nil {
		t.Fatal(err)
	}
}

func newTestConsumer(t *testing.T, c *kafkatest.Cluster, topic, group string, p Processor, reg prometheus.Registerer) *Consumer {
	t.Helper()
	cons, err := New(Options{
		Brokers: c.Brokers, GroupID: group, Topics: []Topic{{Name: topic, Format: event.FormatAuto}},
		DeadLetterTopic: topic + "-dlq", MaxBatchEvents: 300, MaxBatchWait: 50 * time.Millisecond,
		KnownOrgs: map[string]bool{"st-martins": true}, SessionTimeout: 6 * time.Second,
		// The test events are dated March 2026: measure their window from
		// then, not from whenever the test runs.
		Now:      func() time.Time { return testNow },
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, LagInterval: 200 * time.Millisecond,
		Processor: p, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

// runUntil runs cons until cond holds (or the deadline passes), then stops
// it and returns Run's error.
func runUntil(t *testing.T, cons *Consumer, deadline time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	if !testwait.Until(deadline, cond) {
		cancel()
		<-done
		t.Fatalf("condition not met within %s", deadline)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("consumer did not stop within 60s")
	}
}

func committedTotal(t *testing.T, c *kafkatest.Cluster, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := c.CommittedOffsets(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range offs {
		if o > 0 {
			n += o
		}
	}
	return n
}

func TestKafkaConsumerStoresDeadLettersAndCommits(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 3)
		group := kafkatest.UniqueName(t, "g")
		const valid = 2000
		produceEvents(t, c, topic, 0, valid)
		bad := []kafka.Message{
			{Key: []byte("x"), Value: []byte(`{"id": "trunc`)},
			{Key: []byte("x"), Value: []byte(`{"time":"2026-03-02T21:14:05Z","org":"st-martins","system":"s","action":"view","actor":{"id":"u"},"subject":{"id":"c"}}`)},
			{Key: []byte("x"), Value: []byte(`{"id":"b3","time":"2026-03-02T21:14:05Z","org":"st-martins","system":"s","action":"teleport","actor":{"id":"u"}}`)},
			{Key: []byte("x"), Value: []byte(`{"id":"b4","time":"2026-03-02T21:14:05Z","org":"nobody","system":"s","action":"login","actor":{"id":"u"}}`)},
			{Key: []byte("x"), Value: make([]byte, 70<<10)},
			// Hostile: deep nesting, invalid UTF-8, NUL bytes, an empty message.
			{Key: []byte("x"), Value: []byte(strings.Repeat("[", 5000) + strings.Repeat("]", 5000))},
			{Key: []byte("x"), Value: []byte("{\"id\":\"\xff\xfe\",\"time\":\"2026-03-02T21:14:05Z\",\"org\":\"st-martins\",\"system\":\"s\",\"action\":\"login\",\"actor\":{\"id\":\"u\"}}")},
			{Key: []byte("x"), Value: []byte("\x00\x00\x00")},
			{Key: []byte("x"), Value: nil},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Produce(ctx, topic, bad...); err != nil {
			t.Fatal(err)
		}
		p := newMemProcessor()
		reg := prometheus.NewRegistry()
		cons := newTestConsumer(t, c, topic, group, p, reg)
		runUntil(t, cons, 90*time.Second, func() bool { return p.unique() == valid && committedTotal(t, c, group, topic) == valid+int64(len(bad)) })

		stored, dups := p.total()
		if stored != valid || dups != 0 {
			t.Errorf("stored %d (%d duplicates), want %d once each", stored, dups, valid)
		}
		dead, err := c.ReadAll(ctx, topic+"-dlq", len(bad))
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, m := range dead {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			if h[HeaderTopic] != topic || h[HeaderOffset] == "" || h[HeaderDetail] == "" {
				t.Errorf("dead letter without its source and detail: %v", h)
			}
			reasons = append(reasons, h[HeaderReason])
		}
		slices.Sort(reasons)
		want := []string{"malformed", "malformed", "malformed", "malformed", "malformed", "missing_field", "too_large", "unknown_action", "unknown_org"}
		if !slices.Equal(reasons, want) {
			t.Errorf("dead-letter reasons %v, want %v", reasons, want)
		}
		if got := testutil.ToFloat64(cons.m.deadLettered.WithLabelValues("too_large")); got != 1 {
			t.Errorf("too_large dead letters metric = %v, want 1", got)
		}
		if got := testutil.ToFloat64(cons.m.stored); got != valid {
			t.Errorf("stored metric = %v, want %d", got, valid)
		}
	})
}

func TestKafkaConsumerRetriesAFailedBatchNeverSkipsIt(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 1)
		group := kafkatest.UniqueName(t, "g")
		produceEvents(t, c, topic, 0, 1000)
		p := newMemProcessor()
		p.failNext = 3
		cons := newTestConsumer(t, c, topic, group, p, nil)
		runUntil(t, cons, 60*time.Second, func() bool { return p.unique() == 1000 && committedTotal(t, c, group, topic) == 1000 })

		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.calls) < 4 {
			t.Fatalf("%d calls, want the 3 failures and retries", len(p.calls))
		}
		// Each failed attempt must be followed by the very same batch.
		for i := 0; i < 3; i++ {
			if !slices.Equal(p.calls[i], p.calls[i+1]) {
				t.Errorf("attempt %d and %d differ: the failed batch was not retried as it was", i, i+1)
			}
		}
	})
}

func TestKafkaConsumerDrainsOnShutdownAndResumes(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 3)
		group := kafkatest.UniqueName(t, "g")
		const total = 6000
		produceEvents(t, c, topic, 0, total)
		p := newMemProcessor()
		p.delay = 30 * time.Millisecond
		first := newTestConsumer(t, c, topic, group, p, nil)
		runUntil(t, first, 60*time.Second, func() bool { return p.unique() >= 600 })
		stored, _ := p.total()
		if stored == total {
			t.Fatal("the first consumer stored everything; the test cannot see a drain")
		}
		// Everything stored was committed by the drain, nothing more.
		if got := committedTotal(t, c, group, topic); got != int64(stored) {
			t.Errorf("after drain: committed %d, stored %d", got, stored)
		}
		p.delay = 0
		second := newTestConsumer(t, c, topic, group, p, nil)
		runUntil(t, second, 90*time.Second, func() bool { return p.unique() == total })
		stored, dups := p.total()
		if stored != total || dups != 0 {
			t.Errorf("stored %d with %d redelivered, want %d once each", stored, dups, total)
		}
	})
}

func TestKafkaConsumerBoundedUnderBackpressure(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 1)
		group := kafkatest.UniqueName(t, "g")
		const total = 20000
		produceEvents(t, c, topic, 0, total)
		p := newMemProcessor()
		p.block = make(chan struct{})
		reg := prometheus.NewRegistry()
		cons := newTestConsumer(t, c, topic, group, p, reg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cons.Run(ctx) }()
		// The pipeline fills up behind the blocked store and then stops
		// fetching: wait until a batch waits in the store and the count
		// has held still for a second, so that the bound is checked on a
		// full pipeline, not on one still filling.
		fetchedNow := func() float64 { return testutil.ToFloat64(cons.m.consumed.WithLabelValues(topic)) }
		var last float64
		var still time.Time
		testwait.For(t, 30*time.Second, "fetching to stop while the store is blocked", func() bool {
			if n := fetchedNow(); n != last || n == 0 {
				last, still = n, time.Now()
				return false
			}
			return p.blocked.Load() > 0 && time.Since(still) >= time.Second
		})
		fetched := fetchedNow()
		// kafka-go's queue, the message channel, the batch being cut, the
		// queued batches, the one decoding and the one applying.
		bound := float64(300 + 256 + 300*(4+1+1+1+1))
		if fetched == 0 || fetched > bound {
			t.Errorf("fetched %v messages while the store was blocked; want 0 < n ≤ %v", fetched, bound)
		}
		// Lag is what the group has not committed: all of it, while the
		// store is blocked.
		if lag := testutil.ToFloat64(cons.m.lag.WithLabelValues(topic, "0")); lag != total {
			t.Errorf("lag while blocked = %v, want %d", lag, total)
		}
		close(p.block)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// markProcessor records the marks each batch brings beside its events.
type markProcessor struct {
	*memProcessor
	marks []string
}

func (p *markProcessor) ProcessBatch(ctx context.Context, b *Batch) (store.Result, error) {
	r, err := p.memProcessor.Process(ctx, b.Events, b.Positions)
	if err == nil {
		p.mu.Lock()
		for _, m := range b.Marks {
			p.marks = append(p.marks, string(m.Value))
		}
		p.mu.Unlock()
	}
	return r, err
}

func (p *markProcessor) markCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.marks)
}

// TestKafkaConsumerHandsMarksToTheProcessor: messages with the mark header
// are neither decoded nor dead-lettered, even when they are no event at
// all; they reach the Processor with their batch, also a batch of marks
// only, and are committed with it.
func TestKafkaConsumerHandsMarksToTheProcessor(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 2)
		group := kafkatest.UniqueName(t, "g")
		const valid = 500
		produceEvents(t, c, topic, 0, valid)
		var marks []kafka.Message
		for i := range 20 {
			marks = append(marks, kafka.Message{Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, "mark %d", i),
				Headers: []kafka.Header{{Key: "x-mark", Value: []byte("1")}}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Produce(ctx, topic, marks...); err != nil {
			t.Fatal(err)
		}
		p := &markProcessor{memProcessor: newMemProcessor()}
		cons, err := New(Options{
			Brokers: c.Brokers, GroupID: group, Topics: []Topic{{Name: topic, Format: event.FormatNative}},
			DeadLetterTopic: topic + "-dlq", MaxBatchEvents: 300, MaxBatchWait: 50 * time.Millisecond,
			SessionTimeout: 6 * time.Second, MarkHeader: "x-mark", Processor: p, Registerer: prometheus.NewRegistry(),
			Now: func() time.Time { return testNow }, // the events are dated March 2026
		})
		if err != nil {
			t.Fatal(err)
		}
		total := int64(valid + len(marks))
		runUntil(t, cons, 90*time.Second, func() bool {
			return p.unique() == valid && p.markCount() == len(marks) && committedTotal(t, c, group, topic) == total
		})
		got := slices.Clone(p.marks)
		slices.Sort(got)
		want := make([]string, len(marks))
		for i, m := range marks {
			want[i] = string(m.Value)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("marks %v, want %v", got, want)
		}
		if n := testutil.ToFloat64(cons.m.deadLettered.WithLabelValues("malformed")); n != 0 {
			t.Errorf("%v marks dead-lettered as malformed", n)
		}
	})
}
