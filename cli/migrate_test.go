package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

func writeClickHouseConfig(t *testing.T, addr, protocol string) string {
	t.Helper()
	dpia, err := filepath.Abs("../configs/dpia/wiltshire-childrens-cms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dpiawatch.yaml")
	cfg := `dpias: [{file: ` + dpia + `}]
orgs: [{id: wiltshire-council, dpia: wiltshire-childrens-cms}]
store:
  clickhouse:
    addr: [` + addr + `]
    protocol: ` + protocol + `
    database: dpiawatch_cli_migrate
    retention: {orgs: {wiltshire-council: 9125}}
    readers: [{user: grafana_wilts, org: wiltshire-council}]
checks:
  out-of-hours:
    evidences: {wiltshire-childrens-cms: [R1]}
`
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runMigrate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &bytes.Buffer{}, logLevel: "error"}
	c := migrateCommand(e)
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&bytes.Buffer{})
	err := c.ExecuteContext(context.Background())
	return out.String(), err
}

func TestClickHouseMigratePrint(t *testing.T) {
	out, err := runMigrate(t, "--config", writeClickHouseConfig(t, "127.0.0.1:9000", "native"), "--print")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS dpiawatch_cli_migrate.events (",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS dpiawatch_cli_migrate.events_hourly_mv",
		"CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_events ON dpiawatch_cli_migrate.events FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--print output lacks %q", want)
		}
	}
}

// TestClickHouseMigrateCommand runs `dpiawatch migrate` against a real
// engine. Row policies need access control, which chDB lacks, so there the
// configuration has no readers.
func TestClickHouseMigrateCommand(t *testing.T) {
	srv := chtest.Start(t)
	protocol := "native"
	if srv.Engine == "chdb" {
		protocol = "http"
	}
	cfg := writeClickHouseConfig(t, srv.Addr, protocol)
	if srv.Engine == "chdb" {
		b, _ := os.ReadFile(cfg)
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "    readers: [{user: grafana_wilts, org: wiltshire-council}]\n", "", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // the second run finds nothing to do
		out, err := runMigrate(t, "--config", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("dpiawatch_cli_migrate at version %d", clickhouse.LatestVersion()); !strings.Contains(out, want) {
			t.Fatalf("output %q", out)
		}
	}
	if _, err := runMigrate(t, "--config", filepath.Join(t.TempDir(), "nonexistent.yaml")); err == nil {
		t.Fatal("a missing configuration must fail")
	}
}
