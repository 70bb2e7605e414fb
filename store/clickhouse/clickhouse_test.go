package clickhouse_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/storetest"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// dbName gives each test its own database: the same name when a test
// reopens its store (a restart), another for every other test.
func dbName(t *testing.T) string {
	h := sha256.Sum256([]byte(t.Name()))
	return "dpiawatch_test_" + hex.EncodeToString(h[:8])
}

// opened holds the tests (*testing.T) that have opened their store.
var opened sync.Map

func openStore(t *testing.T, srv *chtest.Server, o clickhouse.Options) *clickhouse.Store {
	t.Helper()
	o.Addr, o.Username, o.Password = []string{srv.Addr}, srv.Username, srv.Password
	o.Protocol = "native"
	if srv.Engine == "chdb" {
		o.Protocol = "http"
	}
	if o.Schema.Database == "" {
		o.Schema.Database = dbName(t)
		// The first open in a test starts from an empty database, even when
		// the test runs again in this process (-count) on the same engine.
		if _, reopen := opened.LoadOrStore(t, true); !reopen {
			t.Cleanup(func() { opened.Delete(t) })
			if err := srv.Open(t, "").Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.Schema.Database); err != nil {
				t.Fatalf("drop test database: %v", err)
			}
		}
	}
	s, err := clickhouse.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// TestClickHouseContract runs the store contract suite against a real
// ClickHouse engine: chDB through scripts/chdb-http (clickhouse-go over
// HTTP), or the server at CLICKHOUSE_ADDR (native protocol).
func TestClickHouseContract(t *testing.T) {
	srv := chtest.Shared(t)
	t.Cleanup(func() { dropTestDatabases(t, srv) })
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, srv, clickhouse.Options{})
	})
}

// TestClickHouseAlertingContract runs alert delivery's store contract
// (message refs, triage, silences, audit) against ClickHouse.
func TestClickHouseAlertingContract(t *testing.T) {
	srv := chtest.Shared(t)
	t.Cleanup(func() { dropTestDatabases(t, srv) })
	storetest.RunAlerting(t, func(t *testing.T) store.Store {
		return openStore(t, srv, clickhouse.Options{})
	})
}

// TestClickHouseReferenceSnapshots runs the reference-snapshot contract
// against ClickHouse.
func TestClickHouseReferenceSnapshots(t *testing.T) {
	srv := chtest.Shared(t)
	t.Cleanup(func() { dropTestDatabases(t, srv) })
	storetest.RunReferenceSnapshots(t, func(t *testing.T) store.Store {
		return openStore(t, srv, clickhouse.Options{})
	})
}

// TestClickHouseRoutineAuditContract runs the routine-audit contract
// (samples wait for the feed; an empty sample is not coverage) against
// ClickHouse.
func TestClickHouseRoutineAuditContract(t *testing.T) {
	srv := chtest.Shared(t)
	t.Cleanup(func() { dropTestDatabases(t, srv) })
	storetest.RunRoutineAudits(t, func(t *testing.T) store.Store {
		return openStore(t, srv, clickhouse.Options{})
	})
}

func dropTestDatabases(t *testing.T, srv *chtest.Server) {
	if srv.Engine == "chdb" {
		return // the chDB data directory goes with the test binary's temp dir
	}
	conn := srv.Open(t, "")
	ctx := context.Background()
	rows, err := conn.Query(ctx, "SELECT name FROM system.databases WHERE startsWith(name, 'dpiawatch_test_')")
	if err != nil {
		t.Logf("list test databases: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+n)
	}
}

// TestClickHouseRetentionContract runs the retention contract against
// ClickHouse: the same policy deletes the same data as in the embedded
// store (issue 16, item 15).
func TestClickHouseRetentionContract(t *testing.T) {
	srv := chtest.Shared(t)
	t.Cleanup(func() { dropTestDatabases(t, srv) })
	storetest.RunRetention(t, func(t *testing.T) store.Store {
		return openStore(t, srv, clickhouse.Options{})
	}, func(t *testing.T, s store.Store, at time.Time, org, target string) {
		t.Helper()
		w := s.(*clickhouse.Store).Web()
		if err := w.WebRecordView(context.Background(), viewlog.View{At: at, User: "dpo", Role: "dpo", Kind: "alert", Org: org, Target: target}); err != nil {
			t.Fatal(err)
		}
	}, func(t *testing.T, s store.Store) []string {
		t.Helper()
		w := s.(*clickhouse.Store).Web()
		vs, err := w.WebViews(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.Target
		}
		return out
	})
}
