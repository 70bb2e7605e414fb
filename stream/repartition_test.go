package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// seenEngine records the ids of the events it is given.
type seenEngine struct{ seen *[]string }

func (e seenEngine) Process(fresh []event.Event) (store.Effects, error) {
	for i := range fresh {
		*e.seen = append(*e.seen, fresh[i].ID)
	}
	return store.Effects{}, nil
}
func (seenEngine) Flush() store.Effects                     { return store.Effects{} }
func (seenEngine) Restore(entries []store.StateEntry) error { return nil }
func (seenEngine) Reset()                                   {}
func (seenEngine) SetRoster(rules.Roster)                   {}

// TestRepartProcessorDedup: a repartition task skips what it already
// processed, whether the consumer redelivers it (same offsets) or an outbox
// re-sends it (new offsets), also after a restart.
func TestRepartProcessorDedup(t *testing.T) { forEachStore(t, repartProcessorDedup) }

func repartProcessorDedup(t *testing.T, st store.Store) {
	ctx := context.Background()
	var seen []string
	newProc := func() *repartProcessor {
		return newRepartProcessor(st, streamTeam, func() (engine, error) { return seenEngine{&seen}, nil }, testLogger(t), nil, 0)
	}
	batch := func(from int64, ids ...string) ([]event.Event, []store.Position) {
		evs := make([]event.Event, len(ids))
		pos := make([]store.Position, len(ids))
		for i, id := range ids {
			evs[i] = event.Event{ID: id, Org: "o", System: "s", Time: time.Unix(int64(i), 0)}
			pos[i] = store.Position{Topic: "g-by-team", Partition: 1, Offset: from + int64(i)}
		}
		return evs, pos
	}
	p := newProc()
	for _, tc := range []struct {
		name string
		from int64
		ids  []string
		want []string
	}{
		{"first", 0, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"redelivered", 0, []string{"a", "b", "c"}, nil},
		{"partly redelivered", 2, []string{"c", "d"}, []string{"d"}},
		{"re-sent", 4, []string{"a", "b", "e"}, []string{"e"}},
		{"restart, re-sent", 7, []string{"d", "e", "f"}, []string{"f"}},
		{"restart, redelivered", 5, []string{"b", "e"}, nil},
	} {
		if strings.HasPrefix(tc.name, "restart") {
			p = newProc()
		}
		seen = nil
		evs, pos := batch(tc.from, tc.ids...)
		if _, err := p.Process(ctx, evs, pos); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(seen, tc.want) {
			t.Errorf("%s: engine saw %v, want %v", tc.name, seen, tc.want)
		}
	}
}

