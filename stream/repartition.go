package stream

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

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

// outboxPrefix is the key prefix of outbox rows: outbox/<instance>/<seq>.
const outboxPrefix = "outbox/"

// recentBatches is how many batches' event keys a repartition task
// remembers to absorb outbox re-sends.
const recentBatches = 32

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

// outboxMsg is one message an outbox row holds.
type outboxMsg struct {
	Topic     string          `json:"t"`
	Key       string          `json:"k,omitempty"`
	Value     json.RawMessage `json:"v"`
	Partition *int            `json:"p,omitempty"` // set: to this partition
	Mark      bool            `json:"m,omitempty"` // a progressMark
	// Also are more destinations of the same value: an event forwarded
	// to both topics is stored in the outbox once.
	Also []outboxDest `json:"a,omitempty"`
}

// outboxDest is a topic and key an outbox message also goes to.
type outboxDest struct {
	Topic string `json:"t"`
	Key   string `json:"k"`
}

// messages are the Kafka messages m stands for.
func (m *outboxMsg) messages() []kafka.Message {
	km := kafka.Message{Topic: m.Topic, Value: m.Value}
	if m.Key != "" {
		km.Key = []byte(m.Key)
	}
	if m.Partition != nil {
		km.Headers = append(km.Headers, kafka.Header{Key: headerPartition, Value: []byte(strconv.Itoa(*m.Partition))})
	}
	if m.Mark {
		km.Headers = append(km.Headers, kafka.Header{Key: headerMark, Value: []byte("1")})
	}
	out := []kafka.Message{km}
	for _, d := range m.Also {
		out = append(out, kafka.Message{Topic: d.Topic, Key: []byte(d.Key), Value: m.Value})
	}
	return out
}

// progressMark tells a repartition task how far each input partition of a
// forwarded batch had got in event time.
type progressMark struct {
	Sources []sourceProgress `json:"s"`
}

// sourceProgress is one input partition's newest event time in a batch, per
// org.
type sourceProgress struct {
	Source string               `json:"src"` // <topic>/<partition>
	Max    map[string]time.Time `json:"max"`
}

// partitionBalancer sends a message that names its partition
// (headerPartition) there and hashes the key of any other.
type partitionBalancer struct{ hash kafka.Hash }

func (b *partitionBalancer) Balance(msg kafka.Message, partitions ...int) int {
	for _, h := range msg.Headers {
		if h.Key == headerPartition {
			if p, err := strconv.Atoi(string(h.Value)); err == nil && slices.Contains(partitions, p) {
				return p
			}
		}
	}
	return b.hash.Balance(msg, partitions...)
}

// forwarder writes the outbox rows of the main pipeline and produces them.
type forwarder struct {
	store       Store
	writer      *kafka.Writer
	log         *slog.Logger
	deviceTopic string
	teamTopic   string
	roster      func() rules.Roster // nil result: none loaded yet
	parts       map[string]int      // partitions of each repartition topic, for marks
	instance    string              // this daemon's outbox: outbox/<instance>/
	seq         atomic.Uint64
	kick        chan struct{}
	drainAll    atomic.Bool  // a rebalance: produce other daemons' rows first
	holdUntil   atomic.Int64 // unix nanoseconds: after a rebalance, produce nothing before then
	// handover is how long a rebalance holds this daemon's rows back
	// (default handoverGrace).
	handover time.Duration
	mu       sync.Mutex // one drain at a time
}

// handoverGrace is how long, after a rebalance, a daemon waits before
// producing: the previous owner of a partition may still be writing its
// last batch, whose outbox row must reach the topics before the new
// owner's rows for the same partition.
const handoverGrace = 2 * time.Second

func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// teamOf is the team bulk-access judges ev's actor by: the roster's, else
// the event's own.
func teamOf(r rules.Roster, ev *event.Event) string {
	if r != nil {
		if st, ok := r.Staff(ev.ActorOrg(), ev.Actor.ID); ok && st.Team != "" {
			return st.Team
		}
	}
	return ev.Actor.Team
}

