package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/backoff"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// Processor makes a batch of valid events durable and checked. It must be
// all-or-nothing: on error nothing of the batch may remain applied, because
// the consumer will offer the same batch again.
//
// positions[i] is where events[i] was read from, for the store to keep
// (see store.Writer.Apply); nil when the events did not come from Kafka.
type Processor interface {
	Process(ctx context.Context, events []event.Event, positions []store.Position) (store.Result, error)
}

// Batch is a batch of valid events with what travels with them from
// Kafka, as a BatchProcessor gets it.
type Batch struct {
	// Seq numbers the batches in consumption order from 0; a retried batch
	// keeps its number.
	Seq    uint64
	Events []event.Event
	// Positions[i] is where Events[i] was read from.
	Positions []store.Position
	// Fetched is where each partition with a message in the batch (events,
	// dead letters and marks alike) stood against its high watermark when
	// its last message was fetched (partitions.go).
	Fetched []PartitionFetch
	// Marks are the batch's control messages (Options.MarkHeader), in
	// offset order per partition; nil when it had none.
	Marks []Mark
}

// BatchProcessor is a Processor given the whole Batch: the consumer calls
// ProcessBatch, with Process's all-or-nothing contract, instead of Process.
type BatchProcessor interface {
	Processor
	ProcessBatch(ctx context.Context, b *Batch) (store.Result, error)
}

// Preparer is a BatchProcessor that can start work on a batch before the
// previous one is durable — the daemon runs the checks on batch n+1 while
// batch n is written. Prepare is called once per batch, in batch order,
// from one goroutine; ProcessBatch then gets the same Batch, retried ones
// included. What Prepare computed is the Preparer's to keep, by Batch.Seq.
type Preparer interface {
	BatchProcessor
	Prepare(ctx context.Context, b *Batch)
}

// ConflictRecorder is a Processor told, once a batch's conflicting
// duplicates (store.Result.Conflicts) are in the dead-letter topic, to
// record them durably, before the batch's offsets are committed. A
// Processor that records them must leave conflicts it has recorded out of
// the Result of a redelivered batch, so that a batch replayed after a crash
// dead-letters and alerts nothing twice; one that does not implement it gets
// every conflict dead-lettered each time it is reported.
type ConflictRecorder interface {
	RecordConflicts(ctx context.Context, conflicts []store.Conflict) error
}

// Rebalancer is a Processor told when the consumer group has moved
// partitions, before the first batch applied after the move: state it keeps
// per partition may have been advanced elsewhere meanwhile.
type Rebalancer interface {
	Rebalanced(seq uint64)
}

// Dead-letter headers. Values never echo message content.
const (
	HeaderReason    = "dpiawatch-reason"
	HeaderDetail    = "dpiawatch-detail"
	HeaderTopic     = "dpiawatch-source-topic"
	HeaderPartition = "dpiawatch-source-partition"
	HeaderOffset    = "dpiawatch-source-offset"
	HeaderTruncated = "dpiawatch-truncated"
	// HeaderPath is the FHIR path of the offending element
	// ("Bundle.entry[2].resource.agent[0].who"), when known.
	HeaderPath = "dpiawatch-fhir-path"
	// HeaderEntry is the index of the Bundle entry a dead letter holds:
	// its value is then that entry's resource, not the whole Bundle.
	HeaderEntry = "dpiawatch-bundle-entry"
)

// maxDeadLetterValue keeps a dead letter under brokers' default message size
// limit (1 MiB), so that an oversized input cannot wedge the dead-letter path.
const maxDeadLetterValue = 512 << 10

// Consumer reads access events from Kafka as one member of a consumer group.
type Consumer struct {
	o        Options
	reader   *kafka.Reader
	dlq      *kafka.Writer
	decoders map[string]*event.Decoder
	m        *metrics

	admin      *kafka.Client
	dlqCreated bool // the dead-letter topic is known to exist

	parts partitionList // the input topics' partitions (partitions.go)

	readyMu sync.Mutex
	ready   bool
	members atomic.Int64 // of the consumer group, as last measured
}

type batch struct {
	Batch    // what the Processor is given
	msgs     []kafka.Message
	eventMsg []int // eventMsg[i] is the index in msgs of Events[i]
	// eventEntry[i] is the Bundle entry Events[i] came from (Entry -1:
	// the whole message), for its dead letter should it conflict.
	eventEntry []bundleEntry
	dead       []kafka.Message
	reason     []event.Reason
	start      time.Time
}

