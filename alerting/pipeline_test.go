package alerting

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
)

func mustMatchers(t *testing.T, ss ...string) []Matcher {
	t.Helper()
	ms, err := ParseMatchers(ss)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestRoutingTreeContinueAndInheritance(t *testing.T) {
	root := &Route{Receiver: "default", GroupBy: []string{"org"}, GroupWait: time.Minute, Routes: []*Route{
		{Receiver: "wilts", Matchers: mustMatchers(t, `org="wiltshire-council"`), Continue: true, GroupWait: 5 * time.Second},
		{Receiver: "urgent", Matchers: mustMatchers(t, `severity=~"high|critical"`), Routes: []*Route{
			{Receiver: "misuse", Matchers: mustMatchers(t, `risk="R4"`, `check!="out-of-hours"`)},
		}},
		{Receiver: "never", Matchers: mustMatchers(t, `dpia=~".*"`)},
	}}
	tree, err := NewTree(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*alert.Alert)
		want []string
	}{
		{"high with R4 descends to the deepest match", func(*alert.Alert) {}, []string{"misuse"}},
		{"out-of-hours stops at urgent", func(a *alert.Alert) { a.Check = "out-of-hours" }, []string{"urgent"}},
		{"continue goes on to the next sibling", func(a *alert.Alert) { a.Org = "wiltshire-council" }, []string{"wilts", "misuse"}},
		{"low falls through to the catch-all sibling", func(a *alert.Alert) { a.Severity = alert.SeverityLow }, []string{"never"}},
		{"risk matcher on any risk", func(a *alert.Alert) { a.Risks = []string{"R1"} }, []string{"urgent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := testAlert("a-1")
			tc.edit(&a)
			var got []string
			for _, r := range tree.Match(a) {
				got = append(got, r.Receiver)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("receivers = %v, want %v", got, tc.want)
			}
		})
	}
	m := tree.Match(testAlert("a-1"))[0]
	if m.GroupWait != time.Minute || m.GroupInterval != DefaultGroupInterval || !slices.Equal(m.GroupBy, []string{"org"}) {
		t.Errorf("inherited settings = %+v", m)
	}
	if _, err := NewTree(&Route{}); err == nil {
		t.Error("a root without receiver was accepted")
	}
	if _, err := ParseMatcher(`subject="c-0042"`); err == nil {
		t.Error("a matcher on the subject was accepted")
	}
}

