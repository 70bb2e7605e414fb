package alerting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack/slacktest"
)

// fakeSlack is a slacktest server whose chat.postMessage records raw
// request bodies and answers from a script (then "ok").
type fakeSlack struct {
	srv *slacktest.Server

	mu     sync.Mutex
	bodies [][]byte
	oks    []url.Values // requests answered with ok
	script []func(w http.ResponseWriter)
}

func newFakeSlack(t *testing.T, script ...func(w http.ResponseWriter)) *fakeSlack {
	t.Helper()
	f := &fakeSlack{script: script}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.postMessage)
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	var step func(http.ResponseWriter)
	if len(f.script) > 0 {
		step, f.script = f.script[0], f.script[1:]
	}
	values, _ := url.ParseQuery(string(body))
	if step == nil {
		f.oks = append(f.oks, values)
	}
	f.mu.Unlock()
	if step != nil {
		step(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": values.Get("channel"), "ts": "1700000000.000100"})
}

func (f *fakeSlack) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

func (f *fakeSlack) delivered() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.oks)
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "<html>busy</html>")
	}
}

func apiError(code string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"ok":false,"error":%q}`, code)
	}
}

func newTestSlack(t *testing.T, f *fakeSlack, p *Pseudonymizer) *Slack {
	t.Helper()
	s, err := NewSlack(SlackOptions{
		Token: "xoxb-test", Channel: "C0IGTEAM", APIURL: f.srv.GetAPIURL(),
		DashboardURL: "https://dpiawatch.example", Pseudonymizer: p, Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// blocksOf decodes the blocks of one posted message as plain JSON.
func blocksOf(t *testing.T, v url.Values) []map[string]any {
	t.Helper()
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(v.Get("blocks")), &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	return blocks
}

func TestSlackMessageContent(t *testing.T) {
	f := newFakeSlack(t)
	s := newTestSlack(t, f, NewPseudonymizer([]byte("test-key")))
	if retry, err := s.Notify(t.Context(), testAlert("a-0f3c2e9d1b7a5c4e3f2a1b0c")); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	msgs := f.delivered()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Get("channel") != "C0IGTEAM" || m.Get("unfurl_links") != "false" || m.Get("unfurl_media") != "false" {
		t.Errorf("channel %q unfurl_links %q unfurl_media %q", m.Get("channel"), m.Get("unfurl_links"), m.Get("unfurl_media"))
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(m.Get("blocks")), "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteString("\n--- fallback text\n" + m.Get("text") + "\n")
	golden(t, "slack.golden", pretty.Bytes())

	// The essentials, independent of the golden file's layout.
	raw := m.Get("blocks")
	for _, want := range []string{
		`"type":"header"`, "HIGH · no-business-need",
		"R2 — Access with no business need", "R4 — Misuse by users", "st-martins-webster-court",
		"Mon 2 Mar 2026 21:14 GMT – 21:20 GMT", "no-relationship", "u-17",
		`"url":"https://dpiawatch.example/alerts/a-0f3c2e9d1b7a5c4e3f2a1b0c"`, "Open in dashboard",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("blocks lack %q", want)
		}
	}
}

// TestSlackNotCoveredByTheDPIA: an alert whose pattern no risk of the DPIA
// covers says so in its Risks field, rather than leaving the field out.
func TestSlackNotCoveredByTheDPIA(t *testing.T) {
	s := newTestSlack(t, newFakeSlack(t), nil)
	a := testAlert("a-1")
	a.Pattern, a.Risks, a.RiskTitles = "outside-sharing-agreement", []string{}, nil
	b, err := json.Marshal(s.blocks(a, triageStatus{}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Risks\nNot covered by the DPIA"`) {
		t.Errorf("blocks lack the not-covered risks field: %s", b)
	}
}

func TestSlackWhenIsLocalTime(t *testing.T) {
	f := newFakeSlack(t)
	s := newTestSlack(t, f, nil)
	a := testAlert("a-1")
	a.FirstSeen = time.Date(2026, 7, 1, 22, 30, 0, 0, time.UTC) // BST: 23:30
	a.LastSeen = time.Date(2026, 7, 1, 23, 15, 0, 0, time.UTC)  // BST: 00:15 next day
	if got, want := s.when(a), "Wed 1 Jul 2026 23:30 BST – Thu 2 Jul 2026 00:15 BST"; got != want {
		t.Errorf("when = %q, want %q", got, want)
	}
}

