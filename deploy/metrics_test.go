package deploy_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/web"
)

var (
	// metricRef is a metric name in a PromQL expression.
	metricRef = regexp.MustCompile(`\bdpiawatch_[a-z0-9_]+`)
	// descName is the name in a prometheus.Desc's String().
	descName = regexp.MustCompile(`fqName: "([^"]+)"`)
)

// TestDashboardAndRuleMetricsExist runs the daemon as docker-compose.yml
// does (deploy/dpiawatch.yaml: Kafka, ClickHouse, Slack), with the parts
// that configuration leaves off switched on (the web UI, a feed heartbeat,
// reference topics), against an in-process Kafka and chDB, and checks that
// every metric the operations dashboard and the Prometheus rules name is
// one the daemon registers. A renamed metric fails here instead of leaving a blank panel
// or a rule that never fires.
func TestDashboardAndRuleMetricsExist(t *testing.T) {
	registered := daemonMetricNames(t)
	refs := map[string][]string{} // metric → where it is used
	for file, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				for _, m := range metricRef.FindAllString(tg.Expr, -1) {
					refs[m] = append(refs[m], file+": "+p.Title)
				}
			}
		}
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(map[string]any); ok {
				s, _ := q["query"].(string)
				for _, m := range metricRef.FindAllString(s, -1) {
					refs[m] = append(refs[m], file+": variable "+v.Name)
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		for _, m := range metricRef.FindAllString(r.Expr, -1) {
			refs[m] = append(refs[m], "prometheus/rules.yml: "+r.Alert)
		}
	}
	if len(refs) == 0 {
		t.Fatal("no dashboard or rule names a dpiawatch metric")
	}
	for m, where := range refs {
		name := m
		if !slices.Contains(registered, name) {
			// A histogram's series carry suffixes its Desc does not.
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if base, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(registered, base) {
					name = base
				}
			}
		}
		if !slices.Contains(registered, name) {
			t.Errorf("%s is not a metric the daemon registers; used by %s", m, strings.Join(where, "; "))
		}
	}
}

// daemonMetricNames starts the daemon and returns every metric name its
// registry describes, including vectors with no series yet.
func daemonMetricNames(t *testing.T) []string {
	t.Helper()
	srv := chtest.Shared(t)
	kafka := kafkatest.StartKFake(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cfgText, err := os.ReadFile("dpiawatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(cfgText, &raw); err != nil {
		t.Fatal(err)
	}
	topics := []string{"dpiawatch-dead-letter"}
	for _, tp := range raw["ingest"].(map[string]any)["kafka"].(map[string]any)["topics"].([]any) {
		topics = append(topics, tp.(map[string]any)["name"].(string))
	}
	for _, tp := range topics {
		if err := kafka.CreateTopic(ctx, tp, 2); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	hash, err := web.HashPassword("a long enough passphrase", web.PasswordParams{Memory: 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"accounts.yaml": "users:\n  - username: ig\n    role: ig-team\n    password: '" + hash + "'\n",
		"pseudonym.key": "pseudonym-key-for-tests-0123456789",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dpias, _ := filepath.Abs("../configs/dpia")
	for _, d := range raw["dpias"].([]any) {
		f := d.(map[string]any)
		f["file"] = filepath.Join(dpias, filepath.Base(f["file"].(string)))
	}
	ch := raw["store"].(map[string]any)["clickhouse"].(map[string]any)
	ch["addr"], ch["database"], ch["username"] = []string{srv.Addr}, "dpiawatch_test_metrics", srv.Username
	if srv.Engine == "chdb" {
		ch["protocol"] = "http" // chDB serves HTTP only
	}
	if srv.Password == "" {
		delete(ch, "password") // an empty variable reads as unset
	} else {
		t.Setenv("CLICKHOUSE_PASSWORD", srv.Password)
	}
	t.Setenv("DPIAWATCH_SLACK_TOKEN", "xoxb-test-token")
	// Reference data from compacted topics as well as the directory:
	// its readiness is a rule's input.
	raw["reference"].(map[string]any)["dir"] = dir
	raw["reference"].(map[string]any)["kafka"] = map[string]any{"brokers": kafka.Brokers}
	for _, k := range kafkaref.Kinds() {
		if err := kafka.CreateTopic(ctx, kafkaref.DefaultTopic(k), 1); err != nil {
			t.Fatal(err)
		}
	}
	raw["http"] = map[string]any{"listen": "127.0.0.1:0"}
	raw["web"] = map[string]any{"enabled": true, "accounts_file": filepath.Join(dir, "accounts.yaml"),
		"pseudonym_key": map[string]any{"file": filepath.Join(dir, "pseudonym.key")}}
	raw["alerting"].(map[string]any)["heartbeats"] = []any{map[string]any{"org": "st-martins", "system": "logmycare", "max_silence": "1h", "risks": []string{"R2"}}}
	out, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(cfgPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags.Err(), out)
	}
	conn := srv.Open(t, "")
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS dpiawatch_test_metrics") })

	reg := prometheus.NewRegistry()
	ready := make(chan struct{})
	d, err := daemon.New(ctx, daemon.Options{Config: cfg, Registry: reg, Brokers: kafka.Brokers,
		Logger: slog.New(slog.DiscardHandler), OnReady: func(string) { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon stopped before it was ready: %v", err)
	case <-ctx.Done():
		t.Fatal("daemon not ready within a minute")
	}
	descs := make(chan *prometheus.Desc)
	go func() { reg.Describe(descs); close(descs) }()
	var names []string
	for desc := range descs {
		if m := descName.FindStringSubmatch(desc.String()); m != nil {
			names = append(names, m[1])
		}
	}
	stop()
	if err := <-done; err != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("daemon: %v", err)
	}
	if !slices.Contains(names, "dpiawatch_ingest_consumer_lag_messages") {
		t.Fatalf("the daemon's registry lacks the consumer's metrics (%d names): is Kafka wired?", len(names))
	}
	return names
}

// rule is one alerting rule of prometheus/rules.yml.
type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}
