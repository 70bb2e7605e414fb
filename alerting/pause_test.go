package alerting

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"
)

// TestBrokenSlackPausesInsteadOfDraining (issue 16, item 14): Slack answers
// a set-up error for ten minutes of simulated time while alerts keep
// arriving. No alert is given up; meanwhile the receiver is paused
// (readiness names it and the error, the gauge is 1); once Slack works
// again it resumes by itself and every alert is posted, in order, once.
func TestBrokenSlackPausesInsteadOfDraining(t *testing.T) {
	for _, code := range []string{"token_revoked", "invalid_auth", "channel_not_found", "not_in_channel", "account_inactive"} {
		t.Run(code, func(t *testing.T) {
			st := openStore(t, "")
			clock := newFakeClock()
			f := newThreadSlack(t)
			end := clock.Now().Add(10 * time.Minute)
			var p *Pipeline
			var mu sync.Mutex
			var failures int
			var readyDuring error
			var gaugeDuring float64
			f.fail = func(string) func(http.ResponseWriter) {
				if !clock.Now().Before(end) {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				failures++
				if failures == 3 { // by now the receiver has been told it is broken
					readyDuring = p.Ready(context.Background())
					gaugeDuring = testutil.ToFloat64(p.m.paused.WithLabelValues("ig-C1"))
				}
				return apiError(code)
			}
			s := newThreadedSlack(t, f, st, clock, nil, "C1")
			p = newTestPipeline(t, st, singleRoute(s.Name(), 0, time.Second), clock, s)
			var want []string
			for i := range 12 {
				a := numbered(i)
				want = append(want, a.ID)
				putAlerts(t, st, a)
				if i%4 == 3 {
					drive(t, p, clock, 2)
				}
			}
			drive(t, p, clock, 3)
			mu.Lock()
			defer mu.Unlock()
			var got []string
			for _, c := range f.posts() {
				got = append(got, alertIDOf(c))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("posted %v\nwant %v", got, want)
			}
			if n := pendingCount(t, st, s.Name()); n != 0 {
				t.Fatalf("%d still pending", n)
			}
			if readyDuring == nil || !strings.Contains(readyDuring.Error(), "receiver ig-C1 paused") || !strings.Contains(readyDuring.Error(), code) {
				t.Errorf("readiness during the outage = %v, want the receiver and %s named", readyDuring, code)
			}
			if gaugeDuring != 1 {
				t.Errorf("paused gauge during the outage = %v, want 1", gaugeDuring)
			}
			if err := p.Ready(context.Background()); err != nil {
				t.Errorf("readiness after recovery = %v, want nil", err)
			}
			if g := testutil.ToFloat64(p.m.paused.WithLabelValues("ig-C1")); g != 0 {
				t.Errorf("paused gauge after recovery = %v", g)
			}
			if n := testutil.ToFloat64(p.m.pauses.WithLabelValues("ig-C1")); n != 1 {
				t.Errorf("pauses = %v, want 1", n)
			}
			if n := testutil.ToFloat64(p.m.notifications.WithLabelValues("ig-C1", OutcomeFailed)); n != 0 {
				t.Errorf("failed = %v, want 0", n)
			}
			for _, id := range want {
				if fs, err := st.DeliveryFailures(context.Background(), id); err != nil || len(fs) != 0 {
					t.Errorf("failures of %s = %+v, %v", id, fs, err)
				}
			}
		})
	}
}

// TestRejectedAlertGivenUpWithReasonAndResent: Slack refuses one alert
// (msg_too_long). Only that one is given up, with its reason recorded; the
// receiver is not paused; the others are posted. Re-sending it puts it
// back in the queue and it is posted once.
func TestRejectedAlertGivenUpWithReasonAndResent(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	f := newThreadSlack(t)
	posts := 0
	f.fail = func(method string) func(http.ResponseWriter) {
		if method != "chat.postMessage" {
			return nil
		}
		posts++
		if posts == 3 {
			return apiError("msg_too_long")
		}
		return nil
	}
	s := newThreadedSlack(t, f, st, clock, nil, "C1")
	p := newTestPipeline(t, st, singleRoute(s.Name(), 0, time.Second), clock, s)
	var ids []string
	for i := range 5 {
		putAlerts(t, st, numbered(i))
		ids = append(ids, numbered(i).ID)
	}
	drive(t, p, clock, 2)
	var got []string
	for _, c := range f.posts() {
		got = append(got, alertIDOf(c))
	}
	if want := []string{ids[0], ids[1], ids[3], ids[4]}; !slices.Equal(got, want) {
		t.Fatalf("posted %v, want %v", got, want)
	}
	ctx := context.Background()
	fs, err := st.DeliveryFailures(ctx, ids[2])
	if err != nil || len(fs) != 1 || fs[0].Reason != "msg_too_long" || fs[0].Receiver != s.Name() || fs[0].Version != 1 {
		t.Fatalf("failures of %s = %+v, %v", ids[2], fs, err)
	}
	if err := p.Ready(ctx); err != nil {
		t.Errorf("one refused alert paused the receiver: %v", err)
	}
	if n := testutil.ToFloat64(p.m.notifications.WithLabelValues(s.Name(), OutcomeFailed)); n != 1 {
		t.Errorf("failed = %v, want 1", n)
	}
	if err := st.Resend(ctx, s.Name(), ids[2], audit.Entry{At: clock.Now(), Actor: "ig-lead", Action: "alert.resend", Object: ids[2]}); err != nil {
		t.Fatal(err)
	}
	drive(t, p, clock, 2)
	got = got[:0]
	for _, c := range f.posts() {
		got = append(got, alertIDOf(c))
	}
	if want := []string{ids[0], ids[1], ids[3], ids[4], ids[2]}; !slices.Equal(got, want) {
		t.Fatalf("after re-send posted %v, want %v", got, want)
	}
	if fs, _ := st.DeliveryFailures(ctx, ids[2]); len(fs) != 0 {
		t.Errorf("failure still listed after re-send: %+v", fs)
	}
	if pendingCount(t, st, s.Name()) != 0 {
		t.Error("queue not drained")
	}
}

// TestDispatcherBrokenSlackPauses: the plain dispatcher shares the rules:
// a revoked token gives up on nothing, fails readiness while it lasts,
// and everything is delivered in order once it works.
func TestDispatcherBrokenSlackPauses(t *testing.T) {
	var d *Pipeline
	var mu sync.Mutex
	var readyDuring error
	observe := func(w http.ResponseWriter) {
		mu.Lock()
		readyDuring = d.Ready(context.Background())
		mu.Unlock()
		apiError("token_revoked")(w)
	}
	f := newFakeSlack(t, apiError("token_revoked"), apiError("token_revoked"), observe, apiError("invalid_auth"))
	s := newTestSlack(t, f, nil)
	ob := newMemOutbox()
	var want []string
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		ob.put(testAlert(id))
		want = append(want, "https://dpiawatch.example/alerts/"+id)
	}
	d = NewDispatcher(fastOptions(ob, s))
	runDispatcher(t, d)
	waitFor(t, "queue drained", func() bool { return ob.pendingCount(s.Name()) == 0 })
	var got []string
	for _, v := range f.delivered() {
		got = append(got, dashboardOf(t, v.Get("blocks")))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if n := counter(d, s.Name(), OutcomeFailed); n != 0 {
		t.Errorf("failed = %v, want 0", n)
	}
	if len(ob.failed()) != 0 {
		t.Errorf("failures recorded: %+v", ob.failed())
	}
	mu.Lock()
	defer mu.Unlock()
	if readyDuring == nil || !strings.Contains(readyDuring.Error(), "receiver slack paused") || !strings.Contains(readyDuring.Error(), "token_revoked") {
		t.Errorf("readiness during the outage = %v", readyDuring)
	}
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("readiness after recovery = %v", err)
	}
	// While paused, only the oldest alert probes the receiver: 4 refused
	// probes of a-1, then a-1, a-2, a-3.
	if n := f.requests(); n != 7 {
		t.Errorf("%d requests, want 7", n)
	}
}

