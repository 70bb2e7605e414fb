package ingest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/store"
)

// keepFirstProcessor keeps the first event under each key, as the stores
// do, and reports later ones with other content as conflicts; it records
// the conflicts it is told are dead-lettered (ConflictRecorder).
type keepFirstProcessor struct {
	mu       sync.Mutex
	kept     map[event.Key]event.Event
	recorded []store.Conflict
}

func (p *keepFirstProcessor) Process(_ context.Context, evs []event.Event, _ []store.Position) (store.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var r store.Result
	for i := range evs {
		k, ok := p.kept[evs[i].Key()]
		switch {
		case !ok:
			p.kept[evs[i].Key()] = evs[i]
			r.Stored++
		case event.Diff(&k, &evs[i]) != nil:
			r.Conflicts = append(r.Conflicts, store.Conflict{Index: i, Event: evs[i], Kept: k, Fields: event.Diff(&k, &evs[i])})
		default:
			r.Duplicates++
		}
	}
	return r, nil
}

func (p *keepFirstProcessor) RecordConflicts(_ context.Context, cs []store.Conflict) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recorded = append(p.recorded, cs...)
	return nil
}

func (p *keepFirstProcessor) counts() (kept, recorded int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.kept), len(p.recorded)
}

func deadLetterHeaders(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// TestKafkaConsumerDeadLettersConflictingDuplicates (issue 16, item 5): an
// event republished under a stored id with another actor, action and time
// goes to the dead-letter topic with reason conflicting_duplicate and the
// fields that differ, is counted, and is handed to the ConflictRecorder
// before the offsets are committed; a same-content republish is a plain
// duplicate.
func TestKafkaConsumerDeadLettersConflictingDuplicates(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 1)
		group := kafkatest.UniqueName(t, "g")
		original := `{"id":"lmc-1","time":"2026-03-02T21:14:05Z","org":"st-martins","system":"logmycare","action":"view","actor":{"id":"u-17"},"subject":{"id":"c-0042"}}`
		sameMeaning := `{"id":"lmc-1","time":"2026-03-02T22:14:05+01:00","org":"st-martins","system":"logmycare","action":"view","actor":{"id":"u-17","org":"st-martins"},"subject":{"id":"c-0042"},"outcome":"success"}`
		hidden := `{"id":"lmc-1","time":"2026-03-02T23:40:00Z","org":"st-martins","system":"logmycare","action":"export","actor":{"id":"u-99"},"subject":{"id":"c-0042"}}`
		msgs := []kafka.Message{{Key: []byte("k"), Value: []byte(original)}, {Key: []byte("k"), Value: []byte(sameMeaning)}, {Key: []byte("k"), Value: []byte(hidden)}}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Produce(ctx, topic, msgs...); err != nil {
			t.Fatal(err)
		}
		p := &keepFirstProcessor{kept: map[event.Key]event.Event{}}
		cons := newTestConsumer(t, c, topic, group, p, prometheus.NewRegistry())
		runUntil(t, cons, 90*time.Second, func() bool { return committedTotal(t, c, group, topic) == int64(len(msgs)) })

		dead, err := c.ReadAll(ctx, topic+"-dlq", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dead))
		}
		h := deadLetterHeaders(dead[0])
		if h[HeaderReason] != "conflicting_duplicate" || h[HeaderOffset] != "2" ||
			h[HeaderDetail] != "same org, system and id as a kept event; differs in time, action, actor.id" {
			t.Errorf("dead letter headers %v", h)
		}
		if string(dead[0].Value) != hidden {
			t.Errorf("dead letter value %s, want the conflicting message", dead[0].Value)
		}
		if kept, recorded := p.counts(); kept != 1 || recorded != 1 {
			t.Errorf("kept %d events, recorded %d conflicts; want 1, 1", kept, recorded)
		}
		if got := testutil.ToFloat64(cons.m.conflicts.WithLabelValues("st-martins")); got != 1 {
			t.Errorf("dpiawatch_ingest_conflicting_duplicates_total{org=st-martins} = %v, want 1", got)
		}
		if got := testutil.ToFloat64(cons.m.duplicates); got != 1 {
			t.Errorf("duplicates metric = %v, want 1 (the same-meaning republish)", got)
		}
	})
}

// TestKafkaConsumerDeadLettersEventsOutsideTheTimeWindow (issue 16, item
// 10): events dated year 1, 1970 or far ahead of now are dead-lettered with
// reason event_time_out_of_range and the bound they break, never stored.
func TestKafkaConsumerDeadLettersEventsOutsideTheTimeWindow(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 1)
		group := kafkatest.UniqueName(t, "g")
		at := func(id, tm string) kafka.Message {
			return kafka.Message{Key: []byte("k"), Value: []byte(`{"id":"` + id + `","time":"` + tm + `","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-17"}}`)}
		}
		msgs := []kafka.Message{
			at("year-1", "0001-03-02T21:14:05Z"), // not the zero time, which is "time is required"
			at("epoch", "1970-01-01T00:00:00Z"),
			at("ok-old", testNow.Add(-event.DefaultMaxAge+time.Hour).Format(time.RFC3339)),
			at("ok-now", testNow.Add(4*time.Minute).Format(time.RFC3339)),
			at("ahead", testNow.Add(time.Hour).Format(time.RFC3339)),
			at("year-9999", "9999-12-31T23:59:59Z"),
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Produce(ctx, topic, msgs...); err != nil {
			t.Fatal(err)
		}
		p := newMemProcessor()
		cons := newTestConsumer(t, c, topic, group, p, prometheus.NewRegistry())
		runUntil(t, cons, 90*time.Second, func() bool { return committedTotal(t, c, group, topic) == int64(len(msgs)) })

		var stored []string
		for _, call := range p.calls {
			stored = append(stored, call...)
		}
		slices.Sort(stored)
		if want := []string{"ok-now", "ok-old"}; !slices.Equal(stored, want) {
			t.Errorf("processed %v, want only %v", stored, want)
		}
		dead, err := c.ReadAll(ctx, topic+"-dlq", 4)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range dead {
			h := deadLetterHeaders(m)
			got = append(got, h[HeaderOffset]+" "+h[HeaderReason]+": "+h[HeaderDetail])
		}
		slices.Sort(got)
		want := []string{
			"0 event_time_out_of_range: time is more than max_age 9600h before now",
			"1 event_time_out_of_range: time is more than max_age 9600h before now",
			"4 event_time_out_of_range: time is more than max_ahead 5m after now",
			"5 event_time_out_of_range: time is more than max_ahead 5m after now",
		}
		if !slices.Equal(got, want) {
			t.Errorf("dead letters\n%q\nwant\n%q", got, want)
		}
		if got := testutil.ToFloat64(cons.m.deadLettered.WithLabelValues("event_time_out_of_range")); got != 4 {
			t.Errorf("event_time_out_of_range dead letters metric = %v, want 4", got)
		}
	})
}
