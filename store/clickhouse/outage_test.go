package clickhouse_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/testwait"
	"github.com/dpiawatch/dpiawatch/triage"
)

// countingProcessor stores batches as the daemon does: its check state (how
// many events it has evaluated) is reloaded from the store before every
// attempt, so an event evaluated twice into the durable state shows.
type countingProcessor struct{ s *clickhouse.Store }

const countKey = "outage/count"

func (p countingProcessor) Process(ctx context.Context, evs []event.Event, pos []store.Position) (store.Result, error) {
	st, err := p.s.LoadState(ctx, countKey)
	if err != nil {
		return store.Result{}, err
	}
	base := 0
	if len(st) == 1 {
		if base, err = strconv.Atoi(string(st[0].Value)); err != nil {
			return store.Result{}, err
		}
	}
	return p.s.Apply(ctx, evs, pos, func(fresh []event.Event) (store.Effects, error) {
		return store.Effects{State: []store.StateEntry{{Key: countKey, Value: []byte(strconv.Itoa(base + len(fresh)))}}}, nil
	})
}

func outageEvents(t *testing.T, from, to int) []kafka.Message {
	t.Helper()
	msgs := make([]kafka.Message, 0, to-from)
	for i := from; i < to; i++ {
		e := event.Event{
			ID: fmt.Sprintf("e-%06d", i), Time: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
			Org: "wiltshire-council", System: "mosaic", Action: event.ActionView,
			Actor: event.Actor{ID: fmt.Sprintf("u-%d", i%13), Team: "mash"}, Subject: event.Subject{ID: fmt.Sprintf("c-%d", i%101)},
			Outcome: event.OutcomeSuccess,
		}
		b, err := event.Encode(&e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(e.Actor.ID), Value: b})
	}
	return msgs
}

