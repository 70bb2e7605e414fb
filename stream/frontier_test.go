package stream

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/store"
)

func TestInputFrontier(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	const lateness, idle = 5 * time.Minute, 30 * time.Second
	start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC) // wall clock
	parts := []ingest.TopicPartition{{Topic: "ev", Partition: 0}, {Topic: "ev", Partition: 1}, {Topic: "ev", Partition: 2}}
	fetch := func(p int, caughtUp bool) ingest.PartitionFetch {
		f := ingest.PartitionFetch{Topic: "ev", Partition: p, Offset: 9, HighWaterMark: 100}
		if caughtUp {
			f.HighWaterMark = 10
		}
		return f
	}
	type step struct {
		fetched []ingest.PartitionFetch
		after   time.Duration // wall clock since start
	}
	for _, tc := range []struct {
		name     string
		steps    []step
		progress map[string]map[string]time.Time
		want     map[string]time.Time // nil: no frontier yet
	}{
		{name: "the slowest partition holds every org back, less lateness",
			steps: []step{{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false), fetch(2, false)}}},
			progress: map[string]map[string]time.Time{
				"ev/0": {"a": at(6), "b": at(7)}, "ev/1": {"a": at(1), "b": at(9)}, "ev/2": {"a": at(8)}},
			// ev/2 has carried none of b's events: its progress in a stands in.
			want: map[string]time.Time{"a": at(1).Add(-lateness), "b": at(7).Add(-lateness)}},
		{name: "a known partition not heard from yet holds everything back",
			steps:    []step{{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false)}, after: 29 * time.Second}},
			progress: map[string]map[string]time.Time{"ev/0": {"a": at(6)}, "ev/1": {"a": at(1)}},
			want:     nil},
		{name: "not heard from for idle_release since the first batch: idle",
			steps: []step{{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false)}},
				{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false)}, after: idle}},
			progress: map[string]map[string]time.Time{"ev/0": {"a": at(6)}, "ev/1": {"a": at(1)}},
			want:     map[string]time.Time{"a": at(1).Add(-lateness)}},
		{name: "a restored partition holds with its progress until heard from",
			steps:    []step{{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false)}, after: time.Second}},
			progress: map[string]map[string]time.Time{"ev/0": {"a": at(6)}, "ev/1": {"a": at(5)}, "ev/2": {"a": at(2)}},
			want:     map[string]time.Time{"a": at(2).Add(-lateness)}},
		{name: "caught up and quiet for idle_release: idle",
			steps: []step{{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false), fetch(2, true)}},
				{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false)}, after: idle}},
			progress: map[string]map[string]time.Time{"ev/0": {"a": at(6)}, "ev/1": {"a": at(5)}, "ev/2": {"a": at(1)}},
			want:     map[string]time.Time{"a": at(5).Add(-lateness)}},
		{name: "with a backlog, never idle however quiet",
			steps: []step{{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false), fetch(2, false)}},
				{fetched: []ingest.PartitionFetch{fetch(0, false), fetch(1, false)}, after: 10 * idle}},
			progress: map[string]map[string]time.Time{"ev/0": {"a": at(6)}, "ev/1": {"a": at(5)}, "ev/2": {"a": at(1)}},
			want:     map[string]time.Time{"a": at(1).Add(-lateness)}},
		{name: "every partition idle: everything received",
			steps: []step{{fetched: []ingest.PartitionFetch{fetch(0, true), fetch(1, true), fetch(2, true)}},
				{after: idle}},
			progress: map[string]map[string]time.Time{"ev/0": {"a": at(6)}, "ev/1": {"a": at(5), "b": at(3)}, "ev/2": {"a": at(1)}},
			want:     map[string]time.Time{"a": at(6), "b": at(3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newInputFrontier(lateness, idle, nil)
			f.partitions = func() ([]ingest.TopicPartition, bool) { return parts, true }
			var now time.Time
			for _, s := range tc.steps {
				now = start.Add(s.after)
				f.observe(s.fetched, now)
			}
			got := f.compute(tc.progress, now).orgs
			if (got == nil) != (tc.want == nil) || len(got) != len(tc.want) {
				t.Fatalf("frontiers %v, want %v", got, tc.want)
			}
			for org, w := range tc.want {
				if !got[org].Equal(w) {
					t.Errorf("org %s: frontier %s, want %s", org, got[org], w)
				}
			}
		})
	}
}

