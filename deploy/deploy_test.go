// Package deploy_test checks the production parts in docker-compose.yml and
// deploy/. Docker cannot run where the tests run, so the compose file is
// checked for structure (services, images, ports, mounted files, volumes)
// and the daemon's configuration and the Grafana panels' SQL are checked
// for real: the configuration by config.Load, the SQL on a ClickHouse
// engine (chDB or CLICKHOUSE_ADDR) over data stored by the ClickHouse store.
package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       string            `yaml:"build"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeStructure(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	images := map[string]string{"kafka": "apache/kafka:", "clickhouse": "clickhouse/clickhouse-server:", "prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"}
	for name, prefix := range images {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		if !strings.HasPrefix(s.Image, prefix) {
			t.Errorf("service %s: image %q, want %s…", name, s.Image, prefix)
		}
	}
	if tag := strings.TrimPrefix(c.Services["clickhouse"].Image, images["clickhouse"]); !atLeast(tag, 25, 8) {
		t.Errorf("ClickHouse %s: clickhouse-go/v2 needs 25.8 or later", tag)
	}
	if c.Services["kafka"].Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" {
		t.Error("kafka must run in KRaft mode (broker,controller)")
	}
	if c.Services["dpiawatch"].Build != "." {
		t.Error("the daemon must be built from this repository")
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %s beyond loopback", name, p)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %s, which is not declared", name, src)
			}
		}
	}
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "AS build", "COPY --from=build"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q (multi-stage, static, non-root)", want)
		}
	}
	prom, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prom), `"dpiawatch:9464"`) {
		t.Error("prometheus.yml does not scrape dpiawatch:9464")
	}
	if !strings.Contains(string(prom), "- /etc/prometheus/rules.yml") || !slices.Contains(c.Services["prometheus"].Volumes, "./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro") {
		t.Error("Prometheus does not load deploy/prometheus/rules.yml (rule_files and the compose mount)")
	}
	ds, err := os.ReadFile("grafana/provisioning/datasources/datasources.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type: grafana-clickhouse-datasource", "host: clickhouse", "url: http://prometheus:9090", "uid: dpiawatch-clickhouse"} {
		if !strings.Contains(string(ds), want) {
			t.Errorf("datasources.yml lacks %q", want)
		}
	}
}

func atLeast(tag string, major, minor int) bool {
	parts := strings.SplitN(tag, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}

// TestDaemonConfig loads deploy/dpiawatch.yaml as the daemon in the compose
// file will, and checks it points at the other services.
func TestDaemonConfig(t *testing.T) {
	t.Setenv("CLICKHOUSE_PASSWORD", "test")
	cfg, diags := config.Load("dpiawatch.yaml")
	if cfg == nil {
		t.Fatalf("deploy/dpiawatch.yaml:\n%s", diags.Errors())
	}
	ch := cfg.Store.ClickHouse
	if ch == nil || len(ch.Addr) != 1 || ch.Addr[0] != "clickhouse:9000" || ch.Protocol != "native" {
		t.Fatalf("store.clickhouse = %+v, want clickhouse:9000 native", ch)
	}
	if _, err := clickhouse.OptionsFromConfig(ch); err != nil {
		t.Fatal(err)
	}
	if k := cfg.Ingest.Kafka; k == nil || len(k.Brokers) != 1 || k.Brokers[0] != "kafka:9092" {
		t.Fatalf("ingest.kafka brokers = %+v, want kafka:9092", cfg.Ingest.Kafka)
	}
	if cfg.HTTP.Listen != "0.0.0.0:9464" {
		t.Fatalf("http.listen = %s: Prometheus scrapes dpiawatch:9464", cfg.HTTP.Listen)
	}
}

var timeFilter = regexp.MustCompile(`\$__timeFilter\((\w+)\)`)

// TestClickHouseGrafanaPanels runs every panel query of the provisioned
// dashboards on a real engine, over events and alerts stored by the
// ClickHouse store, and checks the answers.
func TestClickHouseGrafanaPanels(t *testing.T) {
	srv := chtest.Shared(t)
	ctx := context.Background()
	db := "dpiawatch_test_grafana"
	o := clickhouse.Options{Addr: []string{srv.Addr}, Username: srv.Username, Password: srv.Password, Protocol: "native", Schema: clickhouse.Schema{Database: db}}
	if srv.Engine == "chdb" {
		o.Protocol = "http"
	}
	conn := srv.Open(t, "")
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	t.Cleanup(func() { _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db) })
	s, err := clickhouse.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	h := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Hour)
	mk := func(org, id, actor, team, subject string, min int) event.Event {
		return event.Event{ID: id, Time: h.Add(time.Duration(min) * time.Minute), Org: org, System: "crm", Action: event.ActionView,
			Actor: event.Actor{ID: actor, Team: team}, Subject: event.Subject{ID: subject}, Outcome: event.OutcomeSuccess}
	}
	evs := []event.Event{
		mk("wiltshire-council", "w1", "u-1", "mash", "c-1", 1), mk("wiltshire-council", "w2", "u-1", "mash", "c-2", 2),
		mk("wiltshire-council", "w3", "u-1", "mash", "c-2", 3), mk("wiltshire-council", "w4", "u-2", "edt", "c-3", 4),
		mk("st-martins", "s1", "u-9", "webster-court", "r-1", 5),
	}
	al := func(id, check string) alert.Alert {
		return alert.Alert{ID: id, Check: check, Org: "wiltshire-council", FirstSeen: h, LastSeen: h.Add(time.Minute), EventIDs: []string{"w1"}, EventCount: 1}
	}
	if _, err := s.Apply(ctx, evs, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: []alert.Alert{al("a1", "out-of-hours"), al("a2", "out-of-hours"), al("a3", "no-business-need")}}, nil
	}); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"Record accesses per hour, by org":                       "st-martins 1|wiltshire-council 4",
		"Alerts by check (current version)":                      "out-of-hours 2|no-business-need 1",
		"Most active accounts (records opened, distinct people)": "wiltshire-council u-1 mash 3 2|st-martins u-9 webster-court 1 1|wiltshire-council u-2 edt 1 1",
	}
	files, err := filepath.Glob("../dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	from, to := h.Add(-time.Hour).Unix(), time.Now().Unix()
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					RawSQL string `json:"rawSql"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				q := timeFilter.ReplaceAllString(tg.RawSQL, "$1 >= toDateTime("+strconv.FormatInt(from, 10)+") AND $1 <= toDateTime("+strconv.FormatInt(to, 10)+")")
				q = strings.ReplaceAll(q, "dpiawatch.", db+".")
				got := runRows(t, srv, q)
				if w, ok := want[p.Title]; !ok {
					t.Errorf("panel %q has no expected result in this test", p.Title)
				} else if got != w {
					t.Errorf("panel %q:\n got %s\nwant %s", p.Title, got, w)
				}
				seen++
			}
		}
	}
	if seen != len(want) {
		t.Errorf("ran %d panel queries, want %d", seen, len(want))
	}
}

