package reference

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestLoadDirGood(t *testing.T) {
	d, err := LoadDir("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	want := &Data{
		Staff: []Staff{
			{ActorID: "u-1", Org: "st-martins", Role: "support-worker", Team: "webster-court", ActiveFrom: mustTime(t, "2025-01-01T00:00:00Z")},
			{ActorID: "p-1", Org: "turning-point", Role: "drug-worker", External: true, ActiveFrom: mustTime(t, "2025-01-01T00:00:00Z"), ActiveTo: mustTime(t, "2026-06-01T00:00:00+01:00")},
		},
		Relationships: []Relationship{
			{Team: "webster-court", SubjectID: "c-1", Relation: "resident", ValidFrom: mustTime(t, "2025-01-01T00:00:00Z")},
			{ActorID: "u-1", SubjectID: "c-1", Relation: "keyworker", ValidFrom: mustTime(t, "2025-01-01T00:00:00Z"), ValidTo: mustTime(t, "2026-03-01T00:00:00Z")},
		},
		Devices: []Device{{DeviceID: "tab-01", Org: "st-martins", Kind: DeviceSharedTablet, AssignedTo: "webster-court", Location: "webster-court"}},
		SharingAgreements: []SharingAgreement{{PartnerOrg: "turning-point", Org: "st-martins", RecordTypes: []string{"care-plan", "risk-assessment"},
			Actions: []string{"view", "update"}, ValidFrom: mustTime(t, "2025-01-01T00:00:00Z")}},
		Subjects: []Subject{{SubjectID: "c-1", Org: "st-martins", DisplayRef: "WC-R14"}, {SubjectID: "c-1", Org: "turning-point", DisplayRef: "TP-0007"}},
	}
	if err := equalData(d, want); err != "" {
		t.Fatal(err)
	}
}

// equalData compares with time.Equal (a parsed +00:00 and Z are the same
// instant but not the same Location).
func equalData(got, want *Data) string {
	norm := func(d *Data) *Data {
		c := *d
		u := func(t time.Time) time.Time {
			if t.IsZero() {
				return t
			}
			return t.UTC()
		}
		c.Staff = append([]Staff(nil), d.Staff...)
		for i := range c.Staff {
			c.Staff[i].ActiveFrom, c.Staff[i].ActiveTo = u(c.Staff[i].ActiveFrom), u(c.Staff[i].ActiveTo)
		}
		c.Relationships = append([]Relationship(nil), d.Relationships...)
		for i := range c.Relationships {
			c.Relationships[i].ValidFrom, c.Relationships[i].ValidTo = u(c.Relationships[i].ValidFrom), u(c.Relationships[i].ValidTo)
		}
		c.Shifts = append([]Shift(nil), d.Shifts...)
		for i := range c.Shifts {
			c.Shifts[i].Start, c.Shifts[i].End = u(c.Shifts[i].Start), u(c.Shifts[i].End)
		}
		c.Absences = append([]Absence(nil), d.Absences...)
		for i := range c.Absences {
			c.Absences[i].Start, c.Absences[i].End = u(c.Absences[i].Start), u(c.Absences[i].End)
		}
		c.SharingAgreements = append([]SharingAgreement(nil), d.SharingAgreements...)
		for i := range c.SharingAgreements {
			c.SharingAgreements[i].ValidFrom, c.SharingAgreements[i].ValidTo = u(c.SharingAgreements[i].ValidFrom), u(c.SharingAgreements[i].ValidTo)
		}
		return &c
	}
	g, w := norm(got), norm(want)
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"staff", g.Staff, w.Staff}, {"relationships", g.Relationships, w.Relationships}, {"shifts", g.Shifts, w.Shifts},
		{"absences", g.Absences, w.Absences}, {"devices", g.Devices, w.Devices}, {"sharing agreements", g.SharingAgreements, w.SharingAgreements},
	} {
		if reflect.ValueOf(f.a).Len() == 0 && reflect.ValueOf(f.b).Len() == 0 {
			continue
		}
		if !reflect.DeepEqual(f.a, f.b) {
			return f.name + ": got\n" + sprint(f.a) + "\nwant\n" + sprint(f.b)
		}
	}
	return ""
}

func sprint(v any) string { return strings.ReplaceAll(fmt.Sprintf("%+v", v), "} {", "}\n{") }

func TestLoadDirErrors(t *testing.T) {
	_, err := LoadDir("testdata/bad")
	if err == nil {
		t.Fatal("LoadDir accepted bad data")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("errors differ from %s (-update to rewrite):\n%s", golden, got)
	}
	// The brief's example message, exactly, with the cell's column position (issue 16, item 10).
	if !strings.Contains(got, `staff.csv:2:51: active_from: "2026-13-01" is not an RFC 3339 time`) {
		t.Error("missing the active_from error")
	}
}

