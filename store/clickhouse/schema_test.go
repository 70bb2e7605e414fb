package clickhouse

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestClickHouseMigrations runs the migrations on a real engine, twice (the
// second run applies nothing), and checks what they built.
func TestClickHouseMigrations(t *testing.T) {
	srv := chtest.Shared(t)
	conn := srv.Open(t, "")
	ctx := context.Background()
	sc := Schema{Database: "dpiawatch_test_migrations"}
	t.Cleanup(func() { _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+sc.Database) })
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+sc.Database)

	res, err := Migrate(ctx, conn, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != LatestVersion() || res.Version != LatestVersion() {
		t.Fatalf("first migrate: %+v, want all %d applied", res, LatestVersion())
	}
	if res, err = Migrate(ctx, conn, sc); err != nil || res.Applied != 0 || res.Version != LatestVersion() {
		t.Fatalf("second migrate: %+v %v, want nothing applied", res, err)
	}
	var p params
	rows, err := conn.Query(ctx, `SELECT name, engine, sorting_key, partition_key FROM system.tables WHERE database = `+p.str(sc.Database)+` ORDER BY name`, p.list()...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var name, engine, sortKey, partKey string
		if err := rows.Scan(&name, &engine, &sortKey, &partKey); err != nil {
			t.Fatal(err)
		}
		got = append(got, name+" "+engine+" ["+sortKey+"] ["+partKey+"]")
	}
	rows.Close()
	want := []string{
		"alerts ReplacingMergeTree [org, id] []",
		"audit ReplacingMergeTree [seq] []",
		"audit_samples ReplacingMergeTree [org, team, period, drawn_at, seq] []",
		"checkpoint ReplacingMergeTree [kind, key] []",
		"events ReplacingMergeTree [org, actor, t, system, id] [toYYYYMM(t)]",
		"events_hourly AggregatingMergeTree [org, hour, actor_team, actor, action, outcome] [toYYYYMM(hour)]",
		"events_hourly_mv MaterializedView [] []",
		"message_refs ReplacingMergeTree [receiver, alert_id] []",
		"outbox_delivery ReplacingMergeTree [receiver, alert_id] []",
		"outbox_failure ReplacingMergeTree [receiver, alert_id] []",
		"reference_loads ReplacingMergeTree [loaded_at, snapshot] []",
		"reference_rows ReplacingMergeTree [snapshot, kind, org, actor, n] []",
		"retention_runs MergeTree [at] []",
		"schema_migrations ReplacingMergeTree [version] []",
		"silences View [] []",
		"triage_delivery ReplacingMergeTree [receiver, seq] []",
		"triages View [] []",
		"web_views MergeTree [at] []",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tables:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A database migrated by a newer dpiawatch is refused, by Migrate and Open.
	if err := conn.Exec(ctx, `INSERT INTO `+sc.Database+`.schema_migrations (version, name) VALUES (99, 'future')`); err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(ctx, conn, sc); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Migrate on a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if _, err := Open(ctx, Options{Conn: conn, Schema: sc}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open on a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestClickHouseOpenSkipMigrate: an operator who migrates by hand gets a
// clear refusal, not a half-working store.
func TestClickHouseOpenSkipMigrate(t *testing.T) {
	srv := chtest.Shared(t)
	conn := srv.Open(t, "")
	ctx := context.Background()
	sc := Schema{Database: "dpiawatch_test_skipmigrate"}
	t.Cleanup(func() { _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+sc.Database) })
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+sc.Database)
	if _, err := Open(ctx, Options{Conn: conn, Schema: sc, SkipMigrate: true}); err == nil || !strings.Contains(err.Error(), "dpiawatch migrate") {
		t.Fatalf("Open with SkipMigrate on an empty database: %v", err)
	}
	if _, err := Migrate(ctx, conn, sc); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Options{Conn: conn, Schema: sc, SkipMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}

// TestClickHouseRetentionAndRollup seeds events for two orgs with different
// retention schedules and checks the hourly rollup and the TTL on a real
// engine.
func TestClickHouseRetentionAndRollup(t *testing.T) {
	s := openInternal(t, Options{Retention: map[string]time.Duration{"st-martins": 30 * 24 * time.Hour}})
	ctx := context.Background()
	old := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Hour)
	mk := func(org, id, actor string, at time.Time, subject string) event.Event {
		return event.Event{ID: id, Time: at, Org: org, System: "crm", Action: event.ActionView,
			Actor: event.Actor{ID: actor, Team: "t1"}, Subject: event.Subject{ID: subject}, Outcome: event.OutcomeSuccess}
	}
	batch := []event.Event{
		mk("st-martins", "s1", "u-1", old.Add(time.Minute), "c-1"),
		mk("st-martins", "s2", "u-1", old.Add(2*time.Minute), "c-2"),
		mk("st-martins", "s3", "u-1", old.Add(3*time.Minute), "c-2"),
		mk("wiltshire-council", "w1", "u-9", old.Add(time.Minute), "c-7"),
	}
	if _, err := s.Apply(ctx, batch, nil, nil); err != nil {
		t.Fatal(err)
	}
	var p params
	rows, err := s.conn.Query(ctx, `SELECT org, actor, sum(events), uniqMerge(subjects), max(retention_days) FROM `+s.db+
		`.events_hourly WHERE hour = toStartOfHour(`+p.time(old)+`) GROUP BY org, actor ORDER BY org`, p.list()...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var org, actor string
		var n, subjects uint64
		var ret uint16
		if err := rows.Scan(&org, &actor, &n, &subjects, &ret); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{org, actor, itoa(n), itoa(subjects), itoa(uint64(ret))}, " "))
	}
	rows.Close()
	if want := "st-martins u-1 3 2 30|wiltshire-council u-9 1 1 0"; strings.Join(got, "|") != want {
		t.Fatalf("rollup = %q, want %q", strings.Join(got, "|"), want)
	}
	// TTL: st-martins keeps 30 days, so its 90-day-old events go (at
	// insert or the next merge); wiltshire-council has no schedule and
	// keeps them.
	older := time.Now().UTC().Add(-90 * 24 * time.Hour)
	if _, err := s.Apply(ctx, []event.Event{mk("st-martins", "s-old", "u-1", older, "c-1"), mk("wiltshire-council", "w-old", "u-9", older, "c-7")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.conn.Exec(ctx, `OPTIMIZE TABLE `+s.events+` FINAL`); err != nil {
		t.Fatal(err)
	}
	for org, want := range map[string]int64{"st-martins": 0, "wiltshire-council": 1} {
		if n, err := s.CountEvents(ctx, store.EventFilter{Org: org, To: older.Add(time.Hour)}); err != nil || n != want {
			t.Errorf("%s after TTL: %d events (%v), want %d", org, n, err, want)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestClickHouseDDL pins the generated DDL, single server and cluster with
// row policies, in golden files. chDB has no cluster and no access control,
// so the cluster and policy statements are checked as text here, and the
// single-server ones also run in TestClickHouseMigrations.
func TestClickHouseDDL(t *testing.T) {
	for _, c := range []struct {
		name   string
		schema Schema
	}{
		{"single", Schema{}},
		{"cluster", Schema{Database: "dpia", Cluster: "care", DedupWindow: 500, Readers: []Reader{
			{User: "grafana_wilts", Org: "wiltshire-council"}, {User: "grafana_stm", Org: "st-martins"},
		}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(c.schema.Statements(), ";\n\n") + ";\n"
			path := filepath.Join("testdata", "ddl-"+c.name+".sql")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("generated DDL differs from %s (run go test -update after checking the change):\n%s", path, got)
			}
		})
	}
}

func TestClickHouseSchemaValidate(t *testing.T) {
	for _, s := range []Schema{
		{Database: "bad-name"},
		{Cluster: "x; DROP"},
		{Readers: []Reader{{User: "ok"}}},
		{Readers: []Reader{{User: "a b", Org: "o"}}},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	if err := (Schema{Cluster: "care", Readers: []Reader{{User: "r1", Org: "o'1"}}}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestClickHouseAlertReferenceColumn: migration 6 upgrades a database that
// already holds alerts (their rows read as judged against no named data),
// and each alert version written afterwards carries its ReferenceID in the
// reference_id column as well as in its body, for SQL readers to join on.
func TestClickHouseAlertReferenceColumn(t *testing.T) {
	srv := chtest.Shared(t)
	conn := srv.Open(t, "")
	ctx := context.Background()
	sc := Schema{Database: "dpiawatch_test_alert_reference"}.withDefaults()
	t.Cleanup(func() { _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+sc.Database) })
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+sc.Database)

	// A database as version 5 left it, with one alert in it.
	stmts := []string{`CREATE DATABASE ` + sc.Database, sc.migrationsTable()}
	for _, m := range migrations[:5] {
		stmts = append(stmts, m.stmts(sc)...)
		stmts = append(stmts, `INSERT INTO `+sc.Database+`.schema_migrations (version, name) VALUES (`+strconv.Itoa(m.version)+`, '`+m.name+`')`) // names are the package's own constants
	}
	stmts = append(stmts, `INSERT INTO `+sc.Database+`.alerts (id, org, check_name, version, body) VALUES ('a-old', 'st-martins', 'out-of-hours', 1, '{"id":"a-old","org":"st-martins"}')`)
	for _, q := range stmts {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s := openInternal(t, Options{Schema: sc})
	if v, err := SchemaVersion(ctx, conn, sc.Database); err != nil || v != LatestVersion() {
		t.Fatalf("schema version after Open: %d, %v; want %d", v, err, LatestVersion())
	}
	a := alert.Alert{ID: "a-new", Check: "no-business-need", Org: "st-martins", ActorID: "u-17", FirstSeen: time.Unix(0, 0), LastSeen: time.Unix(0, 0),
		EventIDs: []string{"e-1"}, EventCount: 1, ReferenceID: "0123456789abcdef0123456789abcdef"}
	if _, err := s.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return store.Effects{Alerts: []alert.Alert{a}}, nil }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, want string }{{"a-old", ""}, {"a-new", a.ReferenceID}} {
		var got string
		var p params
		if err := conn.QueryRow(ctx, `SELECT argMax(reference_id, version) FROM `+sc.Database+`.alerts WHERE id = `+p.str(c.id), p.list()...).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: reference_id column %q, want %q", c.id, got, c.want)
		}
		stored, err := s.Alert(ctx, c.id)
		if err != nil || stored.ReferenceID != c.want {
			t.Errorf("%s: read back with ReferenceID %q (%v), want %q", c.id, stored.ReferenceID, err, c.want)
		}
	}
}
