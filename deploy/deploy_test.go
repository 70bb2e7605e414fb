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
	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/triage"
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
	prov, err := os.ReadFile("grafana/provisioning/dashboards/dashboards.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prov), "path: /var/lib/grafana/dashboards") || !slices.Contains(c.Services["grafana"].Volumes, "./dashboards:/var/lib/grafana/dashboards:ro") {
		t.Error("Grafana does not provision dashboards/ (the provider's path and the compose mount)")
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
	if _, err := daemon.ClickHouseOptions(ch); err != nil {
		t.Fatal(err)
	}
	if k := cfg.Ingest.Kafka; k == nil || len(k.Brokers) != 1 || k.Brokers[0] != "kafka:9092" {
		t.Fatalf("ingest.kafka brokers = %+v, want kafka:9092", cfg.Ingest.Kafka)
	}
	if cfg.HTTP.Listen != "0.0.0.0:9464" {
		t.Fatalf("http.listen = %s: Prometheus scrapes dpiawatch:9464", cfg.HTTP.Listen)
	}
}

var (
	timeFilter = regexp.MustCompile(`\$__timeFilter\(([\w.]+)\)`)
	// tableRef is a table a panel reads: only those with row policies
	// (clickhouse.Schema.Policies) and views over them, so a reader
	// account sees its own org only.
	tableRef = regexp.MustCompile(`dpiawatch\.(\w+)`)
)

