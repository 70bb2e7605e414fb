// Package testlog gives tests a logger that writes warnings and errors to
// the test's own log, so that they show beside the failure they explain.
package testlog

import (
	"log/slog"
	"testing"
)

// New returns a logger of level warn and above that writes to t.Log.
func New(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(writer{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
