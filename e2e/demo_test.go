package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/dpiawatch/dpiawatch/testlog"
)

// TestDemo runs `dpiawatch demo` as a new user would: nothing installed, an
// alert on the console within a minute, the operations endpoints answering,
// metrics that pass Prometheus' linter, and a clean stop on Ctrl-C.
func TestDemo(t *testing.T) {
	cmd := exec.Command(binary, "demo", "--config", "../configs/dpiawatch.yaml", "--listen", "127.0.0.1:0", "--rate", "1500")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // already stopped on success

	urlRe := regexp.MustCompile(`metrics\s+(http://127\.0\.0\.1:\d+)/metrics`)
	alertRe := regexp.MustCompile(`^(LOW|MEDIUM|HIGH|CRITICAL) out-of-hours/\S+ dpia=\S+ risks=R\d`)
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var base, firstAlert string
	deadline := time.After(60 * time.Second)
	for base == "" || firstAlert == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited early; stderr:\n%s", stderr.String())
			}
			if m := urlRe.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
			if alertRe.MatchString(l) {
				firstAlert = l
			}
		case <-deadline:
			t.Fatalf("no alert within a minute (url %q); stderr:\n%s", base, stderr.String())
		}
	}
	t.Logf("first alert: %s", firstAlert)
	// The simulator's subject ids: c-0042 (St Martins), ch-000123
	// (Wiltshire); actor ids such as wc-00361 are allowed.
	if regexp.MustCompile(`\bch?-\d{4,}`).MatchString(firstAlert) {
		t.Errorf("a console alert carries a raw subject id: %s", firstAlert)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	code, metrics := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{
		"dpiawatch_ingest_messages_consumed_total", "dpiawatch_ingest_events_stored_total",
		"dpiawatch_ingest_events_dead_lettered_total", "dpiawatch_ingest_consumer_lag_messages",
		"dpiawatch_ingest_batch_size_events", "dpiawatch_ingest_batch_duration_seconds",
		"dpiawatch_rules_evaluations_total", "dpiawatch_rules_alerts_total", "dpiawatch_build_info",
		"dpiawatch_store_apply_duration_seconds", "dpiawatch_alerting_notifications_total",
	} {
		if !strings.Contains(metrics, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !regexp.MustCompile(`dpiawatch_rules_alerts_total\{check="out-of-hours",dpia="[a-z-]+",risk="R\d"\} [1-9]`).MatchString(metrics) {
		t.Errorf("no out-of-hours alert counted by DPIA risk in /metrics")
	}
	problems, err := promlint.New(strings.NewReader(metrics)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "dpiawatch_") {
			t.Errorf("metric lint: %s: %s", p.Metric, p.Text)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range lines { //nolint:revive // drain stdout so the demo can exit
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo did not stop cleanly: %v\n%s", err, stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("demo did not stop within 45s of Ctrl-C")
	}
}