// dashboardOf finds the dashboard link in a message's blocks.
func dashboardOf(t *testing.T, blocks string) string {
	t.Helper()
	id := alertIDOf(slackCall{Values: map[string][]string{"blocks": {blocks}}})
	if id == "" {
		t.Fatalf("no dashboard link in %.200s", blocks)
	}
	return "https://dpiawatch.example/alerts/" + id
}

// TestErrorKinds: how Slack's answers and webhook statuses are classified.
func TestErrorKinds(t *testing.T) {
	transient := ErrorKind(-1) // classify's answer for an unwrapped retryable error
	for _, tc := range []struct {
		name   string
		err    error
		kind   ErrorKind
		reason string
	}{
		{"token_revoked", slack.SlackErrorResponse{Err: "token_revoked"}, KindReceiver, "token_revoked"},
		{"not_authed", slack.SlackErrorResponse{Err: "not_authed"}, KindReceiver, "not_authed"},
		{"missing_scope", slack.SlackErrorResponse{Err: "missing_scope"}, KindReceiver, "missing_scope"},
		{"is_archived", slack.SlackErrorResponse{Err: "is_archived"}, KindReceiver, "is_archived"},
		{"ekm_access_denied", slack.SlackErrorResponse{Err: "ekm_access_denied"}, KindReceiver, "ekm_access_denied"},
		{"team_access_not_granted", slack.SlackErrorResponse{Err: "team_access_not_granted"}, KindReceiver, "team_access_not_granted"},
		{"unknown code: pause, lose nothing", slack.SlackErrorResponse{Err: "something_new"}, KindReceiver, "something_new"},
		{"msg_too_long", slack.SlackErrorResponse{Err: "msg_too_long"}, KindAlert, "msg_too_long"},
		{"invalid_blocks", slack.SlackErrorResponse{Err: "invalid_blocks"}, KindAlert, "invalid_blocks"},
		{"ratelimited", slack.SlackErrorResponse{Err: "ratelimited"}, transient, ""},
		{"internal_error", slack.SlackErrorResponse{Err: "internal_error"}, transient, ""},
		{"http 503", slack.StatusCodeError{Code: 503}, transient, ""},
		{"http 404 (incoming webhook gone)", slack.StatusCodeError{Code: 404}, KindReceiver, "http 404"},
		{"http 400 (incoming webhook payload)", slack.StatusCodeError{Code: 400}, KindAlert, "http 400"},
		{"429", &slack.RateLimitedError{RetryAfter: time.Second}, transient, ""},
		{"network", errors.New("connection refused"), transient, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			retry, err := slackFailure(0, fmt.Errorf("slack notifier: %w", tc.err))
			kind, reason := classify(retry, err)
			if tc.kind == transient {
				if !retry || kind != KindTransient {
					t.Errorf("retry %v kind %v, want transient", retry, kind)
				}
				return
			}
			if retry || kind != tc.kind || reason != tc.reason {
				t.Errorf("retry %v kind %v reason %q, want %v %q", retry, kind, reason, tc.kind, tc.reason)
			}
		})
	}
	for _, tc := range []struct {
		status int
		kind   ErrorKind
	}{
		{401, KindReceiver}, {403, KindReceiver}, {404, KindReceiver}, {410, KindReceiver},
		{400, KindAlert}, {413, KindAlert}, {422, KindAlert},
		{500, KindTransient}, {503, KindTransient}, {408, KindTransient}, {429, KindTransient},
	} {
		t.Run(fmt.Sprintf("webhook %d", tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
			defer srv.Close()
			wh, err := NewWebhook(WebhookOptions{URL: srv.URL, Secret: []byte("s")})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := wh.Notify(context.Background(), testAlert("a-1"))
			kind, reason := classify(retry, err)
			if err == nil || kind != tc.kind || retry != (tc.kind == KindTransient) {
				t.Fatalf("retry %v kind %v (%v), want %v", retry, kind, err, tc.kind)
			}
			if tc.kind != KindTransient && reason != fmt.Sprintf("http %d", tc.status) {
				t.Errorf("reason %q", reason)
			}
		})
	}
}
