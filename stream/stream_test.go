package stream

import (
	"context"
	"testing"
	"time"

	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
)

// TestStreamOptions: a Stream needs a store and nothing else; without
// Ingest it has no consumer, is ready at once, stores and checks the
// batches given to Process (telling Observe), and Run returns once its
// context ends.
func TestStreamOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Options{}); err == nil || err.Error() != "stream: no store" {
		t.Fatalf("New without a store: %v, want %q", err, "stream: no store")
	}
	st := openTestStore(t)
	var observed int
	s, err := New(ctx, Options{Store: st, Rules: testEngineOptions(t, &reference.Data{}),
		Observe: func(evs []event.Event, _ time.Time) { observed += len(evs) }})
	if err != nil {
		t.Fatal(err)
	}
	if s.consumer != nil || s.Ready() != nil {
		t.Fatalf("without Ingest: consumer %v, ready %v; want none, ready", s.consumer, s.Ready())
	}
	ev := event.Event{ID: "lmc-1", Time: time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC), Org: "st-martins", System: "logmycare",
		Action: event.ActionView, Actor: event.Actor{ID: "u-17"}, Subject: event.Subject{ID: "c-0042"}, Outcome: event.OutcomeSuccess}
	for range 2 { // the second time a redelivery: nothing new
		if _, err := s.Process(ctx, []event.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.CountEvents(ctx, store.EventFilter{}); err != nil || n != 1 || observed != 2 {
		t.Errorf("stored %d (%v), observed %d; want 1 stored, 2 observed", n, err, observed)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
}
