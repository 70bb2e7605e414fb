// Package kafkaref reads the reference data of CONTRACT §2 from compacted
// Kafka topics, one per kind of row, as JSON objects whose keys are the CSV
// column names (see Messages and the *Key functions for the producer side).
//
// Each topic is read like a KTable: from the beginning, by a plain reader per
// partition (no consumer group, nothing committed), into an in-memory table
// of the latest row per message key. A null value (tombstone) deletes a row.
// Once every partition has been read up to the high-water mark it had at
// start, the complete data is handed to Options.Apply; after that every
// change is, at most once per PublishInterval.
//
// A message that is not a valid row is skipped — logged with its topic,
// partition, offset and field (never a value) and counted — and removes any
// earlier row of its key: the latest message of a key is the truth, so the
// result is the same after every restart whatever compaction has removed.
package kafkaref

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/reference"
)

// Options configures a Loader. Every field but Brokers and Apply has a safe
// zero value.
type Options struct {
	Brokers  []string
	ClientID string // default "dpiawatch"
	// Topics maps each kind read from Kafka to its topic. Nil reads every
	// kind from its DefaultTopic; a kind missing (or mapped to "") is not
	// read from Kafka at all.
	Topics map[Kind]string
	TLS    ingest.TLS
	SASL   ingest.SASL

	// Apply receives each snapshot: the rows of the kinds read from Kafka
	// (the other kinds are empty; see Overlay). It is called from one
	// goroutine, never concurrently; the Data is never modified afterwards
	// and may be kept.
	Apply func(ctx context.Context, d *reference.Data)
	// PublishInterval is the least time between two snapshots after the
	// first; default 5s. Building an Index over a county's rows takes about
	// a second: publishing on every message would do little else.
	PublishInterval time.Duration
	// RetryInterval is the wait before asking again for topics that do not
	// exist yet; default 5s.
	RetryInterval time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Loader reads the reference topics. Run it once.
type Loader struct {
	o      Options
	kinds  []Kind
	dialer *kafka.Dialer
	client *kafka.Client
	m      metrics
	ready  atomic.Bool
}

type metrics struct {
	invalid   *prometheus.CounterVec
	rows      *prometheus.GaugeVec
	snapshots prometheus.Counter
	ready     prometheus.Gauge
}

// New checks o and builds a Loader; it does not contact the brokers until
// Run.
func New(o Options) (*Loader, error) {
	if len(o.Brokers) == 0 {
		return nil, errors.New("kafkaref: no brokers")
	}
	if o.Apply == nil {
		return nil, errors.New("kafkaref: no Apply function")
	}
	if o.Topics == nil {
		o.Topics = map[Kind]string{}
		for _, k := range Kinds() {
			if k != KindSubjects { // optional: read only when named
				o.Topics[k] = DefaultTopic(k)
			}
		}
	}
	l := &Loader{o: o}
	seen := map[string]Kind{}
	for _, k := range Kinds() {
		t := o.Topics[k]
		if t == "" {
			continue
		}
		if prev, dup := seen[t]; dup {
			return nil, fmt.Errorf("kafkaref: topic %q is given for both %s and %s", t, prev, k)
		}
		seen[t] = k
		l.kinds = append(l.kinds, k)
	}
	for k := range o.Topics {
		if !slices.Contains(Kinds(), k) {
			return nil, fmt.Errorf("kafkaref: unknown kind %q", k)
		}
	}
	if len(l.kinds) == 0 {
		return nil, errors.New("kafkaref: no topics")
	}
	l.o.ClientID = cmp.Or(o.ClientID, "dpiawatch")
	l.o.PublishInterval = cmp.Or(o.PublishInterval, 5*time.Second)
	l.o.RetryInterval = cmp.Or(o.RetryInterval, 5*time.Second)
	if l.o.Logger == nil {
		l.o.Logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := o.TLS.Config()
	if err != nil {
		return nil, err
	}
	mech, err := o.SASL.SASLMechanism()
	if err != nil {
		return nil, err
	}
	l.dialer = &kafka.Dialer{ClientID: l.o.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: tlsCfg, SASLMechanism: mech}
	l.client = &kafka.Client{Addr: kafka.TCP(o.Brokers...), Timeout: 30 * time.Second,
		Transport: &kafka.Transport{ClientID: l.o.ClientID, TLS: tlsCfg, SASL: mech, DialTimeout: 10 * time.Second}}

	f := promauto.With(o.Registerer)
	l.m = metrics{
		invalid: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_reference_invalid_rows_total", Help: "Reference rows skipped as invalid, by kind.",
		}, []string{"kind"}),
		rows: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_reference_kafka_rows", Help: "Reference rows currently held from Kafka, by kind.",
		}, []string{"kind"}),
		snapshots: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_reference_kafka_snapshots_total", Help: "Reference data snapshots published from Kafka.",
		}),
		ready: f.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_reference_kafka_ready", Help: "1 once the reference topics have been read up to their end at start.",
		}),
	}
	for _, k := range l.kinds {
		l.m.invalid.WithLabelValues(string(k))
		l.m.rows.WithLabelValues(string(k))
	}
	return l, nil
}

