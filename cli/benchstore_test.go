package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/backtest"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// TestBenchStoreBothStores stores a simulated week with `bench store` into
// an embedded and a ClickHouse (chDB) store in one pass, the checks run
// once: both then hold every event and the same alerts as a store filled
// by the test's own daemon-way helper, and a backtest of each with the
// same configuration finds no difference. A store given no effects (or
// other ones) has other alerts, and the comparison fails.
func TestBenchStoreBothStores(t *testing.T) {
	srv := chtest.Shared(t)
	dir := t.TempDir()
	if code, _, errOut := run(t, "", "simulate", "--org", "st-martins", "--from", "2026-03-23", "--days", "7", "--seed", "3", "--out", dir); code != 0 {
		t.Fatalf("simulate: exit %d: %s", code, errOut)
	}
	events := filepath.Join(dir, "events.jsonl")
	raw, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")

	const chDB = "dpiawatch_cli_bench_store"
	conn := srv.Open(t, "")
	ctx := context.Background()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+chDB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chDB) })
	embedded := testConfig(t, dir, "embedded.yaml", filepath.Join(dir, "bench.db"), "grace: 30m")
	b, err := os.ReadFile(embedded)
	if err != nil {
		t.Fatal(err)
	}
	chCfg := filepath.Join(dir, "clickhouse.yaml")
	storeLine := "embedded: {path: " + filepath.Join(dir, "bench.db") + ", synchronous: full}"
	if !strings.Contains(string(b), storeLine) {
		t.Fatalf("the test configuration has no line %q", storeLine)
	}
	auth := ""
	if srv.Password != "" { // a CLICKHOUSE_ADDR server: chtest read the password from this variable
		auth = ", username: " + srv.Username + ", password: {env: CLICKHOUSE_PASSWORD}"
	}
	ch := strings.Replace(string(b), storeLine, "clickhouse: {addr: ["+srv.Addr+"], protocol: "+protocolName(srv)+", database: "+chDB+auth+"}", 1)
	if err := os.WriteFile(chCfg, []byte(ch), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := run(t, "", "bench", "store", "--config", embedded, "--config", chCfg, "--events", events, "--batch", "500")
	if code != 0 {
		t.Fatalf("bench store: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "stored 4614 events (0 lines skipped) into 2 store(s)") || len(lines) != 4614 {
		t.Errorf("bench store said %q for %d lines", out, len(lines))
	}

	// The reference: the same events stored by the test's helper.
	ref := filepath.Join(dir, "ref.db")
	fillStore(t, testConfig(t, dir, "ref.yaml", ref, "grace: 30m"), ref, lines)
	from, to := time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	want := storedAlerts(t, openSQLite(t, ref), from)
	if len(want) == 0 {
		t.Fatal("the simulated week raised no alerts: the test shows nothing")
	}
	chStore, err := clickhouse.Open(ctx, clickhouse.Options{Conn: conn, Schema: clickhouse.Schema{Database: chDB}})
	if err != nil {
		t.Fatal(err)
	}
	defer chStore.Close()
	for name, st := range map[string]store.Reader{"embedded": openSQLite(t, filepath.Join(dir, "bench.db")), "clickhouse": chStore} {
		n, err := st.CountEvents(ctx, store.EventFilter{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(lines)) {
			t.Errorf("%s: %d events stored, want %d", name, n, len(lines))
		}
		if got := storedAlerts(t, st, from); !slices.Equal(got, want) {
			t.Errorf("%s: alerts\n%v\nwant (stored by Apply with the checks)\n%v", name, got, want)
		}
	}
	for _, cfg := range []string{embedded, chCfg} {
		jsonOut := filepath.Join(t.TempDir(), "diff.json")
		if code, _, errOut := run(t, "", "backtest", "--config", cfg, "--from", "2026-03-23", "--to", "2026-04-01", "--json", jsonOut); code != 0 {
			t.Fatalf("backtest %s: exit %d: %s", filepath.Base(cfg), code, errOut)
		}
		var res backtest.Result
		if b, err := os.ReadFile(jsonOut); err != nil {
			t.Fatal(err)
		} else if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		if !res.Empty() || res.Events != len(lines) {
			t.Errorf("backtest of %s: %d events, difference %+v; want %d and none", filepath.Base(cfg), res.Events, res.Groups, len(lines))
		}
	}
}

func protocolName(s *chtest.Server) string {
	if s.Engine == "chdb" {
		return "http"
	}
	return "native"
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// storedAlerts lists a store's alerts as id, check, pattern, severity,
// events and last seen, in id order.
func storedAlerts(t *testing.T, st store.Reader, since time.Time) []string {
	t.Helper()
	as, err := st.Alerts(context.Background(), store.AlertFilter{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = strings.Join([]string{a.ID, a.Check, a.Pattern, string(a.Severity), strings.Join(a.EventIDs, ","), a.LastSeen.UTC().Format(time.RFC3339Nano)}, " ")
	}
	slices.Sort(out)
	return out
}
