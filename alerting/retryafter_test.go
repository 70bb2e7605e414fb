package alerting

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// TestRetryAfterIsReceiverNeutral: a receiver that says when to retry
// (HTTP 429 with Retry-After) reports it as the delivery loop's own
// *RetryAfterError, whatever the receiver; Slack's client type stays
// inside the Slack notifier.
func TestRetryAfterIsReceiverNeutral(t *testing.T) {
	tooMany := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	srv := httptest.NewServer(http.HandlerFunc(tooMany))
	t.Cleanup(srv.Close)

	wh, err := NewWebhook(WebhookOptions{URL: srv.URL, Secret: []byte("k"), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sw, err := NewSlackWebhook(SlackWebhookOptions{URL: srv.URL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sl := newTestSlack(t, newFakeSlack(t, status(http.StatusTooManyRequests, "Retry-After", "7")), nil)

	for _, tc := range []struct {
		name   string
		notify func() (bool, error)
	}{
		{"webhook", func() (bool, error) { return wh.Notify(t.Context(), testAlert("a-1")) }},
		{"slack webhook", func() (bool, error) { return sw.Notify(t.Context(), testAlert("a-1")) }},
		{"slack", func() (bool, error) { return sl.Notify(t.Context(), testAlert("a-1")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			retry, err := tc.notify()
			if _, ok := errors.AsType[*slack.RateLimitedError](err); ok {
				t.Errorf("429 gives Slack's client error type to the delivery loop: %v", err)
			}
			ra, ok := errors.AsType[*RetryAfterError](err)
			if !retry || !ok || ra.After != 7*time.Second {
				t.Fatalf("Notify on 429 = %v, %v; want retryable *RetryAfterError after 7s", retry, err)
			}
			if kind, _ := classify(retry, err); kind != KindTransient {
				t.Errorf("kind %v, want transient", kind)
			}
		})
	}
}
