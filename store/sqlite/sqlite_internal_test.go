package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

func TestOpenOptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"no path", Options{}, false},
		{"question mark", Options{Path: filepath.Join(dir, "a?b.db")}, false},
		{"bad synchronous", Options{Path: filepath.Join(dir, "x.db"), Synchronous: "off"}, false},
		{"normal", Options{Path: filepath.Join(dir, "n.db"), Synchronous: "normal"}, true},
		{"FULL", Options{Path: filepath.Join(dir, "f.db"), Synchronous: "FULL"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.o)
			if (err == nil) != tc.ok {
				t.Fatalf("Open(%+v) error = %v, want ok=%v", tc.o, err, tc.ok)
			}
			if s != nil {
				_ = s.Close()
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n, max int
	if err := raw.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || max != len(ms) {
		t.Fatalf("schema_migrations holds %d rows up to %d, want %d", n, max, len(ms))
	}
	// Reopening applies nothing twice.
	s, err = Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	_ = s.Close()
	if err := raw.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("after reopen %d rows (%v)", n, err)
	}
	// A database from a newer binary is refused, and left as it was.
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, len(ms)+1); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Options{Path: path})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("version %d", len(ms)+1)) {
		t.Errorf("error should name the versions: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "m.db"), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := benchEvents(0, 3)
	eval := func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: []alert.Alert{{ID: "a-1", Check: "out-of-hours"}}}, nil
	}
	if _, err := s.Apply(ctx, evs, nil, eval); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, append(evs, benchEvents(3, 1)...), nil, nil); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP dpiawatch_store_alerts_written_total Alerts inserted or changed.
# TYPE dpiawatch_store_alerts_written_total counter
dpiawatch_store_alerts_written_total 1
# HELP dpiawatch_store_events_duplicate_total Events ignored because their (org, system, id) was already stored.
# TYPE dpiawatch_store_events_duplicate_total counter
dpiawatch_store_events_duplicate_total 3
# HELP dpiawatch_store_events_stored_total Events stored for the first time.
# TYPE dpiawatch_store_events_stored_total counter
dpiawatch_store_events_stored_total 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"dpiawatch_store_alerts_written_total", "dpiawatch_store_events_duplicate_total", "dpiawatch_store_events_stored_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "dpiawatch_store_apply_duration_seconds"); err != nil || n != 1 {
		t.Errorf("apply duration histogram: %d series, %v", n, err)
	}
}

const crashChildEnv = "DPIAWATCH_SQLITE_CRASH_CHILD"

// crashBatch is the size of each batch the crash child writes.
const crashBatch = 1000

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
	}
	os.Exit(m.Run())
}

// crashChild is the child process of TestCrashConsistency: it writes
// batches, each with an alert and a state entry counting the batches, and
// acknowledges each on stdout, until killed.
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		n := i + 1
		_, err := s.Apply(ctx, benchEvents(i*crashBatch, crashBatch), nil, func([]event.Event) (store.Effects, error) {
			return store.Effects{
				Alerts: []alert.Alert{{ID: fmt.Sprintf("a-%d", n), Check: "crash"}},
				State:  []store.StateEntry{{Key: "batches", Value: []byte(strconv.Itoa(n))}},
			}, nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", n)
	}
}

// TestCrashConsistency kills a writing process with SIGKILL (no Close, no
// checkpoint: the database is what the process left in the file and its
// write-ahead log) and checks that every batch is there whole or not at
// all, with its alert and state, and that nothing acknowledged is lost.
func TestCrashConsistency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it mid-stream: after a few acknowledged batches, with more in flight.
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			acked, _ = strconv.Atoi(n)
			if acked >= 5 {
				break
			}
		}
	}
	time.Sleep(37 * time.Millisecond) // the kill point, inside a later batch: the behaviour under test, not a wait
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 5 {
		t.Fatalf("child acknowledged only %d batches before it stopped", acked)
	}

	s, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	n, err := s.CountEvents(context.Background(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	batches := int(n / crashBatch)
	if n%crashBatch != 0 {
		t.Fatalf("%d events: a batch was stored in part", n)
	}
	if batches < acked {
		t.Fatalf("%d batches stored, but %d were acknowledged", batches, acked)
	}
	st, err := s.LoadState(context.Background(), "batches")
	if err != nil || len(st) != 1 || string(st[0].Value) != strconv.Itoa(batches) {
		t.Fatalf("state %v (%v) disagrees with %d stored batches", st, err, batches)
	}
	as, err := s.Alerts(context.Background(), store.AlertFilter{Check: "crash"})
	if err != nil || len(as) != batches {
		t.Fatalf("%d alerts (%v) for %d batches", len(as), err, batches)
	}
	t.Logf("killed after %d acknowledged batches; %d batches stored", acked, batches)
}