func TestSlackRespectsLimits(t *testing.T) {
	f := newFakeSlack(t)
	s := newTestSlack(t, f, NewPseudonymizer([]byte("k")))
	a := testAlert("a-1")
	a.Check = strings.Repeat("très-long-", 40)    // header > 150
	a.Explanation = strings.Repeat("é<&>🙂", 1500) // 7,500 runes, more once escaped
	a.Mitigation = strings.Repeat("m", 5000)      // context > 2000
	a.ActorID = strings.Repeat("ü", 2500)         // field > 2000
	a.Pattern = strings.Repeat("&", 2000)         // escapes to 10,000
	for i := range 300 {                          // many risks, long titles
		a.Risks = append(a.Risks, fmt.Sprintf("R%d", i))
		a.RiskTitles = append(a.RiskTitles, strings.Repeat("t", 50))
	}
	if _, err := s.Notify(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	m := f.delivered()[0]
	if !utf8.ValidString(m.Get("blocks")) || !utf8.ValidString(m.Get("text")) {
		t.Fatal("invalid UTF-8 sent")
	}
	if n := utf8.RuneCountInString(m.Get("text")); n > slackMaxFallback {
		t.Errorf("fallback text %d chars", n)
	}
	blocks := blocksOf(t, m)
	if len(blocks) > 50 {
		t.Errorf("%d blocks", len(blocks))
	}
	text := func(o any) string { return o.(map[string]any)["text"].(string) }
	checkText := func(what, s string, limit int) {
		t.Helper()
		if n := utf8.RuneCountInString(s); n > limit {
			t.Errorf("%s: %d chars, limit %d", what, n, limit)
		}
		if i := strings.LastIndexByte(s, '&'); i >= 0 && !strings.Contains(s[i:], ";") {
			t.Errorf("%s: ends in a cut entity %q", what, s[i:])
		}
	}
	for _, b := range blocks {
		switch b["type"] {
		case "header":
			checkText("header", text(b["text"]), 150)
			if !strings.HasSuffix(text(b["text"]), "…") {
				t.Error("cut header not marked with …")
			}
		case "section":
			if b["text"] != nil {
				checkText("section", text(b["text"]), 3000)
			}
			fields, _ := b["fields"].([]any)
			if len(fields) > 10 {
				t.Errorf("%d fields", len(fields))
			}
			for _, fl := range fields {
				checkText("field", text(fl), 2000)
			}
		case "context":
			for _, e := range b["elements"].([]any) {
				checkText("context", text(e), 3000)
			}
		}
	}
}

func TestSlackCarriesNoSubjectIdentifiers(t *testing.T) {
	key := NewPseudonymizer([]byte("configured-secret"))
	for _, tc := range []struct {
		name string
		p    *Pseudonymizer
		want string // the subject as Slack may show it
	}{
		{"with key", key, key.Subject("c-0042")},
		{"without key", nil, ""},
		{"empty key", NewPseudonymizer(nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSlack(t)
			s := newTestSlack(t, f, tc.p)
			if _, err := s.Notify(t.Context(), testAlert("a-1")); err != nil {
				t.Fatal(err)
			}
			raw := string(f.bodies[0])
			decoded, err := url.QueryUnescape(raw)
			if err != nil {
				t.Fatal(err)
			}
			// Subject id, event ids, and the record id an explanation must not carry.
			for _, secret := range []string{"c-0042", "lmc-000123", "lmc-000124", "configured-secret"} {
				if strings.Contains(raw, secret) || strings.Contains(decoded, secret) {
					t.Errorf("request body contains %q", secret)
				}
			}
			if tc.want == "" {
				if strings.Contains(decoded, "subj-") || strings.Contains(decoded, "*Subject*") {
					t.Error("subject shown although no key is configured")
				}
				return
			}
			if len(tc.want) != len("subj-")+12 || !strings.Contains(decoded, tc.want) {
				t.Errorf("pseudonym %q not shown", tc.want)
			}
		})
	}
}

// The dispatcher waits as long as Slack's Retry-After says, then sends the
// same alert once.
func TestSlack429RetryAfterHonoured(t *testing.T) {
	f := newFakeSlack(t, status(http.StatusTooManyRequests, "Retry-After", "7"))
	s := newTestSlack(t, f, nil)

	retry, err := s.Notify(t.Context(), testAlert("a-1"))
	ra, ok := errors.AsType[*RetryAfterError](err)
	if !retry || !ok || ra.After != 7*time.Second {
		t.Fatalf("Notify on 429 = %v, %v; want retryable *RetryAfterError after 7s", retry, err)
	}

	f = newFakeSlack(t, status(http.StatusTooManyRequests, "Retry-After", "7"))
	s = newTestSlack(t, f, nil)
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	opts := fastOptions(ob, s)
	waits := recordSleeps(&opts)
	d := NewDispatcher(opts)
	runDispatcher(t, d)
	waitFor(t, "delivery", func() bool { return ob.pendingCount("slack") == 0 })
	if got := waits(); !slices.Equal(got, []time.Duration{7 * time.Second}) {
		t.Errorf("waited %v, want [7s]", got)
	}
	if n, ok := f.requests(), len(f.delivered()); n != 2 || ok != 1 {
		t.Errorf("%d requests, %d delivered; want 2 and 1", n, ok)
	}
}

func TestSlackRetriesAfter5xxThenSucceeds(t *testing.T) {
	f := newFakeSlack(t, status(http.StatusServiceUnavailable), status(http.StatusBadGateway))
	s := newTestSlack(t, f, nil)
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	d := NewDispatcher(fastOptions(ob, s))
	runDispatcher(t, d)
	waitFor(t, "delivery", func() bool { return ob.pendingCount("slack") == 0 })
	if n, ok := f.requests(), len(f.delivered()); n != 3 || ok != 1 {
		t.Errorf("%d requests, %d delivered; want 3 and 1", n, ok)
	}
	if got := counter(d, "slack", OutcomeRetry); got != 2 {
		t.Errorf("retry = %v, want 2", got)
	}
	if got := counter(d, "slack", OutcomeSuccess); got != 1 {
		t.Errorf("success = %v, want 1", got)
	}
}

// TestSlackRejectedAlertNotRetried: an alert Slack refuses (msg_too_long)
// is given up with its reason recorded and never posted again; the next
// alert goes through. (invalid_auth, once given up the same way, now
// pauses the receiver: see pause_test.go.)
func TestSlackRejectedAlertNotRetried(t *testing.T) {
	f := newFakeSlack(t, apiError("msg_too_long"))
	s := newTestSlack(t, f, nil)
	ob := newMemOutbox()
	ob.put(testAlert("a-1"))
	d := NewDispatcher(fastOptions(ob, s))
	runDispatcher(t, d)
	waitFor(t, "given up", func() bool { return ob.pendingCount("slack") == 0 })
	ob.put(testAlert("a-2"))
	d.Wake()
	waitFor(t, "next alert", func() bool { return len(f.delivered()) == 1 })
	if n := f.requests(); n != 2 {
		t.Errorf("%d requests, want 2 (a-1 once, a-2)", n)
	}
	if got := counter(d, "slack", OutcomeFailed); got != 1 {
		t.Errorf("failed = %v, want 1", got)
	}
	if got := ob.failed(); len(got) != 1 || got[0].AlertID != "a-1" || got[0].Reason != "msg_too_long" || got[0].Receiver != "slack" || got[0].Version != 1 {
		t.Errorf("failures = %+v, want a-1 v1 msg_too_long", got)
	}
}

func TestSlackPartialBatchIsNotResent(t *testing.T) {
	// Second post fails with 500: the first alert must not be posted again.
	f := newFakeSlack(t)
	f.script = []func(http.ResponseWriter){nil, status(http.StatusInternalServerError)}
	s := newTestSlack(t, f, nil)
	ob := newMemOutbox()
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		ob.put(testAlert(id))
	}
	runDispatcher(t, NewDispatcher(fastOptions(ob, s)))
	waitFor(t, "delivery", func() bool { return ob.pendingCount("slack") == 0 })
	var got []string
	for _, v := range f.delivered() {
		for _, b := range blocksOf(t, v) {
			if b["type"] == "actions" {
				got = append(got, b["elements"].([]any)[0].(map[string]any)["value"].(string))
			}
		}
	}
	if want := []string{"a-1", "a-2", "a-3"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v each once", got, want)
	}
}

func TestSlackErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name  string
		resp  func(http.ResponseWriter)
		retry bool
	}{
		{"invalid_auth", apiError("invalid_auth"), false},
		{"channel_not_found", apiError("channel_not_found"), false},
		{"not_in_channel", apiError("not_in_channel"), false},
		{"token_revoked", apiError("token_revoked"), false},
		{"invalid_blocks", apiError("invalid_blocks"), false},
		{"internal_error", apiError("internal_error"), true},
		{"ratelimited", apiError("ratelimited"), true},
		{"429 without Retry-After", status(http.StatusTooManyRequests), true},
		{"500", status(http.StatusInternalServerError), true},
		{"503", status(http.StatusServiceUnavailable), true},
		{"404", status(http.StatusNotFound), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSlack(t, tc.resp)
			s := newTestSlack(t, f, nil)
			retry, err := s.Notify(t.Context(), testAlert("a-1"))
			if err == nil || retry != tc.retry {
				t.Errorf("Notify = %v, %v; want retry %v", retry, err, tc.retry)
			}
		})
	}

	// Nothing listening: a network error, worth retrying.
	f := newFakeSlack(t)
	s := newTestSlack(t, f, nil)
	f.srv.Stop()
	if retry, err := s.Notify(t.Context(), testAlert("a-1")); err == nil || !retry {
		t.Errorf("connection refused: Notify = %v, %v; want retryable", retry, err)
	}
}

func TestNewSlackRequiresTokenAndChannel(t *testing.T) {
	if _, err := NewSlack(SlackOptions{Channel: "C1"}); err == nil {
		t.Error("accepted no token")
	}
	if _, err := NewSlack(SlackOptions{Token: "xoxb-1"}); err == nil {
		t.Error("accepted no channel")
	}
}
