package daemon

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
	"slices"
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
// delete, or a daemon that stopped) is produced again. The repartition
// topics may therefore hold an event twice; each task absorbs that by
// remembering the highest offset it processed (a redelivery) and the event
// keys of its last batches (an outbox re-send).

// outboxPrefix is the key prefix of outbox rows: outbox/<instance>/<seq>.
const outboxPrefix = "outbox/"

// recentBatches is how many batches' event keys a repartition task
// remembers to absorb outbox re-sends.
const recentBatches = 32

// Stream names: the suffix of the topic and group, and the state prefix.
const (
	streamDevice = "by-device"
	streamTeam   = "by-team"
)

// outboxMsg is one message an outbox row holds.
type outboxMsg struct {
	Topic string          `json:"t"`
	Key   string          `json:"k"`
	Value json.RawMessage `json:"v"`
}

// forwarder writes the outbox rows of the main pipeline and produces them.
type forwarder struct {
	store       store.Store
	writer      *kafka.Writer
	log         *slog.Logger
	deviceTopic string
	teamTopic   string
	roster      func() rules.Roster // nil result: none loaded yet
	instance    string              // this daemon's outbox: outbox/<instance>/
	seq         atomic.Uint64
	kick        chan struct{}
	mu          sync.Mutex // one drain at a time
}

func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// teamOf is the team bulk-access judges ev's actor by: the roster's, else
// the event's own.
func teamOf(r rules.Roster, ev *event.Event) string {
	if r != nil {
		if st, ok := r.Staff(ev.Actor.ID); ok && st.Team != "" {
			return st.Team
		}
	}
	return ev.Actor.Team
}

// rows returns the outbox row forwarding fresh; it is called by the
// pipeline's engine, so the row joins the batch's transaction.
func (f *forwarder) rows(fresh []event.Event) ([]store.StateEntry, error) {
	var r rules.Roster
	if f.roster != nil {
		r = f.roster()
	}
	var msgs []outboxMsg
	for i := range fresh {
		ev := &fresh[i]
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
		if dev {
			msgs = append(msgs, outboxMsg{Topic: f.deviceTopic, Key: ev.Org + "\x00" + ev.Session.Device, Value: b})
		}
		if team != "" {
			msgs = append(msgs, outboxMsg{Topic: f.teamTopic, Key: ev.Org + "\x00" + team, Value: b})
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

// drain produces every outbox row under prefix, in key order, then deletes
// them.
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
	slices.SortFunc(rows, func(a, b store.StateEntry) int { return strings.Compare(a.Key, b.Key) })
	var out []kafka.Message
	del := make([]store.StateEntry, 0, len(rows))
	for _, row := range rows {
		var msgs []outboxMsg
		if err := json.Unmarshal(row.Value, &msgs); err != nil {
			return fmt.Errorf("outbox row %s: %w", row.Key, err)
		}
		for _, m := range msgs {
			out = append(out, kafka.Message{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value})
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
		if err := f.drain(ctx, prefix); err != nil && ctx.Err() == nil {
			f.log.Warn("producing the repartition outbox failed; will retry", "err", err)
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
// the widest input topic, unless they exist.
func ensureTopics(ctx context.Context, admin *kafka.Client, inputs, topics []string) error {
	parts := -1
	meta, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: inputs})
	if err == nil {
		for _, t := range meta.Topics {
			if t.Error == nil {
				parts = max(parts, len(t.Partitions))
			}
		}
	}
	var cfgs []kafka.TopicConfig
	for _, t := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: parts, ReplicationFactor: -1})
	}
	res, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return fmt.Errorf("create repartition topics: %w", err)
	}
	for t, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create repartition topic %s: %w", t, err)
		}
	}
	return nil
}

// repartProcessor is the ingest.Processor of a repartition topic: it runs
// its checks in per-partition tasks over events the main pipeline already
// stored, so it writes only alerts and state.
type repartProcessor struct {
	store       store.Store
	tasks       *taskEngine // state under <stream>/tasks/
	dedupPrefix string      // <stream>/dedup/<task id>
	log         *slog.Logger
	wake        func()
	idleRelease time.Duration

	mu         sync.Mutex
	stale      bool
	dedup      map[string]*dedupState // task id → its dedup state, as durable
	lastEvents time.Time
	released   bool
}

// dedupState is what a task remembers to absorb duplicates.
type dedupState struct {
	Offset int64      `json:"o"` // highest offset processed; -1: none
	Recent [][]uint64 `json:"r"` // event key hashes of the last batches
}

func newRepartProcessor(st store.Store, stream string, newEngine func() (engine, error), log *slog.Logger, wake func(), idle time.Duration) *repartProcessor {
	t := newTaskEngine(newEngine)
	t.prefix = stream + "/tasks/"
	return &repartProcessor{store: st, tasks: t, dedupPrefix: stream + "/dedup/", log: log, wake: wake, idleRelease: idle, stale: true}
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
	p.stale = false
	return nil
}

// Rebalanced implements ingest.Rebalancer: tasks may have moved.
func (p *repartProcessor) Rebalanced(uint64) {
	p.mu.Lock()
	p.stale = true
	p.mu.Unlock()
}