// bundleEntry is where in its message an event was: a Bundle entry and
// its resource, or entry -1 for the whole message.
type bundleEntry struct {
	entry    int
	resource []byte
}

// New builds a Consumer; it does not contact the brokers until Run.
func New(o Options) (*Consumer, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	tlsCfg, err := o.TLS.Config()
	if err != nil {
		return nil, err
	}
	mech, err := o.SASL.SASLMechanism()
	if err != nil {
		return nil, err
	}
	topics := make([]string, len(o.Topics))
	decoders := make(map[string]*event.Decoder, len(o.Topics))
	for i, t := range o.Topics {
		topics[i] = t.Name
		decoders[t.Name] = event.NewDecoder(event.DecoderOptions{Format: t.Format, Org: t.Org, System: t.System, MaxBytes: o.MaxEventBytes, FHIR: t.FHIR})
	}
	dialer := &kafka.Dialer{ClientID: o.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: tlsCfg, SASLMechanism: mech}
	log := o.Logger
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     o.Brokers,
		GroupID:     o.GroupID,
		GroupTopics: topics,
		Dialer:      dialer,
		// Bounded memory under backpressure: kafka-go buffers at most
		// QueueCapacity messages, we at most QueueBatches batches.
		QueueCapacity: o.MaxBatchEvents,
		MinBytes:      1,
		// 1 MiB per partition fetch (about 2,500 events) rather than
		// kafka-go's usual 8: in a catch-up the partitions then interleave
		// finely, so fewer events wait for the slowest one (and are
		// checkpointed while they wait). Measured with dpiawatch bench.
		MaxBytes:       1 << 20,
		MaxWait:        250 * time.Millisecond,
		CommitInterval: 0, // synchronous commits, only when we call CommitMessages
		StartOffset:    kafka.FirstOffset,
		// A new group must read everything already on the topic: nothing lost.
		WatchPartitionChanges: true,
		HeartbeatInterval:     min(3*time.Second, o.SessionTimeout/3),
		SessionTimeout:        o.SessionTimeout,
		RebalanceTimeout:      30 * time.Second,
		JoinGroupBackoff:      time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			detail := fmt.Sprintf(msg, args...)
			// A long-poll fetch that a broker answers just after kafka-go's
			// own deadline surfaces as an i/o timeout and is retried at
			// once: routine, not worth a warning.
			if strings.Contains(detail, "i/o timeout") {
				log.Debug("kafka reader", "detail", detail)
				return
			}
			log.Warn("kafka reader", "detail", detail)
		}),
	})
	transport := &kafka.Transport{ClientID: o.ClientID, TLS: tlsCfg, SASL: mech, DialTimeout: 10 * time.Second}
	dlq := &kafka.Writer{
		Addr:                   kafka.TCP(o.Brokers...),
		Topic:                  o.DeadLetterTopic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchTimeout:           10 * time.Millisecond,
		Transport:              transport,
	}
	admin := &kafka.Client{Addr: kafka.TCP(o.Brokers...), Transport: transport, Timeout: 30 * time.Second}
	return &Consumer{o: o, reader: reader, dlq: dlq, admin: admin, decoders: decoders, m: newMetrics(o.Registerer, topics, o.KnownOrgs)}, nil
}

// Ready reports whether, since it started, the consumer's group has joined
// with the committed positions of its partitions known (measureReady), or
// the consumer has fetched from or committed to the brokers: the brokers
// answer and the group consumes, also from an empty topic. It stays true.
func (c *Consumer) Ready() bool {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	return c.ready
}

func (c *Consumer) setReady() {
	c.readyMu.Lock()
	c.ready = true
	c.readyMu.Unlock()
}

