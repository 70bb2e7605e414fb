package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/dpiawatch/dpiawatch/alert"
)

// SlackWebhookOptions configures NewSlackWebhook.
type SlackWebhookOptions struct {
	Name          string // default "slack-webhook"
	URL           string // the incoming webhook URL (a secret: it is the credential)
	DashboardURL  string
	Pseudonymizer *Pseudonymizer
	Privacy       Privacy
	Timeout       time.Duration // default 10s
	HTTPClient    *http.Client
}

// SlackWebhook posts each alert through a Slack incoming webhook: the same
// Block Kit message as Slack, without updates, threads or buttons (a
// webhook cannot edit what it posted).
type SlackWebhook struct {
	name   string
	url    string
	render *Slack
	hc     *http.Client
}

// NewSlackWebhook returns an incoming-webhook notifier.
func NewSlackWebhook(o SlackWebhookOptions) (*SlackWebhook, error) {
	if o.URL == "" {
		return nil, errors.New("slack webhook notifier: url is required")
	}
	render, err := NewSlack(SlackOptions{Token: "-", Channel: "-", DashboardURL: o.DashboardURL, Pseudonymizer: o.Pseudonymizer, Privacy: o.Privacy})
	if err != nil {
		return nil, err
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cmpDuration(o.Timeout, 10*time.Second)}
	}
	return &SlackWebhook{name: cmpOr(o.Name, "slack-webhook"), url: o.URL, render: render, hc: hc}, nil
}

func cmpDuration(d, def time.Duration) time.Duration { return orDuration(d, def) }

// Name implements Notifier.
func (w *SlackWebhook) Name() string { return w.name }

// Notify implements Notifier.
func (w *SlackWebhook) Notify(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	for i, a := range alerts {
		blocks := w.render.blocks(a, triageStatus{})
		// parse=none: the fallback text carries the explanation (data).
		msg := &slack.WebhookMessage{Text: w.render.fallback(a), Parse: "none", Blocks: &slack.Blocks{BlockSet: blocks}}
		if err := slack.PostWebhookCustomHTTPContext(ctx, w.url, w.hc, msg); err != nil {
			return slackFailure(i, fmt.Errorf("slack webhook notifier: %w", hideURL(err, w.url)))
		}
	}
	return false, nil
}

// NotifyDigest implements Digester.
func (w *SlackWebhook) NotifyDigest(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	msg := &slack.WebhookMessage{Text: fmt.Sprintf("%d dpiawatch alerts (digest)", len(alerts))}
	msg.Blocks = &slack.Blocks{BlockSet: w.render.digestBlocks(alerts)}
	if err := slack.PostWebhookCustomHTTPContext(ctx, w.url, w.hc, msg); err != nil {
		return slackFailure(0, fmt.Errorf("slack webhook notifier: digest: %w", hideURL(err, w.url)))
	}
	return false, nil
}

// Webhook signature headers. The signature is hex HMAC-SHA256, keyed by the
// receiver's secret, over "v1:" + timestamp + ":" + body; receivers must
// recompute it, compare in constant time and refuse timestamps more than
// five minutes old (replays).
const (
	HeaderTimestamp = "X-Dpiawatch-Timestamp"
	HeaderSignature = "X-Dpiawatch-Signature" // "v1=" + hex
	HeaderDelivery  = "X-Dpiawatch-Delivery"  // idempotency key: the same alert versions give the same key
)

// Sign returns the signature header value for body sent at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "v1:%d:", ts.Unix())
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a signed request as a receiver should: the
// signature matches and the timestamp is within maxAge of now.
func VerifySignature(secret []byte, header http.Header, body []byte, now time.Time, maxAge time.Duration) error {
	sec, err := strconv.ParseInt(header.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return errors.New("webhook: missing or bad timestamp")
	}
	ts := time.Unix(sec, 0)
	if now.Sub(ts).Abs() > maxAge {
		return errors.New("webhook: stale timestamp")
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(header.Get(HeaderSignature))) {
		return errors.New("webhook: bad signature")
	}
	return nil
}

