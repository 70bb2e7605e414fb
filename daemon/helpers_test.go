package daemon

import (
	"log/slog"
	"testing"

	"github.com/dpiawatch/dpiawatch/store/teststores"
)

// The daemon's tests run against both stores (teststores).
var (
	forEachStore       = teststores.ForEach
	openTestStore      = teststores.SQLite
	openTestClickHouse = teststores.ClickHouse
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