// TestInputFrontierRebalanced: after a rebalance a partition must be heard
// from again (or wait out idle_release) before it is idle.
func TestInputFrontierRebalanced(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	f := newInputFrontier(0, time.Second, nil)
	f.partitions = func() ([]ingest.TopicPartition, bool) {
		return []ingest.TopicPartition{{Topic: "ev", Partition: 0}, {Topic: "ev", Partition: 1}}, true
	}
	progress := map[string]map[string]time.Time{"ev/0": {"a": t0.Add(time.Hour)}, "ev/1": {"a": t0}}
	f.observe([]ingest.PartitionFetch{{Topic: "ev", Partition: 0, Offset: 1, HighWaterMark: 9}}, start)
	if got := f.compute(progress, start.Add(2*time.Second)).orgs["a"]; !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("ev/1 not heard from for idle_release: frontier %s, want ev/0's", got)
	}
	f.rebalanced()
	f.observe([]ingest.PartitionFetch{{Topic: "ev", Partition: 0, Offset: 2, HighWaterMark: 9}}, start.Add(3*time.Second))
	if got := f.compute(progress, start.Add(3*time.Second)).orgs["a"]; !got.Equal(t0) {
		t.Fatalf("after a rebalance: frontier %s, want ev/1's %s", got, t0)
	}
}

// TestGroupCompleteness: with several daemons, each org's completeness point
// is combined from every partition's progress record, whoever wrote it, and
// never moves back.
func TestGroupCompleteness(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	const idle, lateness = 30 * time.Second, 5 * time.Minute
	st := openTestStore(t)
	ctx := context.Background()
	put := func(id string, r partitionProgress) {
		t.Helper()
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) {
			return store.Effects{State: []store.StateEntry{{Key: progressPrefix + id, Value: b}}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	d := &Stream{store: st, log: testLogger(t), pipeline: &pipeline{}, engine: &splitEngine{}}
	check := func(want map[string]time.Time) {
		t.Helper()
		if err := d.recordGroupCompleteness(ctx, now, idle, lateness); err != nil {
			t.Fatal(err)
		}
		got, err := store.LoadCompleteness(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("completeness %v, want %v", got, want)
		}
		for org, w := range want {
			if !got[org].Equal(w) {
				t.Errorf("org %s: complete up to %s, want %s", org, got[org], w)
			}
		}
	}
	// Written by two daemons: ev/0 and ev/1 by one, ev/2 by the other.
	put("ev/0", partitionProgress{Orgs: map[string]time.Time{"a": at(6)}, At: now})
	put("ev/1", partitionProgress{Orgs: map[string]time.Time{"a": at(4), "b": at(9)}, At: now})
	put("ev/2", partitionProgress{Orgs: map[string]time.Time{"a": at(2)}, At: now.Add(-time.Second)})
	// ev/2 has carried none of b's events: its progress in a stands in.
	check(map[string]time.Time{"a": at(2).Add(-lateness), "b": at(2).Add(-lateness)})
	// ev/2 caught up and quiet for idle_release: left out.
	put("ev/2", partitionProgress{Orgs: map[string]time.Time{"a": at(3)}, CaughtUp: true, At: now.Add(-idle)})
	check(map[string]time.Time{"a": at(4).Add(-lateness), "b": at(6).Add(-lateness)})
	// A partition back from idleness with older progress: the point holds.
	put("ev/2", partitionProgress{Orgs: map[string]time.Time{"a": at(3)}, At: now})
	check(map[string]time.Time{"a": at(4).Add(-lateness), "b": at(6).Add(-lateness)})
}