// metricSum sums every series of the named counter or gauge in reg.
func metricSum(t *testing.T, reg *prometheus.Registry, name string, label ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(label); i += 2 {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == label[i] && lp.GetValue() != label[i+1] {
						continue series
					}
				}
			}
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestClickHouseOutagePausesConsumption runs a real consumer (ingest, on
// an in-process Kafka broker) into the ClickHouse store while the chDB
// front goes down and then loses the answers of inserts it applied. The
// consumer must pause (nothing committed, lag growing and exported), and
// after recovery every event must be stored once, evaluated once into the
// durable check state, with nothing lost and no row written twice. A
// triage across a lost answer is stored once too.
func TestClickHouseOutagePausesConsumption(t *testing.T) {
	srv := chtest.Start(t) // a front of its own: its faults touch no other test
	if srv.Engine != "chdb" {
		t.Skip("the outage test needs the chDB front's fault switch; a CLICKHOUSE_ADDR server has none")
	}
	storeReg := prometheus.NewRegistry()
	s := openStore(t, srv, clickhouse.Options{Registerer: storeReg})
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	// Rows written twice must stay visible to the count below: no merge may
	// fold them first.
	conn := srv.Open(t, "")
	for _, table := range []string{"events", "audit"} {
		if err := conn.Exec(ctx, `SYSTEM STOP MERGES `+dbName(t)+`.`+table); err != nil {
			t.Fatal(err)
		}
	}

	kc := kafkatest.StartKFake(t, 2)
	topic := kc.NewTopic(t, 2)
	group := kafkatest.UniqueName(t, "g")
	reg := prometheus.NewRegistry()
	cons, err := ingest.New(ingest.Options{
		Brokers: kc.Brokers, GroupID: group, Topics: []ingest.Topic{{Name: topic, Format: event.FormatAuto}},
		DeadLetterTopic: topic + "-dlq", MaxBatchEvents: 150, MaxBatchWait: 30 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, LagInterval: 100 * time.Millisecond,
		Processor: countingProcessor{s}, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(runCtx) }()
	stopped := false
	stopConsumer := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("consumer: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("consumer did not stop within 40s")
		}
	}
	t.Cleanup(stopConsumer)
	// Best effort: a test that fails half-way must not leave the front down
	// for its cleanups.
	t.Cleanup(func() { _ = srv.SetFault(ctx, chtest.FaultOff, 0) })

	produce := func(from, to int) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := kc.Produce(pctx, topic, outageEvents(t, from, to)...); err != nil {
			t.Fatal(err)
		}
	}
	lag := func() float64 { return metricSum(t, reg, "dpiawatch_ingest_consumer_lag_messages") }
	stored := func() float64 { return metricSum(t, reg, "dpiawatch_ingest_events_stored_total") }
	committed := func() int64 {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		offs, err := kc.CommittedOffsets(cctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, o := range offs {
			n += max(o, 0)
		}
		return n
	}

	// Healthy: the first 300 events go through.
	produce(0, 300)
	testwait.For(t, 30*time.Second, "300 events stored and committed", func() bool { return stored() == 300 && lag() == 0 })

	// ClickHouse goes down while 400 more arrive: consumption pauses.
	if err := srv.SetFault(ctx, chtest.FaultDown, 0); err != nil {
		t.Fatal(err)
	}
	retries0 := metricSum(t, reg, "dpiawatch_ingest_batch_retries_total", "stage", "apply")
	produce(300, 700)
	testwait.For(t, 30*time.Second, "lag of 400 exported while ClickHouse is down", func() bool { return lag() == 400 })
	testwait.For(t, 30*time.Second, "the failing batch retried", func() bool {
		return metricSum(t, reg, "dpiawatch_ingest_batch_retries_total", "stage", "apply") >= retries0+3
	})
	if n := committed(); n != 300 {
		t.Fatalf("committed %d offsets while ClickHouse is down, want 300: a batch was committed without being stored", n)
	}
	if n := stored(); n != 300 {
		t.Fatalf("%v events reported stored while ClickHouse is down, want 300", n)
	}

	// It comes back, but the answers to its next three inserts are lost
	// after it applied them (a connection dropped mid-reply): the retries
	// carry the same deduplication token.
	errs0 := metricSum(t, storeReg, "dpiawatch_store_apply_errors_total")
	if err := srv.SetFault(ctx, chtest.FaultLoseInserts, 3); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "all 700 events stored and committed after recovery", func() bool {
		return lag() == 0 && committed() == 700
	})
	if lost := metricSum(t, storeReg, "dpiawatch_store_apply_errors_total") - errs0; lost < 3 {
		t.Fatalf("%v failed applies after recovery, want at least the 3 lost inserts", lost)
	}
	stopConsumer()

	// Nothing lost, nothing twice: in the rows as written (no FINAL), in
	// what readers see, and in the check state.
	var rows, ids, positions uint64
	var minOff int64
	if err := conn.QueryRow(ctx, `SELECT count(), uniqExact(id), uniqExact(src_partition, src_offset), min(src_offset) FROM `+
		dbName(t)+`.events`).Scan(&rows, &ids, &positions, &minOff); err != nil {
		t.Fatal(err)
	}
	if rows != 700 || ids != 700 || positions != 700 || minOff != 0 {
		t.Fatalf("events table: %d rows, %d ids, %d positions (offsets from %d), want 700 of each from 0", rows, ids, positions, minOff)
	}
	if n, err := s.CountEvents(ctx, store.EventFilter{}); err != nil || n != 700 {
		t.Fatalf("CountEvents = %d, %v; want 700", n, err)
	}
	st, err := s.LoadState(ctx, countKey)
	if err != nil || len(st) != 1 || string(st[0].Value) != "700" {
		t.Fatalf("check state = %q, %v; want 700 events evaluated once each", st, err)
	}
	if n := stored(); n != 700 {
		t.Fatalf("consumer reports %v events stored, want 700", n)
	}

	// A triage whose insert is applied but whose answer is lost is retried
	// by the store under the same token: stored once, audited once.
	if err := srv.SetFault(ctx, chtest.FaultLoseInserts, 1); err != nil {
		t.Fatal(err)
	}
	tr, err := s.AddTriage(ctx, triage.Decision{AlertID: "a-1", Outcome: triage.Explained, Actor: "ig-jo", At: time.Now(), Source: "api"})
	if err != nil {
		t.Fatalf("AddTriage across a lost answer: %v", err)
	}
	if got, err := s.Triages(ctx, "a-1"); err != nil || len(got) != 1 || got[0].Seq != tr.Seq {
		t.Fatalf("triages = %+v, %v; want the one triage once", got, err)
	}
	if err := conn.QueryRow(ctx, `SELECT count() FROM `+dbName(t)+`.audit`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("audit rows as written = %d, %v; want 1", rows, err)
	}
}