// policedTables are the tables and views the audit dashboards may read:
// each has a row policy per reader account, or is a view over one that has.
var policedTables = []string{"events_hourly", "alerts", "audit", "audit_samples", "triages"}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Query      any    `json:"query"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RawSQL string `json:"rawSql"`
			Expr   string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("../dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// TestDashboardsProvisioned: the compose stack provisions an operations
// dashboard on the daemon's metrics and an audit dashboard on ClickHouse
// with org and team variables, and every panel names a datasource the
// stack provisions.
func TestDashboardsProvisioned(t *testing.T) {
	ds := loadDashboards(t)
	for file, want := range map[string]struct {
		datasource string
		variables  []string
	}{
		"dpiawatch-operations.json": {"dpiawatch-prometheus", []string{"org"}},
		"dpiawatch-audit.json":      {"dpiawatch-clickhouse", []string{"org", "team"}},
	} {
		d, ok := ds[file]
		if !ok {
			t.Errorf("dashboards/%s is missing", file)
			continue
		}
		var vars []string
		for _, v := range d.Templating.List {
			vars = append(vars, v.Name)
			if v.Datasource.UID != want.datasource {
				t.Errorf("%s: variable %s reads %q, want %s", file, v.Name, v.Datasource.UID, want.datasource)
			}
		}
		if !slices.Equal(vars, want.variables) {
			t.Errorf("%s: variables %v, want %v", file, vars, want.variables)
		}
		for _, p := range d.Panels {
			if p.Datasource.UID != want.datasource {
				t.Errorf("%s: panel %q reads %q, want %s", file, p.Title, p.Datasource.UID, want.datasource)
			}
		}
	}
	uids := map[string]string{}
	for file, d := range ds {
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", file, other, d.UID)
		}
		uids[d.UID] = file
		for _, p := range d.Panels {
			if p.Datasource.UID != "dpiawatch-prometheus" && p.Datasource.UID != "dpiawatch-clickhouse" {
				t.Errorf("%s: panel %q reads datasource %q, which the stack does not provision", file, p.Title, p.Datasource.UID)
			}
		}
	}
}

// TestClickHouseGrafanaPanels runs every ClickHouse query of every
// provisioned dashboard (panels and template variables, the variables
// substituted with all their values as Grafana's "All" does) on a real
// engine, over events, alerts, triages, routine-audit samples and reviews
// stored by the ClickHouse store, and checks the answers.
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
	al := func(id, check, actor string, risks ...string) alert.Alert {
		return alert.Alert{ID: id, Check: check, Org: "wiltshire-council", ActorID: actor, DPIA: "wiltshire-childrens-cms", Risks: risks,
			FirstSeen: h, LastSeen: h.Add(time.Minute), EventIDs: []string{"w1"}, EventCount: 1}
	}
	if _, err := s.Apply(ctx, evs, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{
			Alerts: []alert.Alert{al("a1", "out-of-hours", "u-1", "R1", "R4"), al("a2", "out-of-hours", "u-2", "R1"), al("a3", "no-business-need", "u-1", "R1")},
			State:  []store.StateEntry{store.CompletenessEntry("wiltshire-council", h.Add(time.Hour))},
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddTriage(ctx, triage.Decision{AlertID: "a2", Outcome: "false-positive", Actor: "ig-1", At: h.Add(2 * time.Hour), Source: "api"}); err != nil {
		t.Fatal(err)
	}
	var items []routineaudit.SampleItem
	for i, id := range []string{"w1", "w2", "w3"} {
		items = append(items, routineaudit.SampleItem{N: i, System: "crm", EventID: id, Time: h.Add(time.Duration(i+1) * time.Minute), ActorID: "u-1", SubjectID: "c-1", Action: "view"})
	}
	if _, err := s.PutAuditSample(ctx, routineaudit.Sample{Org: "wiltshire-council", DPIA: "wiltshire-childrens-cms", Team: "mash", Period: "p1",
		From: h, To: h.Add(time.Hour), Population: 3, Seed: "00", DrawnAt: h.Add(2 * time.Hour), Items: items}); err != nil {
		t.Fatal(err)
	}
	for n, outcome := range []string{routineaudit.ReviewReasonable, routineaudit.ReviewRefer} {
		if _, err := s.AddAuditReview(ctx, routineaudit.Review{Org: "wiltshire-council", Team: "mash", Period: "p1", N: n, Outcome: outcome,
			Reviewer: "mgr-1", At: h.Add(3 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]string{
		"Record accesses per hour, by org":                                      "st-martins 1|wiltshire-council 4",
		"Alerts by check (current version)":                                     "out-of-hours 2|no-business-need 1",
		"Most active accounts (records opened, distinct people)":                "wiltshire-council u-1 mash 3 2|st-martins u-9 webster-court 1 1|wiltshire-council u-2 edt 1 1",
		"Alerts raised per day, by org":                                         "wiltshire-council 3",
		"Alerts by DPIA risk":                                                   "wiltshire-childrens-cms R1 3|wiltshire-childrens-cms R4 1",
		"Alerts by team":                                                        "wiltshire-council mash 2|wiltshire-council edt 1",
		"Open vs triaged alerts":                                                "open 2|false-positive 1",
		"Routine-audit coverage: samples drawn vs reviewed, by team and period": "wiltshire-council mash p1 3 3 2 1",
	}
	// What each variable holds once its query ran: the org variable's
	// answer feeds the team variable's query.
	wantVars := map[string]string{"org": "st-martins|wiltshire-council", "team": "edt|mash|webster-court"}
	from, to := h.Add(-time.Hour).Unix(), time.Now().Unix()
	seen := map[string]bool{}
	for file, d := range loadDashboards(t) {
		vars := map[string]string{}
		expand := func(q string) string {
			q = timeFilter.ReplaceAllString(q, "$1 >= toDateTime("+strconv.FormatInt(from, 10)+") AND $1 <= toDateTime("+strconv.FormatInt(to, 10)+")")
			for name, v := range vars {
				q = strings.ReplaceAll(q, "${"+name+":singlequote}", v)
			}
			if strings.Contains(q, "$") {
				t.Errorf("%s: a variable is left unsubstituted:\n%s", file, q)
			}
			for _, m := range tableRef.FindAllStringSubmatch(q, -1) {
				if !slices.Contains(policedTables, m[1]) {
					t.Errorf("%s: reads dpiawatch.%s, which has no row policy", file, m[1])
				}
			}
			return strings.ReplaceAll(q, "dpiawatch.", db+".")
		}
		for _, v := range d.Templating.List {
			q, ok := v.Query.(string)
			if v.Datasource.UID != "dpiawatch-clickhouse" {
				continue
			}
			if !ok {
				t.Fatalf("%s: variable %s: query %v is not SQL", file, v.Name, v.Query)
			}
			got := runRows(t, srv, expand(q))
			if got != wantVars[v.Name] {
				t.Errorf("%s: variable %s:\n got %s\nwant %s", file, v.Name, got, wantVars[v.Name])
			}
			quoted := strings.Split(got, "|")
			for i, s := range quoted {
				quoted[i] = "'" + s + "'"
			}
			vars[v.Name] = strings.Join(quoted, ",")
		}
		for _, p := range d.Panels {
			if p.Datasource.UID != "dpiawatch-clickhouse" {
				continue
			}
			for _, tg := range p.Targets {
				got := runRows(t, srv, expand(tg.RawSQL))
				if w, ok := want[p.Title]; !ok {
					t.Errorf("%s: panel %q has no expected result in this test", file, p.Title)
				} else if got != w {
					t.Errorf("%s: panel %q:\n got %s\nwant %s", file, p.Title, got, w)
				}
				seen[p.Title] = true
			}
		}
	}
	for title := range want {
		if !seen[title] {
			t.Errorf("no dashboard has the panel %q", title)
		}
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
}

// TestPrometheusRulesComplete: the daemon's alerting rules cover every way
// the monitor can fail its promise, each with a for: duration, a severity,
// a summary that names no person and a runbook entry in docs/operations.md,
// and each is unit-tested firing in prometheus/rules_test.yml.
func TestPrometheusRulesComplete(t *testing.T) {
	want := []string{
		"DpiawatchDown", "DpiawatchNotReady", "DpiawatchConsumerLagGrowing", "DpiawatchDeadLetters",
		"DpiawatchStoreWriteFailures", "DpiawatchDeliveryFailures", "DpiawatchAlertReceiverPaused",
		"DpiawatchAlertReceiverFlapping", "DpiawatchFeedSilent", "DpiawatchSystemFeedSilent", "DpiawatchFeedIncomplete",
		"DpiawatchRetentionErrors", "DpiawatchLoginFlood",
	}
	docs, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(docs), "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			anchors[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	tested := firingTests(t)
	// Labels a summary may print: where the fault is, never who or whose
	// record.
	allowedLabels := []string{"instance", "job", "receiver", "topic", "partition", "reason", "step", "org", "system", "stage"}
	labelRef := regexp.MustCompile(`\$labels\.(\w+)`)
	var got []string
	for _, r := range loadRules(t) {
		got = append(got, r.Alert)
		if r.For == "" {
			t.Errorf("%s: no for: a single bad scrape would page", r.Alert)
		}
		if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, sev)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("%s: no summary", r.Alert)
		}
		for _, a := range r.Annotations {
			for _, m := range labelRef.FindAllStringSubmatch(a, -1) {
				if !slices.Contains(allowedLabels, m[1]) {
					t.Errorf("%s: an annotation prints label %s, which may carry personal data", r.Alert, m[1])
				}
			}
		}
		wantRunbook := "docs/operations.md#" + strings.ToLower(r.Alert)
		if r.Annotations["runbook"] != wantRunbook {
			t.Errorf("%s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], wantRunbook)
		}
		if !anchors[strings.ToLower(r.Alert)] {
			t.Errorf("%s: docs/operations.md has no heading \"### %s\" saying what to do", r.Alert, r.Alert)
		}
		if !tested[r.Alert] {
			t.Errorf("%s: prometheus/rules_test.yml has no case where it fires", r.Alert)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("prometheus/rules.yml has no rule %s", w)
		}
	}
}

// firingTests returns the alerts that rules_test.yml expects to fire at
// least once.
func firingTests(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("prometheus/rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				out[a.Alertname] = true
			}
		}
	}
	return out
}
