// Package testlog gives tests a logger that writes warnings and errors to
// the test's own log, so that they show beside the failure they explain,
// and a buffer to capture a log or a process's output for assertions.
package testlog

import (
	"bytes"
	"log/slog"
	"sync"
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

// Buffer is a bytes.Buffer that a process's or server's goroutines may
// write to while a test reads it: a log or stderr captured for assertions.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len returns how many bytes were written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
