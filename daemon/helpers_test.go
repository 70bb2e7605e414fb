package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// forEachStore runs fn against the embedded store and against ClickHouse
// (chDB behind its HTTP front, or the CLICKHOUSE_ADDR server), each empty.
func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openTestStore(t)) })
	t.Run("clickhouse", func(t *testing.T) { fn(t, openTestClickHouse(t)) })
}

// openTestClickHouse opens a ClickHouse store in a database of the test's
// own, emptied first.
func openTestClickHouse(t *testing.T) *clickhouse.Store {
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

// openTestStore opens an embedded store in a temporary directory, closed
// when the test ends.
func openTestStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