func TestLoadDirMissingFilesAreEmpty(t *testing.T) {
	d, err := LoadDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Staff)+len(d.Relationships)+len(d.Shifts)+len(d.Absences)+len(d.Devices)+len(d.SharingAgreements) != 0 {
		t.Fatal("empty dir yielded data")
	}
}

// TestSubjectsFile: subjects.csv is optional (absent: no rows, and WriteDir
// writes none), needs its three columns, and never quotes a display_ref
// in an error: it names a person, and errors go to the log.
func TestSubjectsFile(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDir(dir, &Data{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileSubjects)); !os.IsNotExist(err) {
		t.Errorf("WriteDir wrote %s without subjects: %v", FileSubjects, err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileSubjects), []byte("subject_id,org\nc-1,o\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), `subjects.csv:1: required column "display_ref" is missing`) {
		t.Errorf("subjects.csv without display_ref: %v", err)
	}
	// Replays judge without display references: the file is not read.
	if d, err := LoadDirWith(dir, LoadOptions{WithoutSubjects: true}); err != nil || d.Subjects != nil {
		t.Errorf("LoadDirWith(WithoutSubjects) = %v subjects, %v; want the file unread", d, err)
	}
	_, err := LoadDir("testdata/bad")
	if err == nil {
		t.Fatal("bad subjects.csv accepted")
	}
	for _, ref := range []string{"WC-R14", "WC-R15", "WC-R16"} {
		if strings.Contains(err.Error(), ref) {
			t.Errorf("an error quotes the display_ref %q:\n%v", ref, err)
		}
	}
}

func TestLoadDirHeaderless(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileShifts), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), "shifts.csv:1: header row is missing") {
		t.Fatalf("got %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	lon, _ := time.LoadLocation("Europe/London")
	d := &Data{
		Staff: []Staff{
			{ActorID: "u-2", Org: "o", Role: "r", Team: "t", ActiveFrom: time.Date(2026, 3, 29, 1, 30, 0, 0, lon)},
			{ActorID: "u-1", Org: "o", External: true, ActiveFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), ActiveTo: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		},
		Relationships: []Relationship{
			{Team: "t", SubjectID: "c-1", Relation: "case, \"quoted\"", ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
			{ActorID: "u-1", SubjectID: "c-1", ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), ValidTo: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)},
		},
		Shifts:            []Shift{{ActorID: "u-2", Start: time.Date(2026, 3, 28, 22, 0, 0, 0, lon), End: time.Date(2026, 3, 29, 7, 0, 0, 0, lon)}},
		Absences:          []Absence{{ActorID: "u-2", Start: time.Date(2026, 4, 1, 0, 0, 0, 0, lon), Kind: "sickness"}},
		Devices:           []Device{{DeviceID: "tab-1", Org: "o", Kind: DeviceSharedTablet, AssignedTo: "t", Location: "x"}},
		SharingAgreements: []SharingAgreement{{PartnerOrg: "p", Org: "o", RecordTypes: []string{"*"}, Actions: []string{"view", "update"}, ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}},
		Subjects:          []Subject{{SubjectID: "c-2", Org: "o", DisplayRef: "Room 4, \"Jo\""}, {SubjectID: "c-1", Org: "o", DisplayRef: "WC-R14"}},
	}
	dir := t.TempDir()
	if err := WriteDir(dir, d); err != nil {
		t.Fatal(err)
	}
	got, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// WriteDir orders rows by key: u-1 before u-2, team rows (empty actor_id) first.
	want := *d
	want.Staff = []Staff{d.Staff[1], d.Staff[0]}
	want.Subjects = []Subject{d.Subjects[1], d.Subjects[0]}
	if msg := equalData(got, &want); msg != "" {
		t.Fatal(msg)
	}
	// Deterministic bytes.
	dir2 := t.TempDir()
	if err := WriteDir(dir2, got); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FileStaff, FileRelationships, FileShifts, FileAbsences, FileDevices, FileSharingAgreements, FileSubjects} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, _ := os.ReadFile(filepath.Join(dir2, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: second write differs:\n%s\n%s", f, a, b)
		}
	}
}

// FuzzLoadStaff feeds arbitrary bytes to the CSV decoder: it must report
// errors, never panic.
func FuzzLoadStaff(f *testing.F) {
	for _, p := range []string{"testdata/good/staff.csv", "testdata/bad/staff.csv", "testdata/bad/absences.csv"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, load := range []func(*table, *Data, interner) error{loadStaff, loadRelationships, loadShifts, loadAbsences, loadDevices, loadSharingAgreements, loadSubjects} {
			d := &Data{}
			_ = load(newTable("f.csv", bytes.NewReader(b)), d, newInterner())
		}
	})
}
