package heartbeat

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestHeartbeatRaisesAndResolvesFeedSilent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st := openStore(t, path)
	clock := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	src := Source{Org: "st-martins", System: "logmycare", MaxSilence: 2 * time.Hour, DPIA: "st-martins-webster-court", Risks: []string{"R4"}}
	h, err := New(ctx, Options{Sources: []Source{src}, Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	h.Observe("st-martins", "logmycare", clock.Now().Add(-time.Minute), clock.Now())
	h.Observe("elsewhere", "x", clock.Now(), clock.Now()) // not configured: ignored
	clock.Advance(time.Hour)
	if got, _ := h.Check(ctx); len(got) != 0 {
		t.Fatalf("raised within max silence: %v", got)
	}
	clock.Advance(90 * time.Minute)
	got, err := h.Check(ctx)
	if err != nil || len(got) != 1 || got[0].Check != CheckFeedSilent || got[0].Severity != alert.SeverityHigh || got[0].Risks[0] != "R4" {
		t.Fatalf("raise: %+v %v", got, err)
	}
	if again, _ := h.Check(ctx); len(again) != 0 {
		t.Fatalf("raised twice: %v", again)
	}
	// A restart remembers the open alert.
	h2, err := New(ctx, Options{Sources: []Source{src}, Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	h2.Observe("st-martins", "logmycare", clock.Now(), clock.Now())
	res, err := h2.Check(ctx)
	if err != nil || len(res) != 1 || res[0].ID != got[0].ID || !strings.HasPrefix(res[0].Explanation, "Resolved") {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	stored, err := st.Alert(ctx, got[0].ID)
	if err != nil || stored.Version != 2 || pending(t, st, "any") != 1 {
		t.Fatalf("stored: %+v %v", stored, err)
	}
}

func pending(t *testing.T, st *sqlite.Store, receiver string) int {
	t.Helper()
	p, err := st.Pending(context.Background(), receiver, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}
