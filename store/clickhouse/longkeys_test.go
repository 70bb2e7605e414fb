package clickhouse_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

// TestClickHouseLongKeyLookups: a chunk of a thousand keys of the longest
// ids an event may carry goes to the server as one parameter (in the URL,
// over HTTP), for Apply's "is this new" lookup and for EventsByKey.
func TestClickHouseLongKeyLookups(t *testing.T) {
	srv := chtest.Shared(t)
	t.Cleanup(func() { dropTestDatabases(t, srv) })
	s := openStore(t, srv, clickhouse.Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var evs []event.Event
	var keys []event.Key
	for i := range 1000 { // apply.go's keyChunk
		id := fmt.Sprintf("%04d-", i) + strings.Repeat("x'\\", (event.MaxIDLen-5)/3)
		e := event.Event{ID: id, Time: t0.Add(time.Duration(i) * time.Second), Org: "st-martins", System: "logmycare",
			Action: event.ActionView, Actor: event.Actor{ID: "u-17"}, Subject: event.Subject{ID: "c-1"}, Outcome: event.OutcomeSuccess}
		evs, keys = append(evs, e), append(keys, e.Key())
	}
	if r, err := s.Apply(ctx, evs, nil, nil); err != nil || r.Stored != len(evs) {
		t.Fatalf("Apply = %+v, %v; want %d stored", r, err, len(evs))
	}
	if r, err := s.Apply(ctx, evs, nil, nil); err != nil || r.Duplicates != len(evs) {
		t.Fatalf("replay = %+v, %v; want %d duplicates", r, err, len(evs))
	}
	got, err := s.EventsByKey(ctx, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("EventsByKey = %d events, %v; want %d", len(got), err, len(keys))
	}
}