// Run consumes until ctx is cancelled, then drains: the batches already
// fetched are applied and committed (bounded by DrainTimeout) before the
// reader leaves the group. It returns nil after a clean stop.
func (c *Consumer) Run(ctx context.Context) error {
	// work outlives ctx by the drain: stages downstream of the fetch stop
	// when the fetch has stopped and everything fetched is handled, or when
	// the drain deadline passes.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(c.o.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			c.o.Logger.Warn("drain timeout: stopping without committing the rest", "timeout", c.o.DrainTimeout)
			cancelWork()
		case <-work.Done():
		}
	}()

	msgs := make(chan kafka.Message, 256)
	raw := make(chan *batch, c.o.QueueBatches)
	decoded := make(chan *batch, 1)
	errc := make(chan error, 3)

	go c.pollLag(work, c.o.LagInterval)
	// The partitions are known before the first message is fetched: a
	// Processor must not judge past a partition it has not heard from.
	c.watchPartitions(ctx, c.o.LagInterval)
	go func() { errc <- c.fetch(ctx, msgs) }()
	go func() { c.batch(msgs, raw); errc <- nil }()
	go func() { c.decodeStage(work, raw, decoded); errc <- nil }()
	err := c.applyStage(work, decoded)

	// applyStage returns when decoded is closed (normal) or work is
	// cancelled; collect the others.
	cancelWork()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for range 3 {
		if e := <-errc; e != nil {
			errs = append(errs, e)
		}
	}
	if e := c.reader.Close(); e != nil {
		errs = append(errs, fmt.Errorf("close kafka reader: %w", e))
	}
	if e := c.dlq.Close(); e != nil {
		errs = append(errs, fmt.Errorf("close dead-letter writer: %w", e))
	}
	return errors.Join(errs...)
}

// fetch reads messages until ctx ends, then closes out.
func (c *Consumer) fetch(ctx context.Context, out chan<- kafka.Message) error {
	defer close(out)
	for {
		m, err := c.reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			c.m.fetchErrors.Inc()
			c.o.Logger.Warn("kafka fetch failed", "err", err)
			if backoff.Sleep(ctx, time.Second) != nil {
				return nil
			}
			continue
		}
		c.setReady()
		c.m.consumed.WithLabelValues(m.Topic).Inc()
		select {
		case out <- m:
		case <-ctx.Done():
			// The message is not lost: it is not committed, so the group
			// redelivers it.
			return nil
		}
	}
}