// Kinds returns the kinds read from Kafka: those Overlay takes from it.
func (l *Loader) Kinds() []Kind { return slices.Clone(l.kinds) }

// Ready reports whether the first snapshot has been published.
func (l *Loader) Ready() bool { return l.ready.Load() }

// msg is one fetched message with where it came from.
type msg struct {
	kind      Kind
	partition int
	m         kafka.Message
}

// partitionKey names one partition being caught up.
type partitionKey struct {
	kind      Kind
	partition int
}

// Run reads the topics until ctx ends; it returns nil then. Topics that do
// not exist yet are waited for. Partitions added to a topic after Run
// started are read after a restart.
func (l *Loader) Run(ctx context.Context) error {
	ends, err := l.partitions(ctx)
	if err != nil {
		return nil //nolint:nilerr // only ctx ends the wait
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan msg, 4096)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // readers stop before Run returns
	pending := map[partitionKey]int64{}
	for k, ps := range ends {
		for p, end := range ps {
			if end.end > end.first {
				pending[partitionKey{k, p}] = end.end
			}
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers:   l.o.Brokers,
				Topic:     l.o.Topics[k],
				Partition: p,
				Dialer:    l.dialer,
				MinBytes:  1,
				MaxBytes:  8 << 20,
				MaxWait:   500 * time.Millisecond,
				// Non-group readers start at the first offset.
				QueueCapacity: 1000,
			})
			wg.Go(func() {
				defer r.Close()
				for {
					m, err := r.FetchMessage(ctx)
					if err != nil {
						return // ctx ended; kafka-go retries the rest itself
					}
					select {
					case msgs <- msg{kind: k, partition: p, m: m}:
					case <-ctx.Done():
						return
					}
				}
			})
		}
	}
	l.consume(ctx, msgs, pending)
	return nil
}

type offsets struct{ first, end int64 }