// runRows runs q and renders its rows as "v v v|v v v", dropping time
// columns (the hour differs per run).
func runRows(t *testing.T, srv *chtest.Server, q string) string {
	t.Helper()
	conn := srv.Open(t, "")
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		cols := rows.ColumnTypes()
		vals := make([]any, len(cols))
		for i, c := range cols {
			vals[i] = newScan(c.DatabaseTypeName())
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		var fields []string
		for _, v := range vals {
			switch v := v.(type) {
			case *string:
				fields = append(fields, *v)
			case *uint64:
				fields = append(fields, strconv.FormatUint(*v, 10))
			}
		}
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "|")
}

func newScan(typ string) any {
	switch {
	case strings.Contains(typ, "String"):
		return new(string)
	case strings.HasPrefix(typ, "UInt64"):
		return new(uint64)
	case strings.HasPrefix(typ, "DateTime"):
		return new(time.Time)
	}
	return new(any)
}

// requirePromtoolEnv makes a missing promtool a failure rather than a skip
// (scripts/test sets it, as does CI=true).
const requirePromtoolEnv = "DPIAWATCH_REQUIRE_PROMTOOL"

// TestPrometheusRules checks the daemon's own alerting rules with promtool
// and runs their unit tests (prometheus/rules_test.yml): a paused alert
// receiver must page, a short pause must not.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv(requirePromtoolEnv) == "1" {
			t.Fatal("promtool is not installed; run scripts/install-promtool")
		}
		t.Skip("promtool is not installed (scripts/install-promtool); set " + requirePromtoolEnv + "=1 to fail instead")
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.CommandContext(t.Context(), promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	rules, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rules), "dpiawatch_alerting_receiver_paused") {
		t.Error("no rule watches dpiawatch_alerting_receiver_paused")
	}
}
