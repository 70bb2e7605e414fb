package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// TestKafkaDaemonAlertsToSlack runs the daemon with a Slack bot token and
// checks what reaches Slack's Web API: the alert, its DPIA risk and a
// dashboard link, and no raw subject identifier.
func TestKafkaDaemonAlertsToSlack(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var refused int // requests answered invalid_auth
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		mu.Lock()
		bodies = append(bodies, r.URL.Path+"?"+string(b))
		// Slack takes the token in the header or, as the client sends it
		// for chat.postMessage, in the form.
		if r.Header.Get("Authorization") != "Bearer xoxb-e2e-token" && form.Get("token") != "xoxb-e2e-token" {
			refused++
			mu.Unlock()
			w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true,"channel":"C0IG","ts":"1700000000.000100"}`))
	}))
	defer slack.Close()

	c := kafkatest.Get(t, kafkatest.KindKFake)
	dir := t.TempDir()
	topic := c.NewTopic(t, 1)
	keyFile := filepath.Join(dir, "pseudonym.key")
	if err := os.WriteFile(keyFile, []byte("e2e-pseudonym-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfigAlerting(t, dir, c.Brokers, topic, kafkatest.UniqueName(t, "g"),
		"  dashboard_url: https://dpiawatch.example.org\n"+
			"  pseudonym_key: {file: "+keyFile+"}\n"+
			"  console: {enabled: false}\n"+
			"  slack: {channel: \"#ig-alerts\", token: {env: E2E_SLACK_TOKEN}, api_url: "+slack.URL+"/}\n")
	values, keys, ids := simulated(t, dir, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msgs := make([]kafka.Message, len(values))
	for i := range values {
		msgs[i] = kafka.Message{Key: keys[i], Value: values[i]}
	}
	if err := c.Produce(ctx, topic, msgs...); err != nil {
		t.Fatal(err)
	}

	d := startDaemonEnv(t, cfgPath, "E2E_SLACK_TOKEN=xoxb-e2e-token")
	// Every event stored, and every alert raised from them posted: each
	// message links the alert's page on the dashboard.
	st := openStore(t, filepath.Join(dir, "dpiawatch.db"))
	var alerts int
	if !testwait.Until(60*time.Second, func() bool {
		n, err := st.CountEvents(ctx, store.EventFilter{})
		if err != nil || n < int64(len(ids)) {
			return false
		}
		got, err := st.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			return false
		}
		mu.Lock()
		all := strings.Join(bodies, "\n")
		mu.Unlock()
		alerts = len(got)
		for _, a := range got {
			if !strings.Contains(all, url.QueryEscape("/alerts/"+a.ID)) {
				return false
			}
		}
		return alerts > 0
	}) {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		t.Fatalf("%d messages reached Slack for %d stored alerts in 60s; daemon log:\n%s", n, alerts, d.stderr.String())
	}
	d.waitRunning(t)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon did not stop cleanly: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if refused > 0 {
		t.Errorf("%d of %d Slack calls answered invalid_auth: the bot token was not sent", refused, len(bodies))
	}
	subject := regexp.MustCompile(`c-\d{4}`)
	for _, b := range bodies {
		if !strings.HasPrefix(b, "/chat.postMessage?") {
			t.Errorf("unexpected Slack call %s", b[:min(len(b), 60)])
			continue
		}
		for _, want := range []string{"out-of-hours", "R2", "dpiawatch.example.org%2Falerts%2Fa-"} {
			if !strings.Contains(b, want) {
				t.Errorf("Slack message lacks %q", want)
			}
		}
		if subject.MatchString(b) {
			t.Errorf("Slack message carries a raw subject id: %s", subject.FindString(b))
		}
	}
	if !strings.Contains(strings.Join(bodies, "\n"), "subj-") {
		t.Errorf("no message carries a pseudonymous subject reference although a key is configured")
	}
	t.Logf("%d messages reached Slack; first: %s", len(bodies), bodies[0])
}

func startDaemonEnv(t *testing.T, cfgPath string, env ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{}
	d.cmd = newDaemonCmd(cfgPath)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return d
}
