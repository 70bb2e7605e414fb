// Package teststores opens empty stores of each kind for the tests of
// packages that run against both (the daemon's stream, retention): the
// embedded SQLite file and ClickHouse (chDB behind its HTTP front, or the
// CLICKHOUSE_ADDR server).
package teststores

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// ForEach runs fn against the embedded store and against ClickHouse, each
// empty, as subtests named "sqlite" and "clickhouse".
func ForEach(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("clickhouse", func(t *testing.T) { fn(t, ClickHouse(t)) })
}

// ClickHouse opens a ClickHouse store in a database of the test's own,
// emptied first, closed when the test ends.
func ClickHouse(t *testing.T) *clickhouse.Store {
	t.Helper()
	srv := chtest.Shared(t)
	h := sha256.Sum256([]byte(t.Name()))
	db := "dpiawatch_daemon_test_" + hex.EncodeToString(h[:8])
	if err := srv.Open(t, "").Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatalf("drop test database: %v", err)
	}
	o := clickhouse.Options{Addr: []string{srv.Addr}, Username: srv.Username, Password: srv.Password, Protocol: "native",
		Schema: clickhouse.Schema{Database: db}}
	if srv.Engine == "chdb" {
		o.Protocol = "http"
	}
	st, err := clickhouse.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open ClickHouse store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// SQLite opens an embedded store in a temporary directory, closed when the
// test ends.
func SQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
