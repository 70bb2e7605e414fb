package loader

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

type fakeSnapshots struct {
	fail  int
	saved []time.Time
	data  []*reference.Data
}

func (f *fakeSnapshots) SaveReference(_ context.Context, at time.Time, d *reference.Data) error {
	if f.fail > 0 {
		f.fail--
		return errors.New("store down")
	}
	f.saved, f.data = append(f.saved, at), append(f.data, d)
	return nil
}

func (f *fakeSnapshots) ReferenceAt(context.Context, time.Time) (store.ReferenceSnapshot, error) {
	return store.ReferenceSnapshot{}, store.ErrNotFound
}

func (f *fakeSnapshots) ReferenceByID(context.Context, string) (store.ReferenceSnapshot, error) {
	return store.ReferenceSnapshot{}, store.ErrNotFound
}

// TestReferenceLoadSavesSnapshot: each load goes to a store that keeps
// snapshots; a failed save is retried later with the original load time.
func TestReferenceLoadSavesSnapshot(t *testing.T) {
	dir := t.TempDir()
	d := &reference.Data{Staff: []reference.Staff{{ActorID: "u-17", Org: "st-martins", Role: "support-worker", Team: "webster-court",
		ActiveFrom: time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC)}}}
	if err := reference.WriteDir(dir, d); err != nil {
		t.Fatal(err)
	}
	snaps := &fakeSnapshots{fail: 1}
	applied := 0
	var roster rules.Roster
	l := newLoader(dir, time.Hour, func(r rules.Roster) { applied, roster = applied+1, r }, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	l.snapshots = snaps
	before := time.Now()
	if err := l.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if applied != 1 || len(snaps.saved) != 0 || l.unsaved == nil || testutil.ToFloat64(l.snapshotErrs) != 1 {
		t.Fatalf("after a failed save: applied %d, saved %d, unsaved %v, failures %v", applied, len(snaps.saved), l.unsaved != nil, testutil.ToFloat64(l.snapshotErrs))
	}
	loadedAt := l.unsavedAt
	l.saveSnapshot(context.Background())
	if len(snaps.saved) != 1 || !snaps.saved[0].Equal(loadedAt) || snaps.saved[0].Before(before) || l.unsaved != nil {
		t.Fatalf("retry saved %v (load at %s), unsaved %v", snaps.saved, loadedAt, l.unsaved != nil)
	}
	if len(snaps.data[0].Staff) != 1 || snaps.data[0].Staff[0].ActorID != "u-17" {
		t.Fatalf("saved data %+v", snaps.data[0])
	}
	// The data put in force is named as its snapshot is, so that alerts
	// judged against it can find the snapshot again.
	got := ""
	if named, ok := roster.(interface{ ReferenceID() string }); ok {
		got = named.ReferenceID()
	}
	if want, err := store.ReferenceID(snaps.data[0]); err != nil || got == "" || got != want {
		t.Fatalf("the roster put in force (%T) is named %q, want the snapshot's ID %q (%v)", roster, got, want, err)
	}
	l.saveSnapshot(context.Background()) // nothing left to save
	if len(snaps.saved) != 1 {
		t.Fatalf("saved %d times", len(snaps.saved))
	}
}

// TestSubjectsReload: a change to subjects.csv alone is seen as a change
// of the directory and reloads it; the new display references are in the
// data put in force.
func TestSubjectsReload(t *testing.T) {
	dir := t.TempDir()
	d := &reference.Data{Subjects: []reference.Subject{{Org: "st-martins", SubjectID: "c-0042", DisplayRef: "WC-R14"}}}
	if err := reference.WriteDir(dir, d); err != nil {
		t.Fatal(err)
	}
	var roster rules.Roster
	l := newLoader(dir, time.Hour, func(r rules.Roster) { roster = r }, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err := l.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ref := func() string {
		v, _ := roster.(*reference.Index).SubjectRef("st-martins", "c-0042")
		return v
	}
	if ref() != "WC-R14" {
		t.Fatalf("first load: %q", ref())
	}
	stamp := l.fingerprint()
	// Only subjects.csv is written: the other files keep their stamps.
	if err := os.WriteFile(filepath.Join(dir, reference.FileSubjects), []byte("subject_id,org,display_ref\nc-0042,st-martins,WC-R15 (moved)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l.fingerprint() == stamp {
		t.Fatal("a change to subjects.csv is not a change of the directory: it would never be reloaded")
	}
	if err := l.Load(context.Background()); err != nil || ref() != "WC-R15 (moved)" {
		t.Fatalf("after the reload: %q %v", ref(), err)
	}
}
