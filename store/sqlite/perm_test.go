//go:build unix

package sqlite

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFileModes: a new store's database file and its -wal and -shm files
// are readable by their owner only, whatever the umask lets through; an
// existing database readable by others is left as it is but logged.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, under which files default to 0644
	defer syscall.Umask(old)

	p := filepath.Join(t.TempDir(), "dpiawatch.db")
	s, err := Open(context.Background(), Options{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), benchEvents(0, 100), nil, nil); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, name := range []string{p, p + "-wal", p + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Logf("%s: %v", filepath.Base(name), err)
			continue
		}
		seen++
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(name), m)
		}
	}
	if seen < 2 {
		t.Errorf("only %d of the database, -wal and -shm files exist while the store is open", seen)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// An existing database is opened as it is, with a warning if others can read it.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	s, err = Open(context.Background(), Options{Path: p, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != fs.FileMode(0o644) {
		t.Errorf("an existing database's mode was changed: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(logged.String(), "readable by others") {
		t.Errorf("no warning for a database others can read: %q", logged.String())
	}
}
