package loader

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
)

// guardData is a small home: n staff, each with a shift and a
// relationship, and two devices.
func guardData(n int) *reference.Data {
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	d := &reference.Data{}
	for i := range n {
		id := fmt.Sprintf("u-%02d", i)
		d.Staff = append(d.Staff, reference.Staff{ActorID: id, Org: "st-martins", Role: "support-worker", Team: "webster-court", ActiveFrom: day})
		d.Shifts = append(d.Shifts, reference.Shift{ActorID: id, Start: day.Add(8 * time.Hour), End: day.Add(16 * time.Hour)})
		d.Relationships = append(d.Relationships, reference.Relationship{ActorID: id, SubjectID: fmt.Sprintf("s-%02d", i), Relation: "key-worker", ValidFrom: day})
	}
	d.Devices = []reference.Device{{DeviceID: "tab-1", Org: "st-martins", Kind: reference.DeviceSharedTablet}, {DeviceID: "tab-2", Org: "st-martins", Kind: reference.DeviceSharedTablet}}
	return d
}

// TestReferenceReloadGuard: a reload that would lose a file that had rows,
// or most of a table, keeps the data in force, says which kind and why in
// readiness and a metric, and a later good reload recovers. A normal edit
// goes through.
func TestReferenceReloadGuard(t *testing.T) {
	header := func(file string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			if err := os.WriteFile(filepath.Join(dir, file), []byte(first+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	rewrite := func(edit func(d *reference.Data)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			d := guardData(30)
			edit(d)
			if err := reference.WriteDir(dir, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		kind   string // refused kind; "" accepted
		fail   bool   // the reload fails to load at all
		want   []string
		staff  int // rows in force after the change
		shifts int
		rels   int
	}{
		{name: "shifts.csv deleted", kind: "shifts", staff: 30, shifts: 30, rels: 30,
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, reference.FileShifts)); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"shifts.csv is missing", "30 rows in force, 0 now"}},
		{name: "relationships.csv emptied to its header", kind: "relationships", staff: 30, shifts: 30, rels: 30,
			change: header(reference.FileRelationships), want: []string{"relationships.csv is empty", "30 rows in force, 0 now"}},
		{name: "relationships.csv truncated to nothing", fail: true, staff: 30, shifts: 30, rels: 30,
			change: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, reference.FileRelationships), 0); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"reload failed", "relationships.csv"}},
		{name: "staff shrunk from 30 to 5", kind: "staff", staff: 30, shifts: 30, rels: 30,
			change: rewrite(func(d *reference.Data) { d.Staff = d.Staff[:5] }),
			want:   []string{"staff.csv lost more than 50% of its rows", "30 rows in force, 5 now"}},
		{name: "a normal edit: one leaver, one joiner", staff: 30, shifts: 30, rels: 30,
			change: rewrite(func(d *reference.Data) {
				d.Staff[0].ActorID = "u-new"
				d.Shifts[0].ActorID, d.Relationships[0].ActorID = "u-new", "u-new"
			})},
		{name: "half the shifts gone: a shrink at the limit", staff: 30, shifts: 15, rels: 30,
			change: rewrite(func(d *reference.Data) { d.Shifts = d.Shifts[:15] })},
		{name: "the only two devices retired: still refused", kind: "devices", staff: 30, shifts: 30, rels: 30,
			change: rewrite(func(d *reference.Data) { d.Devices = nil }),
			want:   []string{"devices.csv is empty", "2 rows in force, 0 now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			orig := guardData(30)
			orig.Devices = orig.Devices[:2]
			if err := reference.WriteDir(dir, orig); err != nil {
				t.Fatal(err)
			}
			var roster rules.Roster
			l := newLoader(dir, time.Hour, func(r rules.Roster) { roster = r }, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			ctx := context.Background()
			if err := l.Load(ctx); err != nil {
				t.Fatal(err)
			}
			if err := l.Ready(); err != nil {
				t.Fatalf("ready after the first load: %v", err)
			}
			inForce := roster

			tc.change(t, dir)
			err := l.Load(ctx)
			refused := tc.kind != "" || tc.fail
			if refused != (err != nil) {
				t.Fatalf("reload: %v", err)
			}
			if got := len(l.csv.Staff); got != tc.staff {
				t.Errorf("staff in force: %d, want %d", got, tc.staff)
			}
			if got := len(l.csv.Shifts); got != tc.shifts {
				t.Errorf("shifts in force: %d, want %d", got, tc.shifts)
			}
			if got := len(l.csv.Relationships); got != tc.rels {
				t.Errorf("relationships in force: %d, want %d", got, tc.rels)
			}
			x := roster.(*reference.Index)
			if refused && (roster != inForce || !x.HasShifts("st-martins", "u-00") || !x.HasRelationships("st-martins")) {
				t.Errorf("the checks were given other data after a refused reload")
			}
			rerr := l.Ready()
			if !refused {
				if rerr != nil {
					t.Fatalf("ready after an accepted reload: %v", rerr)
				}
				if roster == inForce {
					t.Fatal("an accepted reload was not put in force")
				}
				return
			}
			if rerr == nil {
				t.Fatal("ready after a refused or failed reload")
			}
			for _, w := range tc.want {
				if !strings.Contains(rerr.Error(), w) {
					t.Errorf("readiness %q does not say %q", rerr, w)
				}
			}
			if strings.Contains(rerr.Error(), "u-0") || strings.Contains(rerr.Error(), "s-0") {
				t.Errorf("readiness names a person: %q", rerr)
			}
			if tc.kind != "" {
				if n := testutil.ToFloat64(l.refused.WithLabelValues(tc.kind)); n != 1 {
					t.Errorf("refused{kind=%s} = %v, want 1", tc.kind, n)
				}
				if n := testutil.ToFloat64(l.reloads.WithLabelValues("refused")); n != 1 {
					t.Errorf("loads{outcome=refused} = %v, want 1", n)
				}
			}
			// Still refused, still not ready, until the file is restored.
			if err := l.Load(ctx); err == nil || l.Ready() == nil {
				t.Fatalf("the same files reloaded: %v, ready %v", err, l.Ready())
			}
			if err := reference.WriteDir(dir, orig); err != nil {
				t.Fatal(err)
			}
			if err := l.Load(ctx); err != nil {
				t.Fatalf("reload after restoring: %v", err)
			}
			if err := l.Ready(); err != nil {
				t.Fatalf("ready after restoring: %v", err)
			}
		})
	}
}

// TestReferenceFirstLoadTakesWhatIsThere: at startup a missing file is
// allowed (some deployments have no devices.csv); only later reloads are
// compared with the data in force, and a file that was never there may stay
// away.
func TestReferenceFirstLoadTakesWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	d := guardData(30)
	d.Devices = nil
	if err := reference.WriteDir(dir, d); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{reference.FileDevices, reference.FileAbsences} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	l := newLoader(dir, time.Hour, func(rules.Roster) {}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	for range 2 {
		if err := l.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Ready(); err != nil {
			t.Fatal(err)
		}
	}
	// A kind read from Kafka is not the directory's to lose.
	l.kafkaKinds = append(l.kafkaKinds, "shifts")
	if err := os.Remove(filepath.Join(dir, reference.FileShifts)); err != nil {
		t.Fatal(err)
	}
	if err := l.Load(context.Background()); err != nil || l.Ready() != nil {
		t.Fatalf("shifts.csv removed with shifts on Kafka: %v, ready %v", err, l.Ready())
	}
}
