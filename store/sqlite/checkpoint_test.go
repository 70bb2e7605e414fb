package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// TestBackgroundCheckpoint checks that committed batches reach the main file
// without the writer's automatic checkpoint (far above one batch) or Close.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ck.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(ctx, benchEvents(0, 2000), nil, nil); err != nil {
		t.Fatal(err)
	}
	// 2,000 events are some hundreds of KiB of table and index pages, and
	// far fewer pages than autoCheckpointPages.
	const want = 200 << 10
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if !testwait.Until(5*time.Second, func() bool { return size() >= want }) {
		t.Fatalf("main file is %d bytes 5s after the commit, want ≥ %d: no background checkpoint", size(), want)
	}
	n, err := s.CountEvents(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2000 {
		t.Fatalf("%d events stored, want 2000", n)
	}
}
