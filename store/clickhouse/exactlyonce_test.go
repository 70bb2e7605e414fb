package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

// openedInternal holds the tests that have opened their store.
var openedInternal sync.Map

func openInternal(t testing.TB, o Options) *Store {
	t.Helper()
	srv := chtest.Shared(t)
	h := sha256.Sum256([]byte(t.Name()))
	o.Addr, o.Username, o.Password = []string{srv.Addr}, srv.Username, srv.Password
	o.Protocol = "native"
	if srv.Engine == "chdb" {
		o.Protocol = "http"
	}
	if o.Schema.Database == "" {
		o.Schema.Database = "dpiawatch_test_" + hex.EncodeToString(h[:8])
		// A fresh database for each run of the test (-count) in this process.
		if _, reopen := openedInternal.LoadOrStore(t, true); !reopen {
			t.Cleanup(func() { openedInternal.Delete(t) })
			if err := srv.Open(t, "").Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.Schema.Database); err != nil {
				t.Fatalf("drop test database: %v", err)
			}
		}
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var t0 = time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC)

func evs(ids ...string) []event.Event {
	out := make([]event.Event, len(ids))
	for i, id := range ids {
		out[i] = event.Event{ID: id, Time: t0.Add(time.Duration(i) * time.Minute), Org: "wiltshire-council", System: "mosaic",
			Action: event.ActionView, Actor: event.Actor{ID: "u-1", Team: "mash"}, Subject: event.Subject{ID: "c-1"}, Outcome: event.OutcomeSuccess}
	}
	return out
}

func positions(first int64, n int) []Position {
	out := make([]Position, n)
	for i := range out {
		out[i] = Position{Topic: "access", Partition: 3, Offset: first + int64(i)}
	}
	return out
}

// counter is a check whose state is how many events it has seen, and which
// keeps one alert listing them: run twice over an event, it would count it
// twice.
type counter struct {
	s    *Store
	seen []string
}

func (c *counter) restore(t *testing.T) {
	t.Helper()
	st, err := c.s.LoadState(context.Background(), "count")
	if err != nil {
		t.Fatal(err)
	}
	c.seen = nil
	if len(st) == 1 && len(st[0].Value) > 0 {
		c.seen = strings.Split(string(st[0].Value), ",")
	}
}

func (c *counter) eval(fresh []event.Event) (store.Effects, error) {
	for _, e := range fresh {
		c.seen = append(c.seen, e.ID)
	}
	a := alert.Alert{ID: "a-count", Check: "counter", Org: "wiltshire-council", FirstSeen: t0, LastSeen: t0, EventIDs: slices.Clone(c.seen), EventCount: len(c.seen)}
	return store.Effects{Alerts: []alert.Alert{a}, State: []store.StateEntry{{Key: "count", Value: []byte(strings.Join(c.seen, ","))}}}, nil
}