// WebhookOptions configures NewWebhook.
type WebhookOptions struct {
	Name          string // default "webhook"
	URL           string
	Secret        []byte // HMAC key; required
	Pseudonymizer *Pseudonymizer
	Clock         Clock
	Timeout       time.Duration // default 10s
	HTTPClient    *http.Client
}

// Webhook POSTs alerts as signed JSON: {"receiver": …, "alerts": [CONTRACT
// §3 alerts, subject pseudonymised or empty]}.
type Webhook struct {
	o  WebhookOptions
	hc *http.Client
}

// NewWebhook returns a generic webhook notifier.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.URL == "" || len(o.Secret) == 0 {
		return nil, errors.New("webhook notifier: url and secret are required")
	}
	o.Name = cmpOr(o.Name, "webhook")
	if o.Clock == nil {
		o.Clock = RealClock
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cmpDuration(o.Timeout, 10*time.Second)}
	}
	return &Webhook{o: o, hc: hc}, nil
}

// Name implements Notifier.
func (w *Webhook) Name() string { return w.o.Name }

// WebhookPayload is the body of a webhook notification.
type WebhookPayload struct {
	Receiver string        `json:"receiver"`
	Digest   bool          `json:"digest"`
	Alerts   []alert.Alert `json:"alerts"`
}

// Notify implements Notifier: one request for the batch (all or nothing).
func (w *Webhook) Notify(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	return w.send(ctx, false, alerts)
}

// NotifyDigest implements Digester: the same payload, marked as a digest.
func (w *Webhook) NotifyDigest(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	return w.send(ctx, true, alerts)
}

func (w *Webhook) send(ctx context.Context, digest bool, alerts []alert.Alert) (bool, error) {
	p := WebhookPayload{Receiver: w.o.Name, Digest: digest, Alerts: make([]alert.Alert, len(alerts))}
	key := sha256.New()
	for i, a := range alerts {
		p.Alerts[i] = redact(a, w.o.Pseudonymizer)
		fmt.Fprintf(key, "%s/%d\n", a.ID, a.Version)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("webhook notifier: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook notifier: %w", err)
	}
	now := w.o.Clock.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(w.o.Secret, now, body))
	req.Header.Set(HeaderDelivery, hex.EncodeToString(key.Sum(nil))[:32])
	resp, err := w.hc.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook notifier: %w", hideURL(err, w.o.URL))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
			return true, &RetryAfterError{After: time.Duration(s) * time.Second, Err: fmt.Errorf("webhook notifier: status %d", resp.StatusCode)}
		}
		return true, fmt.Errorf("webhook notifier: status %d", resp.StatusCode)
	}
	err = classifyHTTPStatus(resp.StatusCode, fmt.Errorf("webhook notifier: status %d", resp.StatusCode))
	kind, _ := classify(true, err)
	return kind == KindTransient, err
}

// hideURL returns err with every occurrence of secretURL replaced by its
// scheme and host: an incoming webhook's path is its credential, and
// net/http's errors (Post "https://…": dial tcp …) carry the whole URL into
// logs and /readyz. The original error stays reachable through Unwrap for
// classification.
func hideURL(err error, secretURL string) error {
	if err == nil || secretURL == "" || !strings.Contains(err.Error(), secretURL) {
		return err
	}
	shown := "the configured URL"
	if u, perr := url.Parse(secretURL); perr == nil && u.Host != "" {
		shown = u.Scheme + "://" + u.Host + "/…"
	}
	return &hiddenURLError{msg: strings.ReplaceAll(err.Error(), secretURL, shown), err: err}
}

type hiddenURLError struct {
	msg string
	err error
}

func (e *hiddenURLError) Error() string { return e.msg }
func (e *hiddenURLError) Unwrap() error { return e.err }
