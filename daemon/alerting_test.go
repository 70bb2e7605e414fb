package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/testwait"
)

// TestDaemonReadinessNamesPausedReceiver (issue 16, item 14): a webhook
// receiver answering 401 pauses: /readyz fails naming the receiver and the
// reason, the alert stays pending; once the receiver accepts again, the
// daemon resumes by itself, delivers the alert and is ready.
func TestDaemonReadinessNamesPausedReceiver(t *testing.T) {
	dir := t.TempDir()
	var broken atomic.Bool
	broken.Store(true)
	var delivered atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if broken.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		delivered.Add(1)
	}))
	defer hook.Close()
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("webhook-secret-for-tests"), 0o600); err != nil {
		t.Fatal(err)
	}
	dpias, _ := filepath.Abs("../configs/dpia")
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(`dpias:
  - file: `+dpias+`/st-martins-webster-court.yaml
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
store:
  embedded: {path: `+filepath.Join(dir, "d.db")+`}
reference:
  dir: `+dir+`
checks:
  lateness: 0s
  out-of-hours:
    evidences: {st-martins-webster-court: [R2]}
alerting:
  console: {enabled: false}
  receivers:
    - name: ig-webhook
      webhook: {url: `+hook.URL+`, secret: {file: `+filepath.Join(dir, "hook.secret")+`}}
  route:
    receiver: ig-webhook
    group_wait: 10ms
    group_interval: 10ms
http:
  listen: 127.0.0.1:0
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d, _ := startDaemon(t, cfgPath)

	at := time.Date(2026, 3, 4, 23, 10, 0, 0, time.UTC)
	if _, err := d.stream.Process(ctx, officeWorkerViews(at)); err != nil {
		t.Fatal(err)
	}
	readyz := func() (int, map[string]string) {
		resp, err := http.Get(d.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var status map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&status)
		return resp.StatusCode, status
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		testwait.For(t, 15*time.Second, what, cond)
	}
	var status map[string]string
	waitUntil("readiness to fail", func() bool {
		var code int
		code, status = readyz()
		return code == http.StatusServiceUnavailable
	})
	if s := status["alerting"]; !strings.Contains(s, "receiver ig-webhook paused") || !strings.Contains(s, "http 401") {
		t.Errorf("/readyz alerting = %q, want the receiver and http 401 named", s)
	}
	if pending, err := d.Store().Pending(ctx, "ig-webhook", 0); err != nil || len(pending) != 1 {
		t.Errorf("pending while paused = %d, %v; want the alert kept", len(pending), err)
	}
	broken.Store(false)
	waitUntil("delivery after recovery", func() bool { return delivered.Load() == 1 })
	waitUntil("readiness to pass", func() bool { code, _ := readyz(); return code == http.StatusOK })
}