// partitions finds every partition of every topic and its offsets now,
// waiting for topics that do not exist yet.
func (l *Loader) partitions(ctx context.Context) (map[Kind]map[int]offsets, error) {
	log := l.o.Logger
	warned := map[string]bool{}
	for {
		ends, missing, err := l.listPartitions(ctx)
		if err == nil && len(missing) == 0 {
			return ends, nil
		}
		if err != nil {
			log.Warn("reference topics not read yet; retrying", "err", err)
		}
		for _, t := range missing {
			if !warned[t] {
				warned[t] = true
				log.Warn("reference topic does not exist yet; waiting for it", "topic", t)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(l.o.RetryInterval):
		}
	}
}

func (l *Loader) listPartitions(ctx context.Context) (map[Kind]map[int]offsets, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics := make([]string, len(l.kinds))
	kindOf := map[string]Kind{}
	for i, k := range l.kinds {
		topics[i] = l.o.Topics[k]
		kindOf[topics[i]] = k
	}
	md, err := l.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: %w", err)
	}
	reqs := map[string][]kafka.OffsetRequest{}
	var missing []string
	for _, t := range md.Topics {
		if _, ok := kindOf[t.Name]; !ok {
			continue
		}
		if t.Error != nil || len(t.Partitions) == 0 {
			missing = append(missing, t.Name)
			continue
		}
		for _, p := range t.Partitions {
			reqs[t.Name] = append(reqs[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	for _, t := range topics {
		if _, ok := reqs[t]; !ok && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, missing, nil
	}
	res, err := l.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: reqs})
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[Kind]map[int]offsets{}
	for t, ps := range res.Topics {
		k, ok := kindOf[t]
		if !ok {
			continue
		}
		out[k] = map[int]offsets{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, nil, fmt.Errorf("list offsets of %s partition %d: %w", t, p.Partition, p.Error)
			}
			out[k][p.Partition] = offsets{first: p.FirstOffset, end: p.LastOffset}
		}
		if len(out[k]) != len(reqs[t])/2 {
			return nil, nil, fmt.Errorf("list offsets of %s: %d of %d partitions answered", t, len(out[k]), len(reqs[t])/2)
		}
	}
	return out, nil, nil
}

// maxLoggedInvalid bounds the invalid rows logged one by one between two
// snapshots: a wholly broken topic must not flood the log.
const maxLoggedInvalid = 20

// consume applies messages to the tables and publishes snapshots, from one
// goroutine, until ctx ends.
func (l *Loader) consume(ctx context.Context, msgs <-chan msg, pending map[partitionKey]int64) {
	var (
		ts        = newTables()
		dec       = newDecoder()
		dirty     = true // the first snapshot is due even if every topic is empty
		last      time.Time
		timer     = time.NewTimer(0)
		timerOn   = false
		logged    = 0
		unlogged  = 0
		started   = time.Now()
		log       = l.o.Logger
		timerChan <-chan time.Time
	)
	if !timer.Stop() {
		<-timer.C
	}
	publish := func() {
		d := ts.snapshot()
		for _, k := range l.kinds {
			l.m.rows.WithLabelValues(string(k)).Set(float64(ts.len(k)))
		}
		l.o.Apply(ctx, d)
		l.m.snapshots.Inc()
		if !l.ready.Load() {
			l.ready.Store(true)
			l.m.ready.Set(1)
			log.Info("reference data read from Kafka", "staff", len(d.Staff), "relationships", len(d.Relationships),
				"shifts", len(d.Shifts), "absences", len(d.Absences), "devices", len(d.Devices),
				"sharing_agreements", len(d.SharingAgreements), "subjects", len(d.Subjects), "took", time.Since(started).Round(time.Millisecond))
		}
		if unlogged > 0 {
			log.Warn("more invalid reference rows were skipped than logged", "not_logged", unlogged)
		}
		dirty, last, logged, unlogged = false, time.Now(), 0, 0
	}
	// schedule publishes now or as soon as PublishInterval allows.
	schedule := func() {
		if !dirty || len(pending) > 0 || timerOn {
			return
		}
		wait := l.o.PublishInterval - time.Since(last)
		if last.IsZero() || wait <= 0 {
			publish()
			return
		}
		timer.Reset(wait)
		timerOn, timerChan = true, timer.C
	}
	schedule()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timerChan:
			timerOn, timerChan = false, nil
			schedule()
		case mm := <-msgs:
			changed, err := ts.apply(dec, mm.kind, mm.m.Key, mm.m.Value)
			dirty = dirty || changed
			if err != nil {
				l.m.invalid.WithLabelValues(string(mm.kind)).Inc()
				re := &RowError{Topic: mm.m.Topic, Partition: mm.partition, Offset: mm.m.Offset, Msg: err.Error()}
				var fe *fieldError
				if errors.As(err, &fe) {
					re.Field, re.Msg = fe.field, fe.msg
				}
				if logged < maxLoggedInvalid {
					logged++
					log.Warn("invalid reference row skipped", "kind", string(mm.kind), "topic", re.Topic,
						"partition", re.Partition, "offset", re.Offset, "field", re.Field, "reason", re.Msg)
				} else {
					unlogged++
				}
			}
			pk := partitionKey{mm.kind, mm.partition}
			if end, ok := pending[pk]; ok && mm.m.Offset+1 >= end {
				delete(pending, pk)
			}
			schedule()
		}
	}
}