func rawRows(t *testing.T, s *Store, id string) uint64 {
	t.Helper()
	var n uint64
	var p params
	if err := s.conn.QueryRow(context.Background(), `SELECT count() FROM `+s.events+` WHERE id = `+p.str(id), p.list()...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestClickHouseExactlyOnceAcrossCrashes fails Apply between each of its
// write steps, retries the batch as the daemon does (checks reset to the
// durable state), and checks that every event is stored, counted into the
// state and alerted once.
func TestClickHouseExactlyOnceAcrossCrashes(t *testing.T) {
	s := openInternal(t, Options{})
	ctx := context.Background()
	c := &counter{s: s}
	crash := errors.New("crash")
	var failAt string
	s.beforeStep = func(step string) error {
		if step == failAt {
			return crash
		}
		return nil
	}
	applyAt := func(batch []event.Event, pos []Position, fail string) (store.Result, error) {
		t.Helper()
		c.restore(t)
		failAt = fail
		defer func() { failAt = "" }()
		return s.Apply(ctx, batch, pos, c.eval)
	}

	// A crash after the events and alerts went in, before the commit.
	b1, p1 := evs("e1", "e2", "e3"), positions(10, 3)
	if _, err := applyAt(b1, p1, stepCommit); !errors.Is(err, crash) {
		t.Fatalf("Apply = %v, want the crash", err)
	}
	if st, _ := s.LoadState(ctx, "count"); len(st) != 0 {
		t.Fatalf("state of an uncommitted batch is visible: %q", st)
	}
	// The retry: the same batch, the same positions, so the same token.
	r, err := applyAt(b1, p1, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Stored != 3 || r.Duplicates != 0 || r.Alerts != 1 {
		t.Fatalf("retry: %+v, want 3 stored, 1 alert", r)
	}
	if n := rawRows(t, s, "e1"); n != 1 {
		t.Fatalf("e1 has %d rows: the retried insert was not deduplicated by its token", n)
	}

	// A crash before the alerts; the retry is cut differently (a longer
	// batch, so another token): the rows go in twice and FINAL folds them.
	b2, p2 := evs("e4", "e5"), positions(13, 2)
	if _, err := applyAt(b2, p2, stepAlerts); !errors.Is(err, crash) {
		t.Fatalf("Apply = %v, want the crash", err)
	}
	b3 := append(evs("e4", "e5"), evs("e6", "e6b")[0])
	b3[2].Time = t0.Add(time.Hour)
	if r, err := applyAt(b3, positions(13, 3), ""); err != nil || r.Stored != 3 {
		t.Fatalf("retry: %+v %v, want 3 stored", r, err)
	}
	// A crash before anything is written, then a clean retry.
	b4 := evs("e7")
	b4[0].Time = t0.Add(2 * time.Hour)
	if _, err := applyAt(b4, positions(16, 1), stepEvents); !errors.Is(err, crash) {
		t.Fatalf("Apply = %v, want the crash", err)
	}
	if r, err := applyAt(b4, positions(16, 1), ""); err != nil || r.Stored != 1 {
		t.Fatalf("retry: %+v %v", r, err)
	}
	// Kafka redelivers everything after a restart: all duplicates.
	all := slices.Concat(b1, b3, b4)
	if r, err := applyAt(all, positions(10, len(all)), ""); err != nil || r.Stored != 0 || r.Duplicates != len(all) {
		t.Fatalf("replay: %+v %v, want all duplicates", r, err)
	}

	c.restore(t)
	if want := []string{"e1", "e2", "e3", "e4", "e5", "e6", "e7"}; !slices.Equal(c.seen, want) {
		t.Fatalf("durable check state saw %v, want each event once: %v", c.seen, want)
	}
	if n, err := s.CountEvents(ctx, store.EventFilter{}); err != nil || n != 7 {
		t.Fatalf("CountEvents = %d, %v; want 7", n, err)
	}
	var got []string
	if err := s.ScanEvents(ctx, store.EventFilter{}, func(e event.Event) error { got = append(got, e.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"e1", "e4", "e2", "e5", "e3", "e6", "e7"}; !slices.Equal(got, want) {
		t.Fatalf("ScanEvents = %v, want %v (each once)", got, want)
	}
	a, err := s.Alert(ctx, "a-count")
	if err != nil {
		t.Fatal(err)
	}
	if a.EventCount != 7 || a.Version != 3 {
		t.Fatalf("alert: %d events at version %d, want 7 at version 3 (one per committed change)", a.EventCount, a.Version)
	}
	// Positions are stored with the events.
	var topic string
	var part int32
	var off int64
	if err := s.conn.QueryRow(ctx, `SELECT src_topic, src_partition, src_offset FROM `+s.events+` FINAL WHERE id = 'e2'`).Scan(&topic, &part, &off); err != nil {
		t.Fatal(err)
	}
	if topic != "access" || part != 3 || off != 11 {
		t.Fatalf("e2 stored from %s/%d@%d, want access/3@11", topic, part, off)
	}
}

func TestClickHouseBatchToken(t *testing.T) {
	e := evs("a", "b")
	tok := batchToken(e, []Position{{Topic: "access", Partition: 3, Offset: 10}, {Topic: "access", Partition: 1, Offset: 7}})
	if !strings.HasPrefix(tok, "access:1:7-7,access:3:10-10/") {
		t.Fatalf("token %q", tok)
	}
	if batchToken(e, nil) == batchToken(e[:1], nil) || !strings.HasPrefix(batchToken(e, nil), "keys/") {
		t.Fatal("tokens without positions must differ by keys")
	}
	if got := batchToken(e, positions(5, 2)); got != batchToken(e, positions(5, 2)) {
		t.Fatal("token is not deterministic")
	}
}
