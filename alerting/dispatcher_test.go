package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dpiawatch/dpiawatch/alert"
)

// fastOptions are dispatcher options with tiny waits, for bounded tests.
func fastOptions(ob *memOutbox, ns ...Notifier) DispatcherOptions {
	return DispatcherOptions{
		Outbox:       ob,
		Notifiers:    ns,
		PollInterval: 5 * time.Millisecond,
		Backoff:      Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond},
		Registerer:   prometheus.NewRegistry(),
	}
}

func counter(d *Pipeline, rcv, outcome string) float64 {
	return testutil.ToFloat64(d.m.notifications.WithLabelValues(rcv, outcome))
}

func TestDispatcherResumesAfterRestart(t *testing.T) {
	ob := newMemOutbox()
	for i := range 3 {
		ob.put(testAlert(fmt.Sprintf("a-%d", i)))
	}

	// First life: the receiver hangs, so nothing is delivered before the
	// daemon stops.
	hung := &recorder{name: "slack", block: make(chan struct{})}
	stop := runDispatcher(t, NewDispatcher(fastOptions(ob, hung)))
	waitFor(t, "first Notify call", func() bool { return hung.callCount() > 0 })
	stop()
	if n := ob.pendingCount("slack"); n != 3 {
		t.Fatalf("after a hung receiver, %d pending, want 3", n)
	}

	// Second life: a new dispatcher sends everything still pending.
	r2 := &recorder{name: "slack"}
	stop = runDispatcher(t, NewDispatcher(fastOptions(ob, r2)))
	waitFor(t, "pending alerts delivered", func() bool { return ob.pendingCount("slack") == 0 })
	stop()
	want := []delivery{{"a-0", 1}, {"a-1", 1}, {"a-2", 1}}
	if got := r2.deliveries(); !slices.Equal(got, want) {
		t.Fatalf("second life delivered %v, want %v (oldest change first)", got, want)
	}

	// Third life: only what changed since is sent.
	ob.put(testAlert("a-3"))
	r3 := &recorder{name: "slack"}
	stop = runDispatcher(t, NewDispatcher(fastOptions(ob, r3)))
	waitFor(t, "new alert delivered", func() bool { return ob.pendingCount("slack") == 0 })
	time.Sleep(20 * time.Millisecond) // several polls
	stop()
	if got, want := r3.deliveries(), []delivery{{"a-3", 1}}; !slices.Equal(got, want) {
		t.Fatalf("third life delivered %v, want %v", got, want)
	}
}

func TestDispatcherNeverSendsADeliveredVersionTwice(t *testing.T) {
	ob := newMemOutbox()
	for i := range 5 {
		ob.put(testAlert(fmt.Sprintf("a-%d", i)))
	}
	// The first call delivers two alerts, then fails in a retryable way:
	// the retry must start at the third.
	r := &recorder{name: "console", fail: func(call int, alerts []alert.Alert) (int, bool, error) {
		if call == 0 {
			return 2, true, errors.New("pipe full")
		}
		return len(alerts), false, nil
	}}
	d := NewDispatcher(fastOptions(ob, r))
	stop := runDispatcher(t, d)
	waitFor(t, "delivery", func() bool { return ob.pendingCount("console") == 0 })
	for range 10 {
		d.Wake()
		time.Sleep(2 * time.Millisecond)
	}
	stop()

	seen := map[delivery]int{}
	for _, g := range r.deliveries() {
		seen[g]++
	}
	for i := range 5 {
		if k := (delivery{fmt.Sprintf("a-%d", i), 1}); seen[k] != 1 {
			t.Errorf("%v delivered %d times, want 1", k, seen[k])
		}
	}
	for k, n := range ob.marks {
		if n != 1 {
			t.Errorf("%s marked %d times", k, n)
		}
	}
	if got := counter(d, "console", OutcomeSuccess); got != 5 {
		t.Errorf("success = %v, want 5", got)
	}
	if got := counter(d, "console", OutcomeRetry); got != 3 {
		t.Errorf("retry = %v, want 3 (the three undelivered alerts of the failed call)", got)
	}
}

