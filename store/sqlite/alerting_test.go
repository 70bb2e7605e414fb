package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

func openAlerting(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "a.db"), Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMessageRefNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	s := openAlerting(t)
	if _, err := s.MessageRef(ctx, "slack", "a-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing ref: %v", err)
	}
	for _, v := range []int64{2, 1} {
		if err := s.PutMessageRef(ctx, store.MessageRef{Receiver: "slack", AlertID: "a-1", Channel: "C1", TS: "1.2", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := s.MessageRef(ctx, "slack", "a-1")
	if err != nil || ref.Version != 2 || ref.TS != "1.2" || ref.Channel != "C1" {
		t.Fatalf("ref = %+v, %v", ref, err)
	}
}

func TestTriageOutboxAndAudit(t *testing.T) {
	ctx := context.Background()
	s := openAlerting(t)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	t1, err := s.AddTriage(ctx, store.Triage{AlertID: "a-1", Outcome: store.TriageAcknowledged, Actor: "ig-jo", At: at, Source: "api"})
	if err != nil || t1.Seq == 0 {
		t.Fatalf("add: %+v %v", t1, err)
	}
	if _, err := s.AddTriage(ctx, store.Triage{AlertID: "a-1", Outcome: store.TriageExplained, Actor: "ig-jo", At: at.Add(time.Minute), Note: "covering a shift", Source: "api"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Triages(ctx, "a-1")
	if err != nil || len(got) != 2 || got[1].Note != "covering a shift" || !got[0].At.Equal(at) {
		t.Fatalf("triages = %+v, %v", got, err)
	}
	p, _ := s.PendingTriages(ctx, "slack", 10)
	if len(p) != 2 {
		t.Fatalf("pending = %d", len(p))
	}
	if err := s.MarkTriageDelivered(ctx, "slack", p[0].Seq); err != nil {
		t.Fatal(err)
	}
	p, _ = s.PendingTriages(ctx, "slack", 10)
	if len(p) != 1 || p[0].Outcome != store.TriageExplained {
		t.Fatalf("pending after mark = %+v", p)
	}
	log, err := s.AuditLog(ctx, 0)
	if err != nil || len(log) != 2 || log[0].Action != "triage.explained" || log[0].Actor != "ig-jo" || log[0].Object != "a-1" {
		t.Fatalf("audit = %+v, %v", log, err)
	}
}

func TestSilenceStoreListsUnexpired(t *testing.T) {
	ctx := context.Background()
	s := openAlerting(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i, end := range []time.Time{now.Add(-time.Hour), now.Add(time.Hour)} {
		sl := store.Silence{ID: string(rune('a' + i)), Matchers: []string{`check="out-of-hours"`}, StartsAt: now.Add(-2 * time.Hour), EndsAt: end, CreatedBy: "ig-jo", Comment: "rota change", UpdatedAt: now}
		if err := s.PutSilence(ctx, sl, store.AuditEntry{At: now, Actor: "ig-jo", Action: "silence.create", Object: sl.ID}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListSilences(ctx, now)
	if err != nil || len(got) != 1 || got[0].ID != "b" || got[0].Matchers[0] != `check="out-of-hours"` {
		t.Fatalf("silences = %+v, %v", got, err)
	}
	if all, _ := s.ListSilences(ctx, time.Time{}); len(all) != 2 {
		t.Fatalf("all = %d", len(all))
	}
	if _, err := s.Silence(ctx, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing silence: %v", err)
	}
	if log, _ := s.AuditLog(ctx, 1); len(log) != 1 || log[0].Object != "b" {
		t.Fatalf("audit = %+v", log)
	}
}