func TestPipelineGroupingTimers(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	clock := newFakeClock()
	rec := &recorder{name: "r"}
	p := newTestPipeline(t, st, singleRoute("r", 30*time.Second, 5*time.Minute), clock, rec)
	l := p.loops[0]

	putAlerts(t, st, numbered(1))
	next, err := l.step(ctx)
	if err != nil || len(rec.deliveries()) != 0 {
		t.Fatalf("sent before group_wait: %v %v", rec.deliveries(), err)
	}
	if want := clock.Now().Add(30 * time.Second); !next.Equal(want) {
		t.Fatalf("next = %v, want group_wait later %v", next, want)
	}
	clock.Advance(10 * time.Second)
	putAlerts(t, st, numbered(2)) // joins the waiting group
	_, _ = l.step(ctx)
	clock.Advance(20 * time.Second)
	if _, err := l.step(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.deliveries(); len(got) != 2 || rec.callCount() != 1 {
		t.Fatalf("after group_wait: %d calls, %v", rec.callCount(), got)
	}
	// A change after the flush waits for group_interval, not group_wait.
	a1 := numbered(1)
	a1.EventCount = 3
	putAlerts(t, st, a1)
	clock.Advance(time.Minute)
	next, _ = l.step(ctx)
	if len(rec.deliveries()) != 2 {
		t.Fatal("update sent before group_interval")
	}
	clock.Advance(next.Sub(clock.Now()))
	_, _ = l.step(ctx)
	got := rec.deliveries()
	if len(got) != 3 || got[2] != (delivery{"a-001", 2}) {
		t.Fatalf("after group_interval: %v", got)
	}
	if n := pendingCount(t, st, "r"); n != 0 {
		t.Fatalf("outbox still has %d pending", n)
	}
}

func pendingCount(t *testing.T, s store.Outbox, rcv string) int {
	t.Helper()
	p, err := s.Pending(context.Background(), rcv, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}

func TestPipelineSilenceAppliesUntilExpiry(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	clock := newFakeClock()
	rec := &recorder{name: "r"}
	p := newTestPipeline(t, st, singleRoute("r", time.Second, time.Second), clock, rec)
	now := clock.Now()
	sil := silence.Silence{ID: "sil-1", Matchers: []string{`check="no-business-need"`, `org="st-martins"`}, StartsAt: now,
		EndsAt: now.Add(time.Hour), CreatedBy: "ig-jo", Comment: "known rota change", UpdatedAt: now}
	if err := st.PutSilence(ctx, sil, audit.Entry{At: now, Actor: "ig-jo", Action: "silence.create", Object: "sil-1"}); err != nil {
		t.Fatal(err)
	}
	other := numbered(2)
	other.Check = "out-of-hours"
	putAlerts(t, st, numbered(1), other)
	drive(t, p, clock, 3)
	if got := rec.deliveries(); len(got) != 1 || got[0].ID != "a-002" {
		t.Fatalf("with the silence: %v", got)
	}
	if pendingCount(t, st, "r") != 0 {
		t.Fatal("a silenced alert stayed pending")
	}
	// The episode grows after the silence expired: it is notified again.
	clock.Advance(2 * time.Hour)
	a1 := numbered(1)
	a1.EventCount = 9
	putAlerts(t, st, a1)
	drive(t, p, clock, 3)
	if got := rec.deliveries(); len(got) != 2 || got[1] != (delivery{"a-001", 2}) {
		t.Fatalf("after expiry: %v", got)
	}
}

// TestPipelineOutboxSlackOutageRetry: Slack is down for ten minutes of
// simulated time while alerts keep arriving; afterwards every alert
// arrives, in order, none twice, and nothing identifying leaves.
func TestPipelineOutboxSlackOutageRetry(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	f := newThreadSlack(t)
	end := clock.Now().Add(10 * time.Minute)
	f.fail = func(string) func(http.ResponseWriter) {
		if clock.Now().Before(end) {
			return status(http.StatusServiceUnavailable)
		}
		return nil
	}
	s := newThreadedSlack(t, f, st, clock, nil, "C1")
	p := newTestPipeline(t, st, singleRoute(s.Name(), 0, time.Second), clock, s)
	var want []string
	for i := range 30 {
		a := numbered(i)
		want = append(want, a.ID)
		putAlerts(t, st, a)
		if i%10 == 9 {
			drive(t, p, clock, 2)
		}
	}
	drive(t, p, clock, 3)
	if clock.Now().Before(end) {
		t.Fatalf("the simulated outage did not run its course (now %v)", clock.Now())
	}
	var got []string
	for _, c := range f.posts() {
		got = append(got, alertIDOf(c))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d alerts in order %v\nwant %v", len(got), got, want)
	}
	if n := pendingCount(t, st, s.Name()); n != 0 {
		t.Fatalf("%d still pending", n)
	}
	assertNoPersonalData(t, f.bodies())
}

func assertNoPersonalData(t *testing.T, bodies string) {
	t.Helper()
	a := testAlert("x")
	for _, secret := range append([]string{a.SubjectID, "c-0042"}, a.EventIDs...) {
		if strings.Contains(bodies, secret) {
			t.Errorf("a request to Slack carries %q", secret)
		}
	}
}

// TestPipelineOutboxRestartMidSend: the process dies in the middle of a
// batch, after Slack accepted three messages but before any outbox mark was
// written. After a restart on the same database each alert has been posted
// exactly once: the stored message refs prove what was sent.
func TestPipelineOutboxRestartMidSend(t *testing.T) {
	path := t.TempDir() + "/s.db"
	clock := newFakeClock()
	f := newThreadSlack(t)
	st := openStore(t, path)
	for i := range 5 {
		putAlerts(t, st, numbered(i))
	}
	s := newThreadedSlack(t, f, st, clock, nil, "C1")
	batch, err := st.Pending(context.Background(), s.Name(), 0)
	if err != nil || len(batch) != 5 {
		t.Fatalf("pending: %d %v", len(batch), err)
	}
	// What the dying process managed: three posts, no marks.
	if _, err := s.Notify(context.Background(), batch[:3]...); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(t, st, s.Name()); n != 5 {
		t.Fatalf("pending before restart = %d, want 5 (no marks)", n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2 := openStore(t, path)
	s2 := newThreadedSlack(t, f, st2, clock, nil, "C1")
	p2 := newTestPipeline(t, st2, singleRoute(s2.Name(), 0, time.Second), clock, s2)
	drive(t, p2, clock, 3)
	var order []string
	for _, c := range f.posts() {
		order = append(order, alertIDOf(c))
	}
	var want []string
	for i := range 5 {
		want = append(want, numbered(i).ID)
	}
	if !slices.Equal(order, want) {
		t.Errorf("posts %v, want each once in order %v", order, want)
	}
	// Besides the posts, only repeat_interval reminders (drive runs the clock on to them).
	for _, c := range f.calls() {
		if c.Values.Get("thread_ts") != "" && c.Values.Get("text") != "Still untriaged." || c.Method != "chat.postMessage" {
			t.Errorf("unexpected %s %v", c.Method, c.Values)
		}
	}
	if pendingCount(t, st2, s2.Name()) != 0 {
		t.Error("outbox not drained after restart")
	}
}

// TestSlack429RetryAfterPausesOnlyThatChannel: a 429 on one channel makes
// the pipeline wait its Retry-After; another channel is not paused.
func TestSlack429RetryAfterPausesOnlyThatChannel(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	f := newThreadSlack(t)
	lim := NewChannelLimiter(clock)
	limited := true
	f.fail = func(string) func(http.ResponseWriter) {
		if limited {
			limited = false
			return status(http.StatusTooManyRequests, "Retry-After", "42")
		}
		return nil
	}
	busy := newThreadedSlack(t, f, st, clock, lim, "CBUSY")
	calm := newThreadedSlack(t, f, st, clock, lim, "CCALM")
	tree, _ := NewTree(&Route{Receiver: busy.Name(), GroupWait: time.Nanosecond, Routes: []*Route{
		{Receiver: calm.Name(), Matchers: mustMatchers(t, `org="calm"`)}}})
	p := newTestPipeline(t, st, tree, clock, busy, calm)
	putAlerts(t, st, numbered(1))
	start := clock.Now()
	drive(t, p, clock, 2)
	if w := lim.Wait("CBUSY"); w != 0 {
		t.Errorf("CBUSY still paused %v after the retry", w)
	}
	if !slices.Contains(clock.slept, 42*time.Second) {
		t.Errorf("waits %v do not include Retry-After 42s", clock.slept)
	}
	if clock.Now().Sub(start) < 42*time.Second {
		t.Errorf("retried after %v, before Retry-After", clock.Now().Sub(start))
	}
	lim.Pause("CBUSY", time.Hour)
	if lim.Wait("CCALM") != 0 {
		t.Error("a pause of one channel paused another")
	}
	if len(f.posts()) != 1 {
		t.Errorf("posts = %d, want 1", len(f.posts()))
	}
}

func TestPipelineBurstBecomesDigest(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	f := newThreadSlack(t)
	s := newThreadedSlack(t, f, st, clock, nil, "C1")
	p, err := NewPipeline(PipelineOptions{Store: st, Tree: singleRoute(s.Name(), time.Second, time.Minute), Notifiers: []Notifier{s}, Clock: clock, DigestThreshold: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		putAlerts(t, st, numbered(i))
	}
	drive(t, p, clock, 3)
	posts := f.posts()
	if len(posts) != 1 || !strings.Contains(posts[0].Values.Get("text"), "60 dpiawatch alerts") {
		t.Fatalf("posts = %d, want one digest: %v", len(posts), posts)
	}
	blocks := blocksOf(t, posts[0].Values)
	if len(blocks) > slackMaxBlocks || !strings.Contains(posts[0].Values.Get("blocks"), "and 20 more") {
		t.Errorf("digest blocks: %d, %.300s", len(blocks), posts[0].Values.Get("blocks"))
	}
	// A later version of a digested alert replies in the digest's thread.
	a := numbered(3)
	a.EventCount = 7
	putAlerts(t, st, a)
	clock.Advance(time.Minute)
	drive(t, p, clock, 2)
	calls := f.calls()
	last := calls[len(calls)-1]
	if last.Method != "chat.postMessage" || last.Values.Get("thread_ts") != posts[0].TS {
		t.Errorf("update of a digested alert: %+v", last)
	}
	if pendingCount(t, st, s.Name()) != 0 {
		t.Error("pending after digest")
	}
}

func TestPipelineRunDeliversOnWake(t *testing.T) {
	st := openStore(t, "")
	rec := &recorder{name: "r"}
	p, err := NewPipeline(PipelineOptions{Store: st, Tree: singleRoute("r", time.Millisecond, time.Millisecond), Notifiers: []Notifier{rec}, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	putAlerts(t, st, numbered(1))
	p.Wake()
	waitFor(t, "delivery", func() bool { return len(rec.deliveries()) == 1 })
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not stop")
	}
	if _, err := NewPipeline(PipelineOptions{Store: st, Tree: singleRoute("missing", 0, 0), Notifiers: []Notifier{rec}}); err == nil {
		t.Error("a route to an unknown receiver was accepted")
	}
}