func TestDispatcherSendsNewVersionAgain(t *testing.T) {
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	r := &recorder{name: "console"}
	d := NewDispatcher(fastOptions(ob, r))
	runDispatcher(t, d)
	waitFor(t, "v1", func() bool { return len(r.deliveries()) == 1 })

	grown := testAlert("a-1")
	grown.AddEvent("lmc-000200", grown.LastSeen.Add(time.Minute))
	ob.put(grown)
	d.Wake()
	waitFor(t, "v2", func() bool { return len(r.deliveries()) == 2 })
	if got, want := r.deliveries(), []delivery{{"a-1", 1}, {"a-1", 2}}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestDispatcherSlowNotifierDoesNotBlockAnother(t *testing.T) {
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	slow := &recorder{name: "slack", block: make(chan struct{})}
	fast := &recorder{name: "console"}
	opts := fastOptions(ob, slow, fast)
	opts.PollInterval = time.Hour // only Wake may trigger the second alert
	d := NewDispatcher(opts)
	runDispatcher(t, d)
	defer close(slow.block)

	waitFor(t, "slow receiver busy", func() bool { return slow.callCount() == 1 })
	waitFor(t, "fast receiver served while slow one hangs", func() bool { return len(fast.deliveries()) == 1 })
	ob.put(testAlert("a-2"))
	d.Wake() // must not block on the busy slow loop
	waitFor(t, "fast receiver woken", func() bool { return len(fast.deliveries()) == 2 })
	if n := len(slow.deliveries()); n != 0 {
		t.Fatalf("slow receiver delivered %d", n)
	}
}

func TestDispatcherRetriesTheSameAlerts(t *testing.T) {
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	ob.put(testAlert("a-2"))
	var mu sync.Mutex
	var batches [][]string
	r := &recorder{name: "slack", fail: func(call int, alerts []alert.Alert) (int, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		var ids []string
		for _, a := range alerts {
			ids = append(ids, a.ID)
		}
		batches = append(batches, ids)
		if call < 2 {
			return 0, true, errors.New("connection reset")
		}
		return len(alerts), false, nil
	}}
	d := NewDispatcher(fastOptions(ob, r))
	runDispatcher(t, d)
	waitFor(t, "delivery", func() bool { return ob.pendingCount("slack") == 0 })

	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 3 {
		t.Fatalf("%d calls, want 3", len(batches))
	}
	for i, b := range batches {
		if !slices.Equal(b, []string{"a-1", "a-2"}) {
			t.Errorf("call %d got %v, want the same two alerts", i, b)
		}
	}
	if got := counter(d, "slack", OutcomeRetry); got != 4 {
		t.Errorf("retry = %v, want 4", got)
	}
	if got := counter(d, "slack", OutcomeFailed); got != 0 {
		t.Errorf("failed = %v, want 0", got)
	}
}

func TestDispatcherGivesUpOnNonRetryableAndMovesOn(t *testing.T) {
	ob := newMemOutbox()
	for _, id := range []string{"a-1", "a-bad", "a-3"} {
		ob.put(testAlert(id))
	}
	r := &recorder{name: "slack", fail: func(_ int, alerts []alert.Alert) (int, bool, error) {
		for i, a := range alerts {
			if a.ID == "a-bad" {
				return i, false, errors.New("invalid_blocks")
			}
		}
		return len(alerts), false, nil
	}}
	d := NewDispatcher(fastOptions(ob, r))
	runDispatcher(t, d)
	waitFor(t, "queue drained", func() bool { return ob.pendingCount("slack") == 0 })

	if got, want := r.deliveries(), []delivery{{"a-1", 1}, {"a-3", 1}}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if n := r.callCount(); n != 2 {
		t.Errorf("%d Notify calls, want 2 (no retry of the bad alert)", n)
	}
	if got := counter(d, "slack", OutcomeFailed); got != 1 {
		t.Errorf("failed = %v, want 1", got)
	}
	if got := counter(d, "slack", OutcomeSuccess); got != 2 {
		t.Errorf("success = %v, want 2", got)
	}
}

func TestDispatcherHonoursRetryAfter(t *testing.T) {
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	r := &recorder{name: "slack", fail: func(call int, alerts []alert.Alert) (int, bool, error) {
		if call == 0 {
			return 0, true, fmt.Errorf("post: %w", &RetryAfterError{After: 7 * time.Second})
		}
		return len(alerts), false, nil
	}}
	opts := fastOptions(ob, r)
	waits := recordSleeps(&opts)
	d := NewDispatcher(opts)
	runDispatcher(t, d)
	waitFor(t, "delivery", func() bool { return ob.pendingCount("slack") == 0 })
	if got := waits(); !slices.Equal(got, []time.Duration{7 * time.Second}) {
		t.Fatalf("waits %v, want [7s]", got)
	}
}

// recordSleeps makes the waits of a dispatcher built from o return at once
// and record their length.
func recordSleeps(o *DispatcherOptions) func() []time.Duration {
	c := &sleepRecorder{}
	o.Clock = c
	return func() []time.Duration {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Clone(c.waits)
	}
}

// sleepRecorder is the wall clock whose Sleep returns at once.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (*sleepRecorder) Now() time.Time { return time.Now() }

func (c *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	return ctx.Err()
}

func TestDispatcherStopsPromptlyOnCancel(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    *recorder
	}{
		{"while backing off", &recorder{name: "slack", fail: func(int, []alert.Alert) (int, bool, error) {
			return 0, true, errors.New("down")
		}}},
		{"while Notify blocks", &recorder{name: "slack", block: make(chan struct{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ob := newMemOutbox()
			ob.put(testAlert("a-1"))
			opts := fastOptions(ob, tc.n)
			opts.Backoff = Backoff{Initial: time.Hour, Max: time.Hour}
			stop := runDispatcher(t, NewDispatcher(opts))
			waitFor(t, "first call", func() bool { return tc.n.callCount() > 0 })
			time.Sleep(5 * time.Millisecond)
			start := time.Now()
			stop() // fails the test if Run takes over 1s
			if el := time.Since(start); el > 100*time.Millisecond {
				t.Errorf("stopped after %v", el)
			}
			if n := ob.pendingCount("slack"); n != 1 {
				t.Errorf("%d pending after stop, want 1: nothing dropped", n)
			}
		})
	}
}

func TestDispatcherWakeBeatsPolling(t *testing.T) {
	ob := newMemOutbox()
	r := &recorder{name: "console"}
	opts := fastOptions(ob, r)
	opts.PollInterval = time.Hour
	d := NewDispatcher(opts)
	runDispatcher(t, d)
	time.Sleep(10 * time.Millisecond) // first (empty) drain done
	ob.put(testAlert("a-1"))
	d.Wake()
	waitFor(t, "woken delivery", func() bool { return len(r.deliveries()) == 1 })
}

func TestDispatcherRecoversFromOutboxErrors(t *testing.T) {
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	ob.failNext = 2
	r := &recorder{name: "console"}
	opts := fastOptions(ob, r)
	waits := recordSleeps(&opts)
	d := NewDispatcher(opts)
	runDispatcher(t, d)
	waitFor(t, "delivery", func() bool { return len(r.deliveries()) == 1 })
	if n := len(waits()); n != 2 {
		t.Errorf("%d backoff waits, want 2", n)
	}
}

func TestDispatcherDeliversMoreThanOneBatch(t *testing.T) {
	ob := newMemOutbox()
	for i := range 2*plainReadLimit + 7 {
		ob.put(testAlert(fmt.Sprintf("a-%03d", i)))
	}
	r := &recorder{name: "file"}
	opts := fastOptions(ob, r)
	opts.PollInterval = time.Hour // one drain must empty the outbox
	runDispatcher(t, NewDispatcher(opts))
	waitFor(t, "all batches", func() bool { return len(r.deliveries()) == 2*plainReadLimit+7 })
	if n := r.callCount(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

func TestDispatcherRejectsBadOptions(t *testing.T) {
	ob := newMemOutbox()
	for _, tc := range []struct {
		name string
		opts DispatcherOptions
		want string
	}{
		{"no outbox", DispatcherOptions{Notifiers: []Notifier{&recorder{name: "a"}}}, "outbox"},
		{"duplicate names", DispatcherOptions{Outbox: ob, Notifiers: []Notifier{&recorder{name: "a"}, &recorder{name: "a"}}}, "not unique"},
		{"empty name", DispatcherOptions{Outbox: ob, Notifiers: []Notifier{&recorder{}}}, "not unique"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NewDispatcher(tc.opts).Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestDispatcherWithoutNotifiersRunsUntilCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := NewDispatcher(DispatcherOptions{Outbox: newMemOutbox()}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Fatalf("Run returned after %v, before its context ended", el)
	}
}

func TestDispatcherMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewDispatcher(DispatcherOptions{Registerer: reg, Notifiers: []Notifier{&recorder{name: "slack"}}})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(reg,
		"dpiawatch_alerting_notifications_total",
		"dpiawatch_alerting_notification_duration_seconds",
		"dpiawatch_alerting_pending")
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 { // 5 outcomes + 1 histogram + 1 gauge for one receiver
		t.Errorf("%d series, want 7", n)
	}
}

// TestPlainAndRoutedDeliveryShareOneEngine: with or without
// alerting.route, delivery is the same pipeline, so it exposes the same
// series: one definition of each metric, whichever configuration a
// dashboard or a Prometheus rule is looking at.
func TestPlainAndRoutedDeliveryShareOneEngine(t *testing.T) {
	families := func(reg *prometheus.Registry) []string {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range mfs {
			out = append(out, fmt.Sprintf("%s %s (%d series)", mf.GetName(), mf.GetHelp(), len(mf.GetMetric())))
		}
		return out
	}
	plain := prometheus.NewRegistry()
	NewDispatcher(DispatcherOptions{Outbox: newMemOutbox(), Registerer: plain, Notifiers: []Notifier{&recorder{name: "r"}}})
	routed := prometheus.NewRegistry()
	if _, err := NewPipeline(PipelineOptions{Store: openStore(t, ""), Tree: singleRoute("r", time.Second, time.Second),
		Notifiers: []Notifier{&recorder{name: "r"}}, Registerer: routed}); err != nil {
		t.Fatal(err)
	}
	if p, r := families(plain), families(routed); !slices.Equal(p, r) {
		t.Errorf("plain delivery exposes\n  %s\nrouted delivery exposes\n  %s\nwant one set", strings.Join(p, "\n  "), strings.Join(r, "\n  "))
	}
}
