package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
)

// TestKafkaDaemonAlertsToSlack runs the daemon with a Slack bot token and
// checks what reaches Slack's Web API: the alert, its DPIA risk and a
// dashboard link, and no raw subject identifier.
func TestKafkaDaemonAlertsToSlack(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.Path+"?"+string(b))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer xoxb-e2e-token" {
			w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return
		}
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
	values, keys, _ := simulated(t, dir, 4)
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
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing reached Slack in 60s; daemon log:\n%s", d.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the rest of the first alerts arrive
	d.waitRunning(t)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon did not stop cleanly: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
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
