package daemon

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alerting"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testwait"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// TestDaemonRoutedAlertingAndTriageAPI wires a daemon with a routing tree, a
// signed webhook receiver and the triage API, feeds it an out-of-hours
// episode, and checks that the alert reaches the webhook signed, and that a
// triage over the daemon's API is stored and audited.
func TestDaemonRoutedAlertingAndTriageAPI(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var deliveries [][]byte
	secret := "webhook-secret-for-tests"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := alerting.VerifySignature([]byte(secret), r.Header, body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		deliveries = append(deliveries, body)
		mu.Unlock()
	}))
	defer hook.Close()
	for name, v := range map[string]string{"hook.secret": secret, "api.token": "api-token-for-tests", "soc.token": "soc-bot-token-for-tests"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dpias, _ := filepath.Abs("../configs/dpia")
	cfgText := `dpias:
  - file: ` + dpias + `/st-martins-webster-court.yaml
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
ingest:
  # The events are dated March 2026: a window that holds them whenever the test runs.
  event_time: {max_age: 876000h}
store:
  embedded: {path: ` + filepath.Join(dir, "d.db") + `}
reference:
  dir: ` + dir + `
checks:
  lateness: 0s
  out-of-hours:
    evidences: {st-martins-webster-court: [R2]}
alerting:
  console: {enabled: false}
  api:
    token: {file: ` + filepath.Join(dir, "api.token") + `}
    clients: [{name: soc-bot, token: {file: ` + filepath.Join(dir, "soc.token") + `}, permissions: [triage]}]
  receivers:
    - name: ig-webhook
      webhook: {url: ` + hook.URL + `, secret: {file: ` + filepath.Join(dir, "hook.secret") + `}}
  route:
    receiver: ig-webhook
    group_wait: 10ms
    group_interval: 10ms
http:
  listen: 127.0.0.1:0
`
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d, stop := startDaemon(t, cfgPath)

	// An office worker (no shifts) reading records at 23:10 on a weekday.
	at := time.Date(2026, 3, 4, 23, 10, 0, 0, time.UTC)
	if _, err := d.stream.Process(ctx, officeWorkerViews(at)); err != nil {
		t.Fatal(err)
	}
	alerts, err := d.Store().Alerts(ctx, store.AlertFilter{})
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %v, %v; want one out-of-hours alert", alerts, err)
	}
	id := alerts[0].ID

	testwait.For(t, 10*time.Second, "the routed webhook to receive the alert", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries) > 0
	})
	mu.Lock()
	body := string(deliveries[0])
	mu.Unlock()
	if !strings.Contains(body, id) || !strings.Contains(body, `"out-of-hours"`) || strings.Contains(body, "c-0042") {
		t.Errorf("webhook body lacks the alert or carries the raw subject id: %s", body)
	}

	postTriage := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, d.URL()+"/api/v1/alerts/"+id+"/triage",
			bytes.NewReader([]byte(`{"outcome":"explained","actor":"ig-officer-1","note":"covering a night shift swap"}`)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := postTriage("wrong-token"); code != http.StatusUnauthorized {
		t.Errorf("triage with a wrong token: %d, want 401", code)
	}
	for _, tok := range []string{"api-token-for-tests", "soc-bot-token-for-tests"} {
		if code := postTriage(tok); code/100 != 2 {
			t.Fatalf("triage: %d", code)
		}
	}
	// soc-bot may triage, not read the audit log.
	req, _ := http.NewRequest(http.MethodGet, d.URL()+"/api/v1/audit", nil)
	req.Header.Set("Authorization", "Bearer soc-bot-token-for-tests")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("soc-bot reading the audit log: %s, want 403", resp.Status)
	}
	// Each token is recorded as its client, whatever the body says.
	as := d.Store().(store.AlertingStore)
	ts, err := as.Triages(ctx, id)
	if err != nil || len(ts) != 2 || ts[0].Outcome != triage.Explained || ts[0].Actor != "api:shared" || ts[1].Actor != "api:soc-bot" {
		t.Fatalf("stored triage %+v, %v", ts, err)
	}
	audit, err := as.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(audit)
	if !strings.Contains(string(b), id) {
		t.Errorf("the triage is not in the audit log: %s", b)
	}
	// The shared token's read of the audit trail is in the DPO's view log.
	req, _ = http.NewRequest(http.MethodGet, d.URL()+"/api/v1/audit?limit=10", nil)
	req.Header.Set("Authorization", "Bearer api-token-for-tests")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ws, _, err := webStoreOf(ctx, d.Store())
	if err != nil {
		t.Fatal(err)
	}
	views, err := ws.WebViews(ctx, 10)
	if err != nil || len(views) != 1 || views[0].User != "api:shared" || views[0].Role != "api" || views[0].Kind != viewlog.KindAPIAudit || views[0].Rows != 2 {
		t.Errorf("view log after an API read of the audit trail = %+v, %v; want one api-audit entry by api:shared of 2 rows", views, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestAlertingDefaultsAgree: config documents the defaults the alerting
// package applies to a zero value; the two must not drift apart.
func TestAlertingDefaultsAgree(t *testing.T) {
	if !slices.Equal(config.APIPermissions, alerting.APIPermissions) {
		t.Errorf("config permissions %v, alerting %v", config.APIPermissions, alerting.APIPermissions)
	}
	if config.DefaultSilenceMaxDuration.D() != alerting.DefaultSilenceMaxDuration || config.SharedTokenClient != alerting.SharedTokenClient {
		t.Errorf("config %v %q, alerting %v %q", config.DefaultSilenceMaxDuration.D(), config.SharedTokenClient, alerting.DefaultSilenceMaxDuration, alerting.SharedTokenClient)
	}
}