// TestForwarderRows: fresh events go to the device topic when they carry a
// device and to the team topic when they have a team, keyed by org.
func TestForwarderRows(t *testing.T) {
	f := &forwarder{deviceTopic: "g-by-device", teamTopic: "g-by-team", instance: "i"}
	evs := []event.Event{
		{ID: "1", Org: "o", Actor: event.Actor{ID: "u", Team: "t"}, Session: event.Session{Device: "d"}},
		{ID: "2", Org: "o", Actor: event.Actor{ID: "u"}, Session: event.Session{Device: "d"}},
		{ID: "3", Org: "o", Actor: event.Actor{ID: "u", Team: "t"}},
		{ID: "4", Org: "o", Actor: event.Actor{ID: "u"}},
	}
	rows, err := f.rows(evs, func(event.Key) string { return "in/0" })
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Key != "outbox/i/0000000000000001" {
		t.Fatalf("rows %v", rows)
	}
	var msgs []outboxMsg
	if err := json.Unmarshal(rows[0].Value, &msgs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, om := range msgs {
		for _, m := range om.messages() {
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(m.Value, &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Topic+" "+strings.ReplaceAll(string(m.Key), "\x00", "|")+" "+ev.ID)
		}
	}
	if len(msgs) != 3 {
		t.Errorf("%d outbox messages for three forwarded events, want each stored once", len(msgs))
	}
	want := []string{"g-by-device o|d 1", "g-by-team o|t 1", "g-by-device o|d 2", "g-by-team o|t 3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if rows, _ := f.rows(evs[3:], func(event.Key) string { return "in/0" }); rows != nil {
		t.Errorf("an event with neither device nor team: rows %v", rows)
	}
}

// TestForwarderMarks: after a batch's events, every partition of both
// topics gets one mark with each input partition's newest event time per
// org — also from events that are forwarded nowhere.
func TestForwarderMarks(t *testing.T) {
	f := &forwarder{deviceTopic: "g-by-device", teamTopic: "g-by-team", instance: "i", parts: map[string]int{"g-by-device": 2, "g-by-team": 1}}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	evs := []event.Event{
		{ID: "1", Org: "o", Time: t0, Actor: event.Actor{ID: "u"}, Session: event.Session{Device: "d"}},
		{ID: "2", Org: "o", Time: t0.Add(-time.Hour), Actor: event.Actor{ID: "v"}},
		{ID: "3", Org: "p", Time: t0.Add(time.Hour), Actor: event.Actor{ID: "w"}},
	}
	src := map[string]string{"1": "in/0", "2": "in/1", "3": "in/1"}
	byKey := map[event.Key]string{}
	for i := range evs {
		byKey[evs[i].Key()] = src[evs[i].ID]
	}
	rows, err := f.rows(evs, func(k event.Key) string { return byKey[k] })
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, %v", rows, err)
	}
	var msgs []outboxMsg
	if err := json.Unmarshal(rows[0].Value, &msgs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		p := -1
		if m.Partition != nil {
			p = *m.Partition
		}
		got = append(got, fmt.Sprintf("%s p=%d mark=%v %s", m.Topic, p, m.Mark, m.Value))
	}
	mark := `{"s":[{"src":"in/0","max":{"o":"2026-03-02T09:00:00Z"}},{"src":"in/1","max":{"o":"2026-03-02T08:00:00Z","p":"2026-03-02T10:00:00Z"}}]}`
	want := []string{
		"g-by-device p=-1 mark=false " + string(msgs[0].Value),
		"g-by-device p=0 mark=true " + mark,
		"g-by-device p=1 mark=true " + mark,
		"g-by-team p=0 mark=true " + mark,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b := &partitionBalancer{}
	for p := range 3 {
		m := kafka.Message{Key: []byte("k"), Headers: []kafka.Header{{Key: headerPartition, Value: []byte(fmt.Sprint(p))}}}
		if got := b.Balance(m, 0, 1, 2); got != p {
			t.Errorf("a message to partition %d went to %d", p, got)
		}
	}
}

// frontierRecorder is an engine that records the frontiers it is given.
type frontierRecorder struct {
	seenEngine
	got *[]map[string]time.Time
}

func (e frontierRecorder) ProcessUntil(fresh []event.Event, f map[string]time.Time) (store.Effects, error) {
	*e.got = append(*e.got, f)
	return e.Process(fresh)
}

// TestRepartProcessorWaitsForTheSlowestSource: a task's frontier is its
// slowest live source's progress less the lateness bound; a source never
// heard from holds it, an idle one does not, and progress survives a
// restart.
func TestRepartProcessorWaitsForTheSlowestSource(t *testing.T) {
	forEachStore(t, repartProcessorWaitsForTheSlowestSource)
}

func repartProcessorWaitsForTheSlowestSource(t *testing.T, st store.Store) {
	ctx := context.Background()
	var seen []string
	var fronts []map[string]time.Time
	wall := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	newProc := func() *repartProcessor {
		p := newRepartProcessor(st, streamDevice, func() (engine, error) { return frontierRecorder{seenEngine{&seen}, &fronts}, nil }, testLogger(t), nil, 10*time.Second)
		p.lateness, p.expected, p.now = 5*time.Minute, []string{"in/0", "in/1"}, func() time.Time { return wall }
		return p
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	off := int64(0)
	mark := func(src string, at time.Time) ingest.Mark {
		b, _ := json.Marshal(progressMark{Sources: []sourceProgress{{Source: src, Max: map[string]time.Time{"o": at}}}})
		off++
		return ingest.Mark{Topic: "g-by-device", Partition: 0, Offset: off, Value: b}
	}
	p := newProc()
	step := func(name string, marks []ingest.Mark, want map[string]time.Time) {
		t.Helper()
		fronts = nil
		if _, err := p.ProcessBatch(ctx, &ingest.Batch{Marks: marks}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got map[string]time.Time
		if len(fronts) > 0 {
			got = fronts[len(fronts)-1]
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: frontier %v, want %v", name, got, want)
		}
	}
	step("one source not heard from", []ingest.Mark{mark("in/0", t0.Add(3*time.Hour))}, nil)
	step("both heard from", []ingest.Mark{mark("in/1", t0)}, map[string]time.Time{"o": t0.Add(-5 * time.Minute)})
	wall = wall.Add(5 * time.Second)
	step("the slow one moves", []ingest.Mark{mark("in/1", t0.Add(time.Hour))}, map[string]time.Time{"o": t0.Add(55 * time.Minute)})
	p = newProc() // a restart: progress is durable
	step("restart", []ingest.Mark{mark("in/0", t0.Add(4*time.Hour))}, map[string]time.Time{"o": t0.Add(55 * time.Minute)})
	wall = wall.Add(6 * time.Second)
	step("the fast one moves on", []ingest.Mark{mark("in/0", t0.Add(5*time.Hour))}, map[string]time.Time{"o": t0.Add(55 * time.Minute)})
	// in/1 shows no progress for longer than idle_release: left out.
	wall = wall.Add(6 * time.Second)
	fronts = nil
	if err := p.advanceIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if len(fronts) != 1 || !maps.Equal(fronts[0], map[string]time.Time{"o": t0.Add(5*time.Hour - 5*time.Minute)}) {
		t.Errorf("idle source: frontiers %v, want in/0's progress less lateness", fronts)
	}
}

// TestForwarderHandover: after a rebalance the forwarder produces nothing
// for the handover grace — the previous owner may still be writing its last
// batch — then another daemon's outbox rows before its own, each in batch
// order, marks to the partition they name, and deletes what it produced.
// The topic appears only after the first attempt: a failed attempt is
// retried with everyone's rows again, not with this daemon's alone.
func TestForwarderHandover(t *testing.T) {
	c := kafkatest.StartKFake(t, 1)
	forEachStore(t, func(t *testing.T, st store.Store) { forwarderHandover(t, c, st) })
}

func forwarderHandover(t *testing.T, c *kafkatest.Cluster, st store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.UniqueName(t, "t")
	row := func(instance string, seq int, ids ...string) store.StateEntry {
		var msgs []outboxMsg
		for _, id := range ids {
			msgs = append(msgs, outboxMsg{Topic: topic, Key: "o\x00d", Value: json.RawMessage(`"` + id + `"`)})
		}
		p := 1
		msgs = append(msgs, outboxMsg{Topic: topic, Value: json.RawMessage(`"mark-` + instance + `"`), Partition: &p, Mark: true})
		b, err := json.Marshal(msgs)
		if err != nil {
			t.Fatal(err)
		}
		return store.StateEntry{Key: fmt.Sprintf("%s%s/%016x", outboxPrefix, instance, seq), Value: b}
	}
	// "b" is this daemon; the other daemon's "z" sorts after it, and its
	// rows must go first all the same.
	rows := []store.StateEntry{row("b", 1, "b1"), row("z", 7, "z7"), row("b", 2, "b2"), row("z", 8, "z8")}
	if _, err := st.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return store.Effects{State: rows}, nil }); err != nil {
		t.Fatal(err)
	}
	// The warning that a drain failed is how the test knows the first
	// attempt is over.
	failed := &countRecords{Handler: testLogger(t).Handler(), msg: "producing the repartition outbox failed; will retry"}
	f := &forwarder{store: st, log: slog.New(failed), instance: "b", kick: make(chan struct{}, 1), handover: 700 * time.Millisecond,
		writer: &kafka.Writer{Addr: c.Addr(), Balancer: &partitionBalancer{}, BatchTimeout: time.Millisecond}}
	f.rebalanced()
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.run(runCtx) }()
	testwait.For(t, 30*time.Second, "the first attempt, after the grace, to fail", func() bool { return failed.n.Load() > 0 })
	if err := c.CreateTopic(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.ReadAll(ctx, topic, 6)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 700*time.Millisecond {
		t.Errorf("produced %s after the rebalance, before the handover grace", waited)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var p0, p1 []string
	for _, m := range msgs {
		mark := false
		for _, h := range m.Headers {
			mark = mark || h.Key == headerMark
		}
		v := string(m.Value)
		switch {
		case m.Partition == 1 && mark:
			p1 = append(p1, v)
		case mark:
			t.Errorf("mark %s on partition %d, want 1", v, m.Partition)
		default:
			p0 = append(p0, v)
		}
	}
	// The events' key hashes to one partition, whichever: their order is
	// what counts.
	if want := []string{`"z7"`, `"z8"`, `"b1"`, `"b2"`}; !slices.Equal(p0, want) {
		t.Errorf("events in order %v, want %v", p0, want)
	}
	if want := []string{`"mark-z"`, `"mark-z"`, `"mark-b"`, `"mark-b"`}; !slices.Equal(p1, want) {
		t.Errorf("marks in order %v, want %v", p1, want)
	}
	left, err := st.LoadState(ctx, outboxPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d outbox rows left after producing them", len(left))
	}
}

// FuzzRepartitionInput: whatever a repartition topic holds — a progress
// mark of any bytes, a state entry of recent keys of any bytes — the task
// neither panics nor lets a mark it cannot read move any progress.
func FuzzRepartitionInput(f *testing.F) {
	good, _ := json.Marshal(progressMark{Sources: []sourceProgress{{Source: "in/0", Max: map[string]time.Time{"o": time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}}}})
	f.Add(good, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte(`{"s":[{"src":"in/0","max":{"o":"not a time"}}]}`), []byte{1, 2, 3})
	f.Add([]byte(`{"s":null}`), []byte{})
	// One store for every input (the fuzzer's test names hold '#', which
	// SQLite paths may not); each input gets a task of its own.
	dir, err := os.MkdirTemp("", "fuzz-repartition-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, "s.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, mark, hashes []byte) {
		if hs, err := decodeHashes(hashes); err == nil {
			if !bytes.Equal(encodeHashes(hs), hashes) {
				t.Fatalf("hashes do not round-trip: %x", hashes)
			}
		} else if len(hashes)%8 == 0 {
			t.Fatalf("a whole number of hashes refused: %v", err)
		}
		var seen []string
		var fronts []map[string]time.Time
		p := newRepartProcessor(st, streamDevice, func() (engine, error) { return frontierRecorder{seenEngine{&seen}, &fronts}, nil }, testLogger(t), nil, time.Second)
		part := int(n.Add(1))
		b := &ingest.Batch{Marks: []ingest.Mark{{Topic: "g-by-device", Partition: part, Offset: 1, Value: mark}}}
		if _, err := p.ProcessBatch(context.Background(), b); err != nil {
			t.Fatalf("a mark made the batch fail: %v", err)
		}
		var m progressMark
		if ds := p.dedup[fmt.Sprintf("g-by-device/%d", part)]; json.Unmarshal(mark, &m) != nil && ds != nil && len(ds.Sources) > 0 {
			t.Errorf("an unreadable mark moved progress: %v", ds.Sources)
		}
	})
}

// countRecords counts the log records with one message.
type countRecords struct {
	slog.Handler
	msg string
	n   atomic.Int32
}

func (h *countRecords) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}