// rows returns the outbox row forwarding fresh, then the progress of each
// of their input partitions (sourceOf); it is called by the pipeline's
// engine, so the row joins the batch's transaction.
func (f *forwarder) rows(fresh []event.Event, sourceOf func(event.Key) string) ([]store.StateEntry, error) {
	var r rules.Roster
	if f.roster != nil {
		r = f.roster()
	}
	var msgs []outboxMsg
	progress := map[string]map[string]time.Time{}
	for i := range fresh {
		ev := &fresh[i]
		src := sourceOf(ev.Key())
		pm := progress[src]
		if pm == nil {
			pm = map[string]time.Time{}
			progress[src] = pm
		}
		if ev.Time.After(pm[ev.Org]) {
			pm[ev.Org] = ev.Time.UTC()
		}
		dev := f.deviceTopic != "" && ev.Session.Device != ""
		team := ""
		if f.teamTopic != "" {
			team = teamOf(r, ev)
		}
		if !dev && team == "" {
			continue
		}
		b, err := event.Encode(ev)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		var to []outboxDest
		if dev {
			to = append(to, outboxDest{Topic: f.deviceTopic, Key: ev.Org + "\x00" + ev.Session.Device})
		}
		if team != "" {
			to = append(to, outboxDest{Topic: f.teamTopic, Key: ev.Org + "\x00" + team})
		}
		msgs = append(msgs, outboxMsg{Topic: to[0].Topic, Key: to[0].Key, Value: b, Also: to[1:]})
	}
	if len(progress) > 0 && len(f.parts) > 0 {
		var mark progressMark
		for _, src := range sortedTaskIDs(progress) {
			mark.Sources = append(mark.Sources, sourceProgress{Source: src, Max: progress[src]})
		}
		b, err := json.Marshal(mark)
		if err != nil {
			return nil, fmt.Errorf("encode progress mark: %w", err)
		}
		for _, topic := range []string{f.deviceTopic, f.teamTopic} {
			for p := range f.parts[topic] {
				msgs = append(msgs, outboxMsg{Topic: topic, Value: b, Partition: &p, Mark: true})
			}
		}
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	v, err := json.Marshal(msgs)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s%s/%016x", outboxPrefix, f.instance, f.seq.Add(1))
	return []store.StateEntry{{Key: key, Value: v}}, nil
}

// committed tells the forwarder that a batch is durable.
func (f *forwarder) committed() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// rebalanced tells the forwarder that the main consumer group moved
// partitions: after handoverGrace, by which time the previous owner's last
// batch is written, rows another daemon left for them are produced before
// this daemon's own, so that each input partition's events reach the topics
// in the order they were consumed.
func (f *forwarder) rebalanced() {
	grace := f.handover
	if grace == 0 {
		grace = handoverGrace
	}
	f.holdUntil.Store(time.Now().Add(grace).UnixNano())
	f.drainAll.Store(true)
}

// drain produces every outbox row under prefix — other daemons' first, then
// this one's, each in key (batch) order — then deletes them.
func (f *forwarder) drain(ctx context.Context, prefix string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rows, err := f.store.LoadState(ctx, prefix)
	if err != nil {
		return fmt.Errorf("load outbox: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	own := outboxPrefix + f.instance + "/"
	slices.SortFunc(rows, func(a, b store.StateEntry) int {
		if ao, bo := strings.HasPrefix(a.Key, own), strings.HasPrefix(b.Key, own); ao != bo {
			if ao {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Key, b.Key)
	})
	var out []kafka.Message
	del := make([]store.StateEntry, 0, len(rows))
	for _, row := range rows {
		var msgs []outboxMsg
		if err := json.Unmarshal(row.Value, &msgs); err != nil {
			return fmt.Errorf("outbox row %s: %w", row.Key, err)
		}
		for i := range msgs {
			out = append(out, msgs[i].messages()...)
		}
		del = append(del, store.StateEntry{Key: row.Key})
	}
	for lo := 0; lo < len(out); lo += 5000 {
		if err := f.writer.WriteMessages(ctx, out[lo:min(lo+5000, len(out))]...); err != nil {
			return fmt.Errorf("produce to repartition topics: %w", err)
		}
	}
	if _, err := f.store.Apply(ctx, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{State: del}, nil
	}); err != nil {
		return fmt.Errorf("delete produced outbox rows: %w", err)
	}
	return nil
}

// run produces the outbox: everyone's at start and every so often (rows a
// stopped or crashed daemon left), its own after every committed batch.
func (f *forwarder) run(ctx context.Context) error {
	all := time.NewTicker(30 * time.Second)
	defer all.Stop()
	own := time.NewTicker(time.Second)
	defer own.Stop()
	prefix := outboxPrefix // everyone's first
	for {
		if wait := time.Until(time.Unix(0, f.holdUntil.Load())); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue // the hold may have been extended meanwhile
		}
		if f.drainAll.Swap(false) {
			prefix = outboxPrefix
		}
		if err := f.drain(ctx, prefix); err != nil && ctx.Err() == nil {
			f.log.Warn("producing the repartition outbox failed; will retry", "err", err)
			if prefix == outboxPrefix {
				// Everyone's again, other daemons' first: retrying only
				// this daemon's rows would put them ahead.
				f.drainAll.Store(true)
			}
		}
		prefix = outboxPrefix + f.instance + "/"
		select {
		case <-ctx.Done():
			return nil
		case <-f.kick:
		case <-own.C:
		case <-all.C:
			prefix = outboxPrefix
		}
	}
}

// final produces this daemon's outbox once the consumer has stopped, so that
// the last batches' events reach the repartition topics now.
func (f *forwarder) final(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := f.drain(ctx, outboxPrefix+f.instance+"/"); err != nil {
		f.log.Warn("producing the repartition outbox at stop failed; the next start will", "err", err)
	}
	if err := f.writer.Close(); err != nil {
		f.log.Warn("close repartition writer", "err", err)
	}
}

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

// repartProcessor is the ingest.Processor of a repartition topic: it runs
// its checks in per-partition tasks over events the main pipeline already
// stored, so it writes only alerts and state. Each task's engine judges in
// event time up to the frontier its sources' progress marks allow (see the
// top of this file).
type repartProcessor struct {
	store       Store
	tasks       *taskEngine // state under <stream>/tasks/
	dedupPrefix string      // <stream>/dedup/<task id>
	// recentPrefix holds the recent event keys: <stream>/recent/<task id>/<seq>.
	recentPrefix string
	log          *slog.Logger
	wake         func()
	idleRelease  time.Duration
	// lateness is how far out of order a source's events may be: the
	// frontier trails the slowest source's progress by it.
	lateness time.Duration
	// expected are the input partitions every task waits for, even before
	// their first mark; empty: those that sent one.
	expected []string
	now      func() time.Time

	mu         sync.Mutex
	stale      bool
	dedup      map[string]*dedupState          // task id → its dedup state and sources' progress, as durable
	recent     map[string]*recentKeys          // task id → its last batches' event keys, as durable
	active     map[string]bool                 // tasks given events or marks since the last restore
	progressed map[string]map[string]time.Time // task → source → wall time its progress last moved
	sent       map[string]map[string]time.Time // task → the org frontiers its engine was last given
	restored   time.Time                       // wall time of the last restore
	lastEvents time.Time
	released   bool
}

// dedupState is what a task remembers to absorb redeliveries, and how far
// in event time each source has got (source → org → newest event time).
// The event keys of its last batches are kept apart (recentKeys), one
// entry per batch, so that a batch writes only its own.
type dedupState struct {
	Offset  int64                           `json:"o"`           // highest offset processed; -1: none
	Seq     uint64                          `json:"q,omitempty"` // the newest batch's number in recentKeys
	Sources map[string]map[string]time.Time `json:"s,omitempty"`
}

func (d *dedupState) clone() *dedupState {
	c := &dedupState{Offset: d.Offset, Seq: d.Seq, Sources: make(map[string]map[string]time.Time, len(d.Sources))}
	for src, m := range d.Sources {
		c.Sources[src] = maps.Clone(m)
	}
	return c
}

// recentKeys are the event key hashes of a task's last recentBatches
// batches, to absorb an outbox produced twice. Each batch's hashes are one
// state entry, <stream>/recent/<task>/<seq>, written with the batch and
// deleted recentBatches batches later.
type recentKeys struct {
	seqs  []uint64   // oldest first
	keys  [][]uint64 // keys[i]: batch seqs[i]'s hashes
	count map[uint64]int32
}

func newRecentKeys() *recentKeys { return &recentKeys{count: map[uint64]int32{}} }

func (r *recentKeys) has(h uint64) bool { return r.count[h] > 0 }

// add records batch seq's hashes, forgetting batches beyond recentBatches.
func (r *recentKeys) add(seq uint64, hs []uint64) {
	r.seqs, r.keys = append(r.seqs, seq), append(r.keys, hs)
	for _, h := range hs {
		r.count[h]++
	}
	for len(r.seqs) > recentBatches {
		for _, h := range r.keys[0] {
			if r.count[h]--; r.count[h] <= 0 {
				delete(r.count, h)
			}
		}
		r.seqs, r.keys = r.seqs[1:], r.keys[1:]
	}
}

func encodeHashes(hs []uint64) []byte {
	b := make([]byte, 8*len(hs))
	for i, h := range hs {
		binary.LittleEndian.PutUint64(b[8*i:], h)
	}
	return b
}

func decodeHashes(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%d bytes is no list of 8-byte hashes", len(b))
	}
	hs := make([]uint64, len(b)/8)
	for i := range hs {
		hs[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return hs, nil
}

func newRepartProcessor(st Store, stream string, newEngine func() (engine, error), log *slog.Logger, wake func(), idle time.Duration) *repartProcessor {
	t := newTaskEngine(newEngine)
	t.prefix = stream + "/tasks/"
	return &repartProcessor{store: st, tasks: t, dedupPrefix: stream + "/dedup/", recentPrefix: stream + "/recent/", log: log,
		wake: wake, idleRelease: idle, lateness: rules.DefaultLateness, now: time.Now, stale: true}
}

func (p *repartProcessor) recentKey(task string, seq uint64) string {
	return fmt.Sprintf("%s%s/%016x", p.recentPrefix, task, seq)
}

func keyHash(k event.Key) uint64 {
	h := fnv.New64a()
	for _, s := range []string{k.Org, k.System, k.ID} {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		_, _ = h.Write(n[:])
		_, _ = h.Write([]byte(s))
	}
	return h.Sum64()
}

// restore loads the durable state; mu held.
func (p *repartProcessor) restore(ctx context.Context) error {
	entries, err := p.store.LoadState(ctx, p.tasks.prefix)
	if err != nil {
		return fmt.Errorf("load check state: %w", err)
	}
	dd, err := p.store.LoadState(ctx, p.dedupPrefix)
	if err != nil {
		return fmt.Errorf("load dedup state: %w", err)
	}
	rk, err := p.store.LoadState(ctx, p.recentPrefix)
	if err != nil {
		return fmt.Errorf("load recent event keys: %w", err)
	}
	p.tasks.Reset()
	if err := p.tasks.Restore(entries); err != nil {
		return fmt.Errorf("restore check state: %w", err)
	}
	p.dedup = make(map[string]*dedupState, len(dd))
	for _, e := range dd {
		var s dedupState
		if err := json.Unmarshal(e.Value, &s); err != nil {
			return fmt.Errorf("dedup state %s: %w", e.Key, err)
		}
		p.dedup[strings.TrimPrefix(e.Key, p.dedupPrefix)] = &s
	}
	// <task id>/<seq>; a task id is <topic>/<partition>.
	slices.SortFunc(rk, func(a, b store.StateEntry) int { return strings.Compare(a.Key, b.Key) })
	p.recent = map[string]*recentKeys{}
	for _, e := range rk {
		rest := strings.TrimPrefix(e.Key, p.recentPrefix)
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			return fmt.Errorf("recent event keys %s: malformed key", e.Key)
		}
		seq, err := strconv.ParseUint(rest[i+1:], 16, 64)
		if err != nil {
			return fmt.Errorf("recent event keys %s: malformed key", e.Key)
		}
		hs, err := decodeHashes(e.Value)
		if err != nil {
			return fmt.Errorf("recent event keys %s: %w", e.Key, err)
		}
		id := rest[:i]
		if p.recent[id] == nil {
			p.recent[id] = newRecentKeys()
		}
		p.recent[id].add(seq, hs)
	}
	// Every source gets idle_release from now to show progress again.
	p.restored = p.now()
	p.active, p.progressed, p.sent = map[string]bool{}, map[string]map[string]time.Time{}, map[string]map[string]time.Time{}
	p.stale = false
	return nil
}

// Rebalanced implements ingest.Rebalancer: tasks may have moved.
func (p *repartProcessor) Rebalanced(uint64) {
	p.mu.Lock()
	p.stale = true
	p.mu.Unlock()
}

// frontiers returns task id's org frontiers: per org, the progress of its
// slowest live source less the lateness bound. A source is live unless it
// has shown no progress for idle_release; a live source that has never
// reported holds every org back. nil: no frontier can be set yet.
func (p *repartProcessor) frontiers(ds *dedupState, now time.Time, lastProgress func(src string) time.Time) map[string]time.Time {
	sources := slices.Clone(p.expected)
	for src := range ds.Sources {
		if !slices.Contains(sources, src) {
			sources = append(sources, src)
		}
	}
	var live []map[string]time.Time
	for _, src := range sources {
		last := p.restored
		if t := lastProgress(src); t.After(last) {
			last = t
		}
		if p.idleRelease > 0 && now.Sub(last) > p.idleRelease {
			continue // idle: it cannot hold the others back
		}
		prog := ds.Sources[src]
		if len(prog) == 0 {
			return nil // not heard from yet
		}
		live = append(live, prog)
	}
	if len(live) == 0 {
		return nil
	}
	return slowestLive(live, p.lateness)
}

// Process implements ingest.Processor for events that come with nothing
// but, from the context, their positions.
func (p *repartProcessor) Process(ctx context.Context, events []event.Event) (store.Result, error) {
	return p.ProcessBatch(ctx, &ingest.Batch{Events: events, Positions: store.PositionsFrom(ctx, len(events))})
}

// ProcessBatch implements ingest.BatchProcessor: the batch's events, and
// the progress its marks carry.
func (p *repartProcessor) ProcessBatch(ctx context.Context, b *ingest.Batch) (store.Result, error) {
	events := b.Events
	// The store keeps each event's position (store.WithPositions).
	ctx = store.WithPositions(ctx, b.Positions)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		if err := p.restore(ctx); err != nil {
			return store.Result{}, err
		}
	}
	now := p.now()
	positions := b.Positions
	if len(positions) != len(events) {
		positions = nil // not this batch's: better none than wrong ones
	}
	touched := map[string]*dedupState{}
	batchKeys := map[string][]uint64{}
	seen := map[string]map[uint64]bool{} // this batch's, per task
	state := func(id string) *dedupState {
		ds := touched[id]
		if ds == nil {
			ds = &dedupState{Offset: -1}
			if old := p.dedup[id]; old != nil {
				ds = old.clone()
			}
			touched[id] = ds
			seen[id] = map[uint64]bool{}
		}
		return ds
	}
	var keep []event.Event
	var keepPos []store.Position
	for i := range events {
		id, off := noPosition, int64(-1)
		if positions != nil {
			id, off = taskID(positions[i]), positions[i].Offset
		}
		ds := state(id)
		if off >= 0 && off <= ds.Offset {
			continue // redelivered
		}
		ds.Offset = max(ds.Offset, off)
		h := keyHash(events[i].Key())
		if seen[id][h] || (p.recent[id] != nil && p.recent[id].has(h)) {
			continue // re-sent from an outbox
		}
		seen[id][h] = true
		batchKeys[id] = append(batchKeys[id], h)
		keep = append(keep, events[i])
		if positions != nil {
			keepPos = append(keepPos, positions[i])
		}
	}
	// Marks after the batch's events: a mark only ever follows the events
	// it reports on, and taking progress as the batch's end holds events
	// back no less than taking it where the mark stood. A redelivered mark
	// is applied again, harmlessly: progress only grows.
	progressed := map[string]map[string]bool{}
	for _, m := range b.Marks {
		id := taskID(store.Position{Topic: m.Topic, Partition: m.Partition})
		ds := state(id)
		ds.Offset = max(ds.Offset, m.Offset)
		var mark progressMark
		if err := json.Unmarshal(m.Value, &mark); err != nil {
			p.log.Warn("ignoring an unreadable repartition progress mark", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		for _, sp := range mark.Sources {
			if ds.Sources == nil {
				ds.Sources = map[string]map[string]time.Time{}
			}
			prog := ds.Sources[sp.Source]
			if prog == nil {
				prog = map[string]time.Time{}
				ds.Sources[sp.Source] = prog
			}
			for org, t := range sp.Max {
				if t.After(prog[org]) {
					prog[org] = t.UTC()
					if progressed[id] == nil {
						progressed[id] = map[string]bool{}
					}
					progressed[id][sp.Source] = true
				}
			}
		}
	}
	if len(touched) == 0 {
		return store.Result{}, nil
	}
	var dedupRows []store.StateEntry
	fronts := map[string]map[string]time.Time{}
	progressedAt := func(id, src string) time.Time {
		if progressed[id][src] {
			return now
		}
		return p.progressed[id][src]
	}
	for _, id := range sortedTaskIDs(touched) {
		ds := touched[id]
		if hs := batchKeys[id]; len(hs) > 0 {
			ds.Seq++
			dedupRows = append(dedupRows, store.StateEntry{Key: p.recentKey(id, ds.Seq), Value: encodeHashes(hs)})
			if ds.Seq > recentBatches {
				dedupRows = append(dedupRows, store.StateEntry{Key: p.recentKey(id, ds.Seq-recentBatches)})
			}
		}
		v, err := json.Marshal(ds)
		if err != nil {
			return store.Result{}, err
		}
		dedupRows = append(dedupRows, store.StateEntry{Key: p.dedupPrefix + id, Value: v})
		// The frontier as it will stand once this batch is durable.
		if f := p.frontiers(ds, now, func(src string) time.Time { return progressedAt(id, src) }); f != nil {
			fronts[id] = f
		}
	}
	if positions == nil {
		keepPos = nil
	}
	p.tasks.setRoute(keep, keepPos)
	res, err := p.store.Apply(ctx, nil, func([]event.Event) (store.Effects, error) {
		eff, err := p.tasks.ProcessUntil(keep, fronts)
		if err != nil {
			return store.Effects{}, err
		}
		eff.State = append(eff.State, dedupRows...)
		return eff, nil
	})
	if err != nil {
		p.stale = true // the tasks may have advanced past what is durable
		return res, err
	}
	for id, ds := range touched {
		p.dedup[id] = ds
		if hs := batchKeys[id]; len(hs) > 0 {
			if p.recent[id] == nil {
				p.recent[id] = newRecentKeys()
			}
			p.recent[id].add(ds.Seq, hs)
		}
		p.active[id] = true
		if p.progressed[id] == nil {
			p.progressed[id] = map[string]time.Time{}
		}
		for src := range progressed[id] {
			p.progressed[id][src] = now
		}
		if f := fronts[id]; f != nil {
			p.sent[id] = f
		}
	}
	if len(keep) > 0 {
		p.lastEvents, p.released = now, false
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return res, nil
}

// SetRoster passes the reference data on to every task.
func (p *repartProcessor) SetRoster(r rules.Roster) { p.tasks.SetRoster(r) }

// run, every quarter of idle_release, moves the frontier of tasks whose
// slow sources have gone idle, and judges every waiting event once the
// whole stream has been idle (see pipeline.run).
func (p *repartProcessor) run(ctx context.Context) error {
	everyQuarterOf(ctx, p.idleRelease, func() {
		if err := p.advanceIdle(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("advancing repartitioned tasks past idle sources failed; will retry", "err", err)
		}
		if err := p.releaseIfIdle(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("releasing waiting repartitioned events failed; will retry", "err", err)
		}
	})
	return nil
}

// advanceIdle moves the frontier of this daemon's tasks where a source has
// gone idle since their last batch.
func (p *repartProcessor) advanceIdle(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		return nil // restored with the next batch
	}
	now := p.now()
	fronts := map[string]map[string]time.Time{}
	for id := range p.active {
		ds := p.dedup[id]
		if ds == nil {
			continue
		}
		f := p.frontiers(ds, now, func(src string) time.Time { return p.progressed[id][src] })
		for org, t := range f {
			if t.After(p.sent[id][org]) {
				fronts[id] = f
				break
			}
		}
	}
	if len(fronts) == 0 {
		return nil
	}
	p.tasks.setRoute(nil, nil)
	res, err := p.store.Apply(ctx, nil, func([]event.Event) (store.Effects, error) { return p.tasks.ProcessUntil(nil, fronts) })
	if err != nil {
		p.stale = true
		return err
	}
	for id, f := range fronts {
		p.sent[id] = f
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return nil
}

func (p *repartProcessor) releaseIfIdle(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released || p.lastEvents.IsZero() || time.Since(p.lastEvents) < p.idleRelease {
		return nil
	}
	if p.stale {
		if err := p.restore(ctx); err != nil {
			return err
		}
	}
	res, err := p.store.Apply(ctx, nil, func([]event.Event) (store.Effects, error) { return p.tasks.Flush(), nil })
	if err != nil {
		p.stale = true
		return err
	}
	p.released = true
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return nil
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
	if !slices.Contains(device.Disabled, rules.CheckBulkAccess) {
		device.Disabled = append(device.Disabled, rules.CheckBulkAccess)
	}
	if !slices.Contains(team.Disabled, rules.CheckUnlockedSession) {
		team.Disabled = append(team.Disabled, rules.CheckUnlockedSession)
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
		if slices.Contains(spec.opts.Disabled, rules.CheckUnlockedSession) && slices.Contains(spec.opts.Disabled, rules.CheckBulkAccess) {
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
