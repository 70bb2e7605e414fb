package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/storetest"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// TestRetentionContract: the embedded store deletes what the retention
// policy says it must no longer keep (issue 16, item 15).
func TestRetentionContract(t *testing.T) {
	storetest.RunRetention(t, opener(), recordView, listViews)
}

func recordView(t *testing.T, s store.Store, at time.Time, org, target string) {
	t.Helper()
	w, _ := s.(*Store).Web(context.Background())
	if err := w.WebRecordView(context.Background(), viewlog.View{At: at, User: "dpo", Role: "dpo", Kind: "alert", Org: org, Target: target}); err != nil {
		t.Fatal(err)
	}
}

func listViews(t *testing.T, s store.Store) []string {
	t.Helper()
	w, _ := s.(*Store).Web(context.Background())
	vs, err := w.WebViews(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Target
	}
	return out
}

// TestRetentionGivesSpaceBack: a database this version creates is
// auto_vacuum=INCREMENTAL, and a retention run hands the pages it freed
// back to the file system instead of leaving the file at its peak size.
func TestRetentionGivesSpaceBack(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pragma := func(name string) int {
		t.Helper()
		var n int
		if err := s.w.QueryRowContext(ctx, `PRAGMA `+name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := pragma("auto_vacuum"); got != 2 {
		t.Fatalf("auto_vacuum = %d, want 2 (incremental)", got)
	}
	for i := range 4 {
		if _, err := s.Apply(ctx, benchEvents(i*benchBatch, benchBatch), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	before := pragma("page_count")
	p := store.RetentionPolicy{Default: store.RetentionPeriods{store.RetainEvents: 24 * time.Hour}, ChunkRows: 3000}
	res, err := s.Retain(ctx, p, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Total(store.RetainEvents); got != 4*benchBatch || res.Chunks < 7 {
		t.Fatalf("deleted %d events in %d chunks, want %d in at least 7 of 3000", got, res.Chunks, 4*benchBatch)
	}
	if free, after := pragma("freelist_count"), pragma("page_count"); free != 0 || after > before/4 {
		t.Errorf("after retention: %d free pages, %d pages (from %d); want 0 free and the file shrunk", free, after, before)
	}
}

// BenchmarkRetainChunk measures how long one retention chunk (the default
// 5000 events) holds the write lock in a store of a million events: Apply
// waits at most this long for retention. Run with -benchtime=50x.
func BenchmarkRetainChunk(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const total = 1_000_000
	for i := 0; i < total; i += benchBatch {
		if _, err := s.Apply(ctx, benchEvents(i, benchBatch), nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	b.ResetTimer()
	chunks := make([]time.Duration, 0, b.N)
	for i := range b.N {
		// Each iteration's cutoff lets exactly one more chunk go.
		cutoff := base.Add(time.Duration((i+1)*store.DefaultRetentionChunkRows) * 37 * time.Millisecond)
		p := store.RetentionPolicy{Default: store.RetentionPeriods{store.RetainEvents: time.Hour}}
		res, err := s.Retain(ctx, p, cutoff.Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		if got := res.Total(store.RetainEvents); got != store.DefaultRetentionChunkRows {
			b.Fatalf("iteration %d deleted %d, want one chunk", i, got)
		}
		chunks = append(chunks, res.LongestChunk)
	}
	slices.Sort(chunks)
	b.ReportMetric(float64(chunks[len(chunks)/2].Microseconds())/1000, "p50-chunk-ms")
	b.ReportMetric(float64(chunks[len(chunks)*9/10].Microseconds())/1000, "p90-chunk-ms")
	b.ReportMetric(float64(chunks[len(chunks)-1].Microseconds())/1000, "max-chunk-ms")
}

// TestRetentionMigrationDatesExistingState: check state written before
// migration 0007 counts as written at the upgrade, so the first retention
// run after it does not take the whole state for ancient.
func TestRetentionMigrationDatesExistingState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{State: []store.StateEntry{{Key: "tasks/t/0/rules/x/s/org/u-1", Value: []byte("1")}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Back to schema 6, as an older dpiawatch left it (later migrations
	// undone first).
	for _, q := range []string{
		`DROP TABLE alert_notes`, `ALTER TABLE triages DROP COLUMN action_owner`, `ALTER TABLE triages DROP COLUMN action_due`,
		`ALTER TABLE triages DROP COLUMN action_status`, `DELETE FROM schema_migrations WHERE version = 8`,
		`DROP TABLE retention_runs`, `DROP INDEX alerts_org_last_seen`, `DROP INDEX check_state_written_at`, `DROP INDEX web_views_org_at`,
		`ALTER TABLE check_state DROP COLUMN written_at`, `DELETE FROM schema_migrations WHERE version = 7`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	upgraded := time.Now()
	if s, err = Open(ctx, Options{Path: path}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := store.RetentionPolicy{Default: store.RetentionPeriods{store.RetainCheckState: 30 * 24 * time.Hour}}
	if res, err := s.Retain(ctx, p, upgraded.Add(29*24*time.Hour)); err != nil || res.Total(store.RetainCheckState) != 0 {
		t.Fatalf("29 days after the upgrade: deleted %+v, %v; want nothing", res.Deleted, err)
	}
	if res, err := s.Retain(ctx, p, upgraded.Add(31*24*time.Hour)); err != nil || res.Total(store.RetainCheckState) != 1 {
		t.Fatalf("31 days after the upgrade: deleted %+v, %v; want the one key", res.Deleted, err)
	}
}
