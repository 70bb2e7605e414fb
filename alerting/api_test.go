package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/triage"
)

const apiToken = "test-token"

func apiDo(t *testing.T, h http.Handler, method, path, body string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result(), w.Body.String()
}

// slackRequest builds an interactivity request signed as Slack signs it.
func slackRequest(secret string, ts time.Time, payload string) *http.Request {
	body := "payload=" + url.QueryEscape(payload)
	req := httptest.NewRequest(http.MethodPost, "/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sec := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:%s", sec, body)
	req.Header.Set("X-Slack-Request-Timestamp", sec)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(m.Sum(nil)))
	return req
}

func buttonPayload(action, alertID string) string {
	return fmt.Sprintf(`{"type":"block_actions","user":{"id":"U0IG1","name":"jo"},"actions":[{"action_id":%q,"block_id":"b","value":%q,"type":"button"}]}`, action, alertID)
}

// TestTriageRoundTripSlackSignature: a Slack button press (signed) and an
// API call are stored, audited, and shown in the alert's thread with the
// message's status updated; forged and stale interactions are refused.
func TestTriageRoundTripSlackSignature(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	clock := newFakeClock()
	f := newThreadSlack(t)
	s := newThreadedSlack(t, f, st, clock, nil, "C1")
	p := newTestPipeline(t, st, singleRoute(s.Name(), 0, time.Second), clock, s)
	a := numbered(1)
	putAlerts(t, st, a)
	drive(t, p, clock, 2)
	posts := f.posts()
	if len(posts) != 1 || !strings.Contains(posts[0].Values.Get("blocks"), "triage_confirmed_misuse") ||
		!strings.Contains(posts[0].Values.Get("blocks"), "untriaged") {
		t.Fatalf("first post lacks triage buttons or status: %v", posts)
	}
	api := NewAPI(APIOptions{Store: st, Token: apiToken, SlackSigningSecret: "shh", OnChange: p.Wake})

	// Forged: signed with another secret. Stale: six minutes old.
	for name, req := range map[string]*http.Request{
		"forged": slackRequest("not-the-secret", time.Now(), buttonPayload("triage_acknowledged", a.ID)),
		"stale":  slackRequest("shh", time.Now().Add(-6*time.Minute), buttonPayload("triage_acknowledged", a.ID)),
	} {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s interaction: status %d, want 401", name, w.Code)
		}
	}
	tampered := slackRequest("shh", time.Now(), buttonPayload("triage_acknowledged", a.ID))
	tampered.Body = io.NopCloser(strings.NewReader("payload=" + url.QueryEscape(buttonPayload("triage_false_positive", a.ID))))
	w := httptest.NewRecorder()
	api.ServeHTTP(w, tampered)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("tampered body: status %d", w.Code)
	}
	if ts, _ := st.Triages(ctx, a.ID); len(ts) != 0 {
		t.Fatalf("refused interactions stored triage: %v", ts)
	}

	w = httptest.NewRecorder()
	api.ServeHTTP(w, slackRequest("shh", time.Now(), buttonPayload("triage_acknowledged", a.ID)))
	if w.Code != http.StatusOK {
		t.Fatalf("valid interaction: %d %s", w.Code, w.Body)
	}
	resp, body := apiDo(t, api, http.MethodPost, "/api/v1/alerts/"+a.ID+"/triage", `{"outcome":"explained","actor":"ig-jo","note":"covering a colleague's shift"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("API triage: %d %s", resp.StatusCode, body)
	}
	drive(t, p, clock, 2)

	ts, _ := st.Triages(ctx, a.ID)
	if len(ts) != 2 || ts[0].Actor != "slack:U0IG1" || ts[0].Outcome != triage.Acknowledged || ts[1].Actor != "api:shared" ||
		ts[1].Note != `[on behalf of "ig-jo", as stated by api:shared] covering a colleague's shift` {
		t.Fatalf("stored triages: %+v", ts)
	}
	var replies, updates []slackCall
	for _, c := range f.calls() {
		switch {
		case c.Method == "chat.update":
			updates = append(updates, c)
		case c.Values.Get("thread_ts") == posts[0].TS:
			replies = append(replies, c)
		}
	}
	// The mention and the note are in the replies' blocks (the note as
	// plain_text); the top-level text is only the preview.
	if len(replies) != 2 || !strings.Contains(textsOf(t, replies[0].Values), "Acknowledged* by <@U0IG1>") ||
		!strings.Contains(textsOf(t, replies[1].Values), "Note: [on behalf of") || !strings.Contains(textsOf(t, replies[1].Values), "as stated by api:shared] covering a colleague") {
		t.Errorf("thread replies: %+v", replies)
	}
	if len(updates) != 2 || updates[1].Values.Get("ts") != posts[0].TS || !strings.Contains(updates[1].Values.Get("blocks"), "Explained (legitimate reason) by api:shared") {
		t.Errorf("message updates: %+v", updates)
	}
	log, _ := st.AuditLog(ctx, 0)
	if len(log) != 2 || log[1].Action != "triage.acknowledged" || log[0].Actor != "api:shared" {
		t.Errorf("audit: %+v", log)
	}
	for _, bad := range []struct{ path, body string }{
		{"/api/v1/alerts/" + a.ID + "/triage", `{"outcome":"maybe","actor":"x"}`},
		{"/api/v1/alerts/" + a.ID + "/triage", `{"outcome":"explained","actor":"` + strings.Repeat("x", 201) + `"}`},
		{"/api/v1/alerts/" + a.ID + "/triage", `{"outcome":"explained","note":"` + strings.Repeat("x", 2001) + `"}`},
	} {
		if resp, _ := apiDo(t, api, http.MethodPost, bad.path, bad.body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", bad.body, resp.StatusCode)
		}
	}
	if resp, _ := apiDo(t, api, http.MethodPost, "/api/v1/alerts/a-nope/triage", `{"outcome":"explained","actor":"x"}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown alert: %d", resp.StatusCode)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/alerts/"+a.ID+"/triage", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	w = httptest.NewRecorder()
	api.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", w.Code)
	}
	assertNoPersonalData(t, f.bodies())
}

func TestSilenceCRUDOverAPIIsAudited(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	api := NewAPI(APIOptions{Store: st, Token: apiToken, Clock: clock})
	ends := clock.Now().Add(time.Hour).Format(time.RFC3339)
	resp, body := apiDo(t, api, http.MethodPost, "/api/v1/silences",
		`{"matchers":["check=\"out-of-hours\""],"ends_at":"`+ends+`","created_by":"ig-jo","comment":"bank holiday rota"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var s silence.Silence
	_ = json.Unmarshal([]byte(body), &s)
	if resp, body := apiDo(t, api, http.MethodPut, "/api/v1/silences/"+s.ID,
		`{"matchers":["check=\"out-of-hours\"","org=\"st-martins\""],"ends_at":"`+ends+`","created_by":"ig-jo","comment":"narrowed","actor":"ig-sam"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	if _, body := apiDo(t, api, http.MethodGet, "/api/v1/silences", ""); !strings.Contains(body, "narrowed") {
		t.Fatalf("list: %s", body)
	}
	clock.Advance(time.Minute)
	if resp, body := apiDo(t, api, http.MethodDelete, "/api/v1/silences/"+s.ID+"?actor=ig-jo", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("expire: %d %s", resp.StatusCode, body)
	}
	if _, body := apiDo(t, api, http.MethodGet, "/api/v1/silences", ""); body != "[]\n" {
		t.Fatalf("expired silence still listed: %s", body)
	}
	if _, body := apiDo(t, api, http.MethodGet, "/api/v1/silences?all=true", ""); !strings.Contains(body, s.ID) {
		t.Fatalf("expired silence lost: %s", body)
	}
	_, body = apiDo(t, api, http.MethodGet, "/api/v1/audit", "")
	var log []audit.Entry
	_ = json.Unmarshal([]byte(body), &log)
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Actor+" "+e.Action)
	}
	// The client is who acts; the people named in the bodies are its statements.
	if got := strings.Join(actions, ", "); got != "api:shared silence.expire, api:shared silence.update, api:shared silence.create" {
		t.Errorf("audit = %s", got)
	}
	if !strings.Contains(log[0].Detail, `[on behalf of \"ig-jo\", as stated by api:shared] expired; [on behalf of \"ig-sam\", as stated by api:shared] narrowed`) {
		t.Errorf("expire audit detail lacks the stated people: %s", log[0].Detail)
	}
	for _, bad := range []struct {
		body string
		code int
	}{
		{`{"matchers":["subject=\"c-1\""],"ends_at":"` + ends + `","created_by":"x","comment":"y"}`, http.StatusBadRequest},
		{`{"matchers":["check=\"x\""],"ends_at":"2000-01-01T00:00:00Z","created_by":"x","comment":"y"}`, http.StatusBadRequest},
		{`{"matchers":["check=\"x\""],"ends_at":"` + ends + `","created_by":"x"}`, http.StatusUnprocessableEntity},
		{`{"matchers":["check=\"x\""]`, http.StatusBadRequest},
	} {
		if resp, _ := apiDo(t, api, http.MethodPost, "/api/v1/silences", bad.body); resp.StatusCode != bad.code {
			t.Errorf("%s: %d, want %d", bad.body, resp.StatusCode, bad.code)
		}
	}
}

func TestWebhookSignatureAndRetry(t *testing.T) {
	secret := []byte("hook-secret")
	var got [][]byte
	var headers []http.Header
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		b, _ := io.ReadAll(r.Body)
		if calls == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		if err := VerifySignature(secret, r.Header, b, time.Now(), 5*time.Minute); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got, headers = append(got, b), append(headers, r.Header.Clone())
	}))
	defer srv.Close()
	st := openStore(t, "")
	clock := newFakeClock()
	wh, err := NewWebhook(WebhookOptions{URL: srv.URL, Secret: secret, Pseudonymizer: NewPseudonymizer([]byte("k"))})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, st, singleRoute("webhook", 0, time.Second), clock, wh)
	putAlerts(t, st, numbered(1))
	drive(t, p, clock, 2)
	if len(got) != 1 || calls != 2 {
		t.Fatalf("deliveries %d after %d calls", len(got), calls)
	}
	var payload WebhookPayload
	if err := json.Unmarshal(got[0], &payload); err != nil || len(payload.Alerts) != 1 || !strings.HasPrefix(payload.Alerts[0].SubjectID, "subj-") {
		t.Fatalf("payload: %s", got[0])
	}
	if headers[0].Get(HeaderDelivery) == "" {
		t.Error("no delivery id")
	}
	// A forged or stale body fails verification.
	h := http.Header{}
	now := time.Now()
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, now, got[0]))
	if VerifySignature(secret, h, append(bytes.Clone(got[0]), ' '), now, time.Minute) == nil {
		t.Error("tampered body verified")
	}
	if VerifySignature(secret, h, got[0], now.Add(10*time.Minute), 5*time.Minute) == nil {
		t.Error("stale signature verified")
	}
	if VerifySignature(secret, h, got[0], now, time.Minute) != nil {
		t.Error("valid signature refused")
	}
}