// Process implements ingest.Processor.
func (p *repartProcessor) Process(ctx context.Context, events []event.Event) (store.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stale {
		if err := p.restore(ctx); err != nil {
			return store.Result{}, err
		}
	}
	positions := store.PositionsFrom(ctx, len(events))
	touched := map[string]*dedupState{}
	batchKeys := map[string][]uint64{}
	seen := map[string]map[uint64]bool{}
	var keep []event.Event
	var keepPos []store.Position
	for i := range events {
		id, off := noPosition, int64(-1)
		if positions != nil {
			id, off = taskID(positions[i]), positions[i].Offset
		}
		ds := touched[id]
		if ds == nil {
			ds = &dedupState{Offset: -1}
			if old := p.dedup[id]; old != nil {
				ds.Offset, ds.Recent = old.Offset, slices.Clone(old.Recent)
			}
			touched[id] = ds
			s := map[uint64]bool{}
			for _, b := range ds.Recent {
				for _, h := range b {
					s[h] = true
				}
			}
			seen[id] = s
		}
		if off >= 0 && off <= ds.Offset {
			continue // redelivered
		}
		ds.Offset = max(ds.Offset, off)
		h := keyHash(events[i].Key())
		if seen[id][h] {
			continue // re-sent from an outbox
		}
		seen[id][h] = true
		batchKeys[id] = append(batchKeys[id], h)
		keep = append(keep, events[i])
		if positions != nil {
			keepPos = append(keepPos, positions[i])
		}
	}
	var dedupRows []store.StateEntry
	for _, id := range sortedTaskIDs(touched) {
		ds := touched[id]
		if hs := batchKeys[id]; len(hs) > 0 {
			ds.Recent = append(ds.Recent, hs)
			if n := len(ds.Recent); n > recentBatches {
				ds.Recent = ds.Recent[n-recentBatches:]
			}
		}
		v, err := json.Marshal(ds)
		if err != nil {
			return store.Result{}, err
		}
		dedupRows = append(dedupRows, store.StateEntry{Key: p.dedupPrefix + id, Value: v})
	}
	if len(dedupRows) == 0 {
		return store.Result{}, nil
	}
	if positions == nil {
		keepPos = nil
	}
	p.tasks.setRoute(keep, keepPos)
	res, err := p.store.Apply(ctx, nil, func([]event.Event) (store.Effects, error) {
		eff, err := p.tasks.Process(keep)
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
	}
	if len(keep) > 0 {
		p.lastEvents, p.released = time.Now(), false
	}
	if res.Alerts > 0 && p.wake != nil {
		p.wake()
	}
	return res, nil
}

// SetRoster passes the reference data on to every task.
func (p *repartProcessor) SetRoster(r rules.Roster) { p.tasks.SetRoster(r) }

// run judges waiting events once the stream has been idle (see pipeline.run).
func (p *repartProcessor) run(ctx context.Context) error {
	if p.idleRelease <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(max(p.idleRelease/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.releaseIfIdle(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("releasing waiting repartitioned events failed; will retry", "err", err)
			}
		}
	}
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
func (d *Daemon) setupRepartition(ctx context.Context, io ingest.Options, shared rules.Options,
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
		store: d.store, log: d.log, instance: newInstanceID(), kick: make(chan struct{}, 1),
		roster: func() rules.Roster {
			if r := d.roster.Load(); r != nil {
				return r.Roster
			}
			return nil
		},
		writer: &kafka.Writer{Addr: kafka.TCP(io.Brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond, BatchSize: 5000, Transport: transport},
	}
	var topics, inputs []string
	for _, t := range io.Topics {
		inputs = append(inputs, t.Name)
	}
	for _, s := range []struct {
		name  string
		opts  rules.Options
		topic *string
	}{{streamDevice, deviceOpts, &f.deviceTopic}, {streamTeam, teamOpts, &f.teamTopic}} {
		if slices.Contains(s.opts.Disabled, rules.CheckUnlockedSession) && slices.Contains(s.opts.Disabled, rules.CheckBulkAccess) {
			continue // its check is disabled: no stream
		}
		if _, err := rules.New(s.opts); err != nil {
			return fmt.Errorf("build %s checks: %w", s.name, err)
		}
		*s.topic = group + "-" + s.name
		topics = append(topics, *s.topic)
		opts := s.opts
		p := newRepartProcessor(d.store, s.name, func() (engine, error) { return newEngine(opts) }, d.log, d.delivery.Wake, idle)
		co := io
		co.GroupID, co.Processor, co.OnBatch = *s.topic, p, nil
		co.Topics = []ingest.Topic{{Name: *s.topic, Format: event.FormatNative}}
		// The ingest metrics have no stream label, and the same names
		// registered twice would clash: these consumers' metrics are not
		// exported yet.
		co.Registerer = prometheus.NewRegistry()
		c, err := ingest.New(co)
		if err != nil {
			return fmt.Errorf("%s consumer: %w", s.name, err)
		}
		d.streams = append(d.streams, repartStream{consumer: c, processor: p})
	}
	if len(topics) == 0 {
		return nil
	}
	admin := &kafka.Client{Addr: kafka.TCP(io.Brokers...), Transport: transport, Timeout: 30 * time.Second}
	if err := ensureTopics(ctx, admin, inputs, topics); err != nil {
		return err
	}
	d.forwarder = f
	d.engine.forward = f.rows
	prev := d.pipeline.observe
	d.pipeline.observe = func(events []event.Event, arrival time.Time) {
		if prev != nil {
			prev(events, arrival)
		}
		f.committed()
	}
	return nil
}
