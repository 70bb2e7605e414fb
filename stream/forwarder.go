package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// outboxPrefix is the key prefix of outbox rows: outbox/<instance>/<seq>.
const outboxPrefix = "outbox/"

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
	if r == nil {
		return ev.Actor.Team
	}
	_, team, _, _ := rules.ActorGroups(r, ev.ActorOrg(), &ev.Actor)
	return team
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
	if _, err := f.store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) {
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