// batch cuts the message stream into batches by size and age.
func (c *Consumer) batch(in <-chan kafka.Message, out chan<- *batch) {
	defer close(out)
	var cur *batch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if cur != nil && len(cur.msgs) > 0 {
			out <- cur
		}
		cur = nil
		timer.Stop()
	}
	for {
		select {
		case m, ok := <-in:
			if !ok {
				flush()
				return
			}
			if cur == nil {
				cur = &batch{msgs: make([]kafka.Message, 0, c.o.MaxBatchEvents), start: time.Now()}
				timer.Reset(c.o.MaxBatchWait)
			}
			cur.msgs = append(cur.msgs, m)
			if len(cur.msgs) >= c.o.MaxBatchEvents {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// decodeStage decodes each batch, splitting it across DecodeWorkers, and
// lets a Preparer start on it while the batch before is being applied.
func (c *Consumer) decodeStage(ctx context.Context, in <-chan *batch, out chan<- *batch) {
	defer close(out)
	pp, _ := c.o.Processor.(Preparer)
	var seq uint64
	for b := range in {
		c.decode(b)
		b.Seq = seq
		seq++
		if pp != nil {
			pp.Prepare(ctx, &b.Batch)
		}
		out <- b
	}
}

func (c *Consumer) decode(b *batch) {
	n := len(b.msgs)
	// A message holds one event, or one per entry of a FHIR Bundle: each
	// entry is kept or dead-lettered on its own.
	res := make([][]event.Decoded, n)
	isMark := make([]bool, n)
	if c.o.MarkHeader != "" {
		for i := range b.msgs {
			isMark[i] = hasHeader(&b.msgs[i], c.o.MarkHeader)
		}
	}
	now := c.o.Now()
	workers := min(c.o.DecodeWorkers, max(1, n/512))
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		wg.Go(func() {
			// One backing array per worker: most messages hold one event.
			buf := make([]event.Decoded, 0, hi-lo)
			for i := lo; i < hi; i++ {
				m := &b.msgs[i]
				if isMark[i] {
					continue
				}
				start := len(buf)
				buf = c.decoders[m.Topic].DecodeAll(m.Value, buf)
				res[i] = buf[start:len(buf):len(buf)]
				for j := range res[i] {
					d := &res[i][j]
					if d.Err == nil && c.o.KnownOrgs != nil && !c.o.KnownOrgs[d.Event.Org] {
						d.Err = &event.Error{Reason: event.ReasonUnknownOrg, Detail: "org is not configured"}
					}
					if d.Err == nil {
						d.Err = c.o.EventTime.Check(&d.Event, now)
					}
				}
			}
		})
	}
	wg.Wait()
	b.Fetched = fetchedOf(b.msgs)
	b.Events = make([]event.Event, 0, n)
	b.Positions = make([]store.Position, 0, n)
	b.eventMsg = make([]int, 0, n)
	b.eventEntry = make([]bundleEntry, 0, n)
	b.Marks = nil
	for i := range n {
		m := &b.msgs[i]
		if isMark[i] {
			b.Marks = append(b.Marks, Mark{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Value: m.Value})
			continue
		}
		for j := range res[i] {
			d := &res[i][j]
			if d.Err == nil {
				b.Events = append(b.Events, d.Event)
				b.Positions = append(b.Positions, store.Position{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
				b.eventMsg = append(b.eventMsg, i)
				b.eventEntry = append(b.eventEntry, bundleEntry{d.Entry, d.Resource})
				continue
			}
			var de *event.Error
			if !errors.As(d.Err, &de) {
				de = &event.Error{Reason: event.ReasonMalformed, Detail: d.Err.Error()}
			}
			b.dead = append(b.dead, deadLetter(*m, de, d.Entry, d.Resource))
			b.reason = append(b.reason, de.Reason)
		}
	}
}

func hasHeader(m *kafka.Message, key string) bool {
	for _, h := range m.Headers {
		if h.Key == key {
			return true
		}
	}
	return false
}

// Mark is a control message of a batch (Options.MarkHeader).
type Mark struct {
	Topic     string
	Partition int
	Offset    int64
	Value     []byte
}

// deadLetter is the dead letter of m, or of its Bundle entry entry (>= 0),
// whose resource, when given, is the dead letter's value (a kept entry
// found to be a conflicting duplicate has none: the whole Bundle goes).
func deadLetter(m kafka.Message, e *event.Error, entry int, resource []byte) kafka.Message {
	value := m.Value
	headers := []kafka.Header{
		{Key: HeaderReason, Value: []byte(e.Reason)},
		{Key: HeaderDetail, Value: []byte(e.Detail)},
		{Key: HeaderTopic, Value: []byte(m.Topic)},
		{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
		{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	}
	if e.Path != "" {
		headers = append(headers, kafka.Header{Key: HeaderPath, Value: []byte(e.Path)})
	}
	if entry >= 0 {
		if resource != nil {
			value = resource
		}
		headers = append(headers, kafka.Header{Key: HeaderEntry, Value: []byte(strconv.Itoa(entry))})
	}
	if len(value) > maxDeadLetterValue {
		value = value[:maxDeadLetterValue]
		headers = append(headers, kafka.Header{Key: HeaderTruncated, Value: []byte("true")})
	}
	return kafka.Message{Key: m.Key, Value: value, Headers: headers}
}

// applyStage makes each batch durable, dead-letters its invalid messages and
// commits its offsets, in order; a failing step is retried, never skipped.
func (c *Consumer) applyStage(ctx context.Context, in <-chan *batch) error {
	for b := range in {
		if err := c.apply(ctx, b); err != nil {
			// Only a cancelled work context ends a retry loop: the batch
			// stays uncommitted and is redelivered after restart.
			for range in { //nolint:revive // drain so upstream stages can exit
			}
			return nil
		}
	}
	return nil
}

func (c *Consumer) apply(ctx context.Context, b *batch) error {
	c.m.batchSize.Observe(float64(len(b.msgs)))
	// Stats counts since its last call: any rebalance since the last batch.
	if rb, ok := c.o.Processor.(Rebalancer); ok && c.reader.Stats().Rebalances > 0 {
		c.m.rebalances.Inc()
		rb.Rebalanced(b.Seq)
		go func() { // who shares the group now, without waiting for the lag poll
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := c.measureMembers(ctx); err != nil {
				c.o.Logger.Debug("consumer group members not counted", "err", err)
			}
		}()
	}
	var res store.Result
	bp, _ := c.o.Processor.(BatchProcessor)
	err := c.retry(ctx, "apply", func() error {
		var err error
		if bp != nil {
			res, err = bp.ProcessBatch(ctx, &b.Batch)
		} else {
			res, err = c.o.Processor.Process(ctx, b.Events, b.Positions)
		}
		return err
	})
	if err != nil {
		return err
	}
	// Conflicting duplicates (Index is the position in b.Events the
	// Processor was given) go with the batch's invalid messages.
	dead, reasons := slices.Clip(b.dead), slices.Clip(b.reason)
	for _, cf := range res.Conflicts {
		de := &event.Error{Reason: event.ReasonConflictingDuplicate, Detail: "same org, system and id as a kept event; differs in " + strings.Join(cf.Fields, ", ")}
		from := &b.eventEntry[cf.Index]
		dead = append(dead, deadLetter(b.msgs[b.eventMsg[cf.Index]], de, from.entry, from.resource))
		reasons = append(reasons, de.Reason)
	}
	if len(dead) > 0 {
		if err := c.retry(ctx, "dead-letter", func() error {
			if err := c.ensureDeadLetterTopic(ctx); err != nil {
				return err
			}
			return c.dlq.WriteMessages(ctx, dead...)
		}); err != nil {
			return err
		}
		for _, r := range reasons {
			c.m.deadLettered.WithLabelValues(string(r)).Inc()
		}
		for _, cf := range res.Conflicts {
			c.m.conflicts.WithLabelValues(c.orgLabel(cf.Event.Org)).Inc()
			// The event id and field names only: the values may be personal data.
			c.o.Logger.Warn("conflicting duplicate event dead-lettered: same id as a kept event, other content",
				"org", cf.Event.Org, "system", cf.Event.System, "event_id", cf.Event.ID, "fields", strings.Join(cf.Fields, ","))
		}
	}
	if cr, ok := c.o.Processor.(ConflictRecorder); ok && len(res.Conflicts) > 0 {
		if err := c.retry(ctx, "record-conflicts", func() error { return cr.RecordConflicts(ctx, res.Conflicts) }); err != nil {
			return err
		}
	}
	// A failed commit loses nothing: the batch is redelivered and absorbed
	// by deduplication. So it is retried a little, then left.
	if err := c.reader.CommitMessages(ctx, b.msgs...); err != nil {
		c.m.commitErrors.Inc()
		c.o.Logger.Warn("kafka commit failed; the batch will be redelivered and deduplicated", "err", err, "messages", len(b.msgs))
	} else {
		c.setReady()
	}
	now := time.Now()
	c.m.stored.Add(float64(res.Stored))
	c.m.duplicates.Add(float64(res.Duplicates))
	c.m.batchDuration.Observe(now.Sub(b.start).Seconds())
	for i := range b.msgs {
		if !b.msgs[i].Time.IsZero() {
			c.m.latency.Observe(now.Sub(b.msgs[i].Time).Seconds())
		}
	}
	if c.o.OnBatch != nil {
		c.o.OnBatch(BatchInfo{Messages: b.msgs, Stored: res.Stored, Duplicates: res.Duplicates, DeadLetter: len(b.dead), Alerts: res.Alerts, Committed: now})
	}
	return nil
}

// orgLabel bounds the org label of the conflicts metric to the configured
// orgs (KnownOrgs); without them every org is "other".
func (c *Consumer) orgLabel(org string) string {
	if c.o.KnownOrgs[org] {
		return org
	}
	return "other"
}

// ensureDeadLetterTopic creates the dead-letter topic with the broker's
// default partitions and replication unless it exists: brokers commonly
// refuse automatic topic creation, and a dead letter must not wait for an
// operator.
func (c *Consumer) ensureDeadLetterTopic(ctx context.Context) error {
	if c.dlqCreated {
		return nil
	}
	res, err := c.admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: c.o.DeadLetterTopic, NumPartitions: -1, ReplicationFactor: -1}},
	})
	if err != nil {
		return fmt.Errorf("create dead-letter topic %s: %w", c.o.DeadLetterTopic, err)
	}
	if err := res.Errors[c.o.DeadLetterTopic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create dead-letter topic %s: %w", c.o.DeadLetterTopic, err)
	}
	c.dlqCreated = true
	return nil
}

// retry runs fn until it succeeds or ctx ends, backing off exponentially
// with full jitter between attempts (package backoff).
func (c *Consumer) retry(ctx context.Context, stage string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.m.retries.WithLabelValues(stage).Inc()
		c.o.Logger.Warn("batch step failed; retrying", "stage", stage, "attempt", attempt+1, "err", err)
		if err := backoff.Sleep(ctx, c.o.retryBackoff().Wait(attempt)); err != nil {
			return err
		}
	}
}
