package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// fakeClock is a simulated clock: Sleep advances it at once, so retries
// over a ten-minute outage take no real time.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "s.db")
	}
	s, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// putAlerts stores alerts through the store's only write path.
func putAlerts(t testing.TB, s store.Writer, alerts ...alert.Alert) {
	t.Helper()
	_, err := s.Apply(context.Background(), nil, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: alerts}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// slackCall is one Web API request the threaded fake answered.
type slackCall struct {
	Method string // chat.postMessage or chat.update
	Values url.Values
	TS     string // the ts answered (postMessage) or updated
}

// threadSlack is a slacktest server with chat.postMessage and chat.update
// that hands out increasing ts; fail, when set, decides per request whether
// to answer with an error instead.
type threadSlack struct {
	srv  *slacktest.Server
	mu   sync.Mutex
	seq  int
	ok   []slackCall
	raw  []string // every request body, for privacy checks
	fail func(method string) func(http.ResponseWriter)
}

func newThreadSlack(t *testing.T) *threadSlack {
	t.Helper()
	f := &threadSlack{}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.handler("chat.postMessage"))
		c.Handle("/chat.update", f.handler("chat.update"))
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *threadSlack) handler(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(body))
		f.mu.Lock()
		f.raw = append(f.raw, string(body))
		var fail func(http.ResponseWriter)
		if f.fail != nil {
			fail = f.fail(method)
		}
		if fail != nil {
			f.mu.Unlock()
			fail(w)
			return
		}
		ts := v.Get("ts")
		if method == "chat.postMessage" {
			f.seq++
			ts = fmt.Sprintf("1700000000.%06d", f.seq)
		}
		f.ok = append(f.ok, slackCall{Method: method, Values: v, TS: ts})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": v.Get("channel"), "ts": ts})
	}
}

func (f *threadSlack) calls() []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackCall(nil), f.ok...)
}

// posts returns the top-level messages (not thread replies), in order.
func (f *threadSlack) posts() []slackCall {
	var out []slackCall
	for _, c := range f.calls() {
		if c.Method == "chat.postMessage" && c.Values.Get("thread_ts") == "" {
			out = append(out, c)
		}
	}
	return out
}

func (f *threadSlack) bodies() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.raw, "\n")
}

// alertIDOf finds the alert id a message is about (its dashboard link).
func alertIDOf(c slackCall) string {
	b := c.Values.Get("blocks")
	i := strings.Index(b, "/alerts/")
	if i < 0 {
		return ""
	}
	rest := b[i+len("/alerts/"):]
	return rest[:strings.IndexAny(rest, `"\`)]
}

func newThreadedSlack(t *testing.T, f *threadSlack, st SlackStore, clock Clock, lim *ChannelLimiter, channel string) *Slack {
	t.Helper()
	s, err := NewSlack(SlackOptions{Name: "ig-" + channel, Token: "xoxb-test", Channel: channel, APIURL: f.srv.GetAPIURL(),
		DashboardURL: "https://dpiawatch.example", Pseudonymizer: NewPseudonymizer([]byte("k")), Timeout: 2 * time.Second,
		Store: st, Interactive: true, Limiter: lim, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func singleRoute(receiver string, wait, interval time.Duration) *Tree {
	tr, err := NewTree(&Route{Receiver: receiver, GroupWait: wait, GroupInterval: interval, RepeatInterval: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	return tr
}

func newTestPipeline(t *testing.T, st store.AlertingStore, tree *Tree, clock Clock, ns ...Notifier) *Pipeline {
	t.Helper()
	p, err := NewPipeline(PipelineOptions{Store: st, Tree: tree, Notifiers: ns, Clock: clock, DigestThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// drive runs the receiver loop's steps, advancing the clock to each next
// timer, until nothing is pending or rounds run out.
func drive(t *testing.T, p *Pipeline, clock *fakeClock, rounds int) {
	t.Helper()
	for range rounds {
		for _, l := range p.loops {
			next, err := l.step(context.Background())
			if err != nil {
				t.Fatalf("step: %v", err)
			}
			if !next.IsZero() && next.After(clock.Now()) {
				clock.Advance(next.Sub(clock.Now()))
			}
		}
	}
}

func numbered(i int) alert.Alert {
	a := testAlert(fmt.Sprintf("a-%03d", i))
	a.Version = 0
	a.FirstSeen = a.FirstSeen.Add(time.Duration(i) * time.Minute)
	return a
}
