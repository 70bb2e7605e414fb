package reference

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// twoOrgs is two tenants that both have an actor u-17 and a device tab-1,
// with rows confined to one org and rows for every org (CONTRACT §2).
func twoOrgs() *Data {
	return &Data{
		Staff: []Staff{
			{ActorID: "u-17", Org: "st-martins", Role: "support-worker", Team: "webster-court", ActiveFrom: at(0)},
			{ActorID: "u-17", Org: "wiltshire", Role: "social-worker", Team: "north", ActiveFrom: at(0)},
		},
		Devices: []Device{
			{DeviceID: "tab-1", Org: "st-martins", Kind: DeviceSharedTablet},
			{DeviceID: "tab-1", Org: "wiltshire", Kind: DeviceLaptop, AssignedTo: "u-17"},
		},
		Relationships: []Relationship{
			{Org: "st-martins", ActorID: "u-17", SubjectID: "c-1", Relation: "key-worker", ValidFrom: at(0)},
			{Org: "wiltshire", Team: "north", SubjectID: "c-2", Relation: "caseload", ValidFrom: at(0)},
			{ActorID: "u-17", SubjectID: "c-3", Relation: "referral", ValidFrom: at(0)}, // every org
		},
		Shifts: []Shift{
			{Org: "st-martins", ActorID: "u-17", Start: at(8), End: at(16)},
			{ActorID: "u-17", Start: at(30), End: at(38)}, // every org
		},
		Absences: []Absence{
			{Org: "wiltshire", ActorID: "u-17", Start: at(0), End: at(24), Kind: "leave"},
		},
	}
}

// TestLookupsKeepTenantsApart fails if any lookup ignores the org: each
// org's u-17 and tab-1 are its own, an id unknown to an org's roster is
// unknown there, and org-less rows apply in every org.
func TestLookupsKeepTenantsApart(t *testing.T) {
	x := NewIndex(twoOrgs())
	if s, ok := x.Staff("st-martins", "u-17"); !ok || s.Role != "support-worker" {
		t.Errorf("Staff(st-martins, u-17) = %+v, %v", s, ok)
	}
	if s, ok := x.Staff("wiltshire", "u-17"); !ok || s.Role != "social-worker" {
		t.Errorf("Staff(wiltshire, u-17) = %+v, %v", s, ok)
	}
	if s, ok := x.Staff("dorset", "u-17"); ok {
		t.Errorf("Staff(dorset, u-17) = %+v: another org's account", s)
	}
	if !x.HasStaff("wiltshire") || x.HasStaff("dorset") {
		t.Errorf("HasStaff: wiltshire %v, dorset %v", x.HasStaff("wiltshire"), x.HasStaff("dorset"))
	}
	if d, ok := x.Device("wiltshire", "tab-1"); !ok || d.Kind != DeviceLaptop {
		t.Errorf("Device(wiltshire, tab-1) = %+v, %v", d, ok)
	}
	if d, ok := x.Device("st-martins", "tab-1"); !ok || d.Kind != DeviceSharedTablet {
		t.Errorf("Device(st-martins, tab-1) = %+v, %v", d, ok)
	}

	for _, tc := range []struct {
		org, team, subject string
		want               bool
	}{
		{"st-martins", "", "c-1", true},
		{"wiltshire", "", "c-1", false}, // st-martins' row
		{"wiltshire", "north", "c-2", true},
		{"st-martins", "north", "c-2", false}, // wiltshire's team row
		{"st-martins", "", "c-3", true},       // every org
		{"wiltshire", "", "c-3", true},
	} {
		if got := x.HasRelationship(tc.org, "u-17", tc.team, tc.subject, at(1)); got != tc.want {
			t.Errorf("HasRelationship(%s, u-17, %q, %s) = %v, want %v", tc.org, tc.team, tc.subject, got, tc.want)
		}
	}
	if r, ok := x.NearestRelationship("wiltshire", "u-17", "", "c-1", at(1)); ok {
		t.Errorf("NearestRelationship(wiltshire, c-1) = %+v: st-martins' row", r)
	}
	if r, ok := x.NearestRelationship("st-martins", "u-17", "", "c-1", at(-1)); !ok || r.Org != "st-martins" || r.Relation != "key-worker" {
		t.Errorf("NearestRelationship(st-martins, c-1) = %+v, %v", r, ok)
	}
	if !x.HasRelationships("wiltshire") || !x.HasRelationships("dorset") { // dorset: the org-less row
		t.Error("HasRelationships: the org-less row applies in every org")
	}
	if NewIndex(&Data{Relationships: []Relationship{{Org: "wiltshire", Team: "north", SubjectID: "c-2"}}}).HasRelationships("st-martins") {
		t.Error("HasRelationships(st-martins) with wiltshire's rows only")
	}

	if _, ok := x.ShiftAt("wiltshire", "u-17", at(12), 0); ok {
		t.Error("ShiftAt(wiltshire, 12h) found st-martins' shift")
	}
	if s, ok := x.ShiftAt("st-martins", "u-17", at(12), 0); !ok || !s.Start.Equal(at(8)) {
		t.Errorf("ShiftAt(st-martins, 12h) = %+v, %v", s, ok)
	}
	if s, ok := x.ShiftAt("wiltshire", "u-17", at(31), 0); !ok || !s.Start.Equal(at(30)) {
		t.Errorf("ShiftAt(wiltshire, 31h) = %+v, %v: the org-less shift", s, ok)
	}
	if s, ok := x.NearestShift("wiltshire", "u-17", at(12)); !ok || !s.Start.Equal(at(30)) {
		t.Errorf("NearestShift(wiltshire, 12h) = %+v, %v", s, ok)
	}
	if s, ok := x.NearestShift("st-martins", "u-17", at(12)); !ok || !s.Start.Equal(at(8)) {
		t.Errorf("NearestShift(st-martins, 12h) = %+v, %v", s, ok)
	}
	if !x.HasShifts("wiltshire", "u-17") || x.HasShifts("dorset", "u-18") {
		t.Error("HasShifts")
	}
	if _, ok := x.AbsentAt("st-martins", "u-17", at(1)); ok {
		t.Error("AbsentAt(st-martins) found wiltshire's leave")
	}
	if a, ok := x.AbsentAt("wiltshire", "u-17", at(1)); !ok || a.Kind != "leave" {
		t.Errorf("AbsentAt(wiltshire) = %+v, %v", a, ok)
	}
}

// TestCSVTenants: staff and devices need an org; the same id in two orgs
// is allowed, twice in one is not; the optional org column of
// relationships, shifts and absences survives a write and a read.
func TestCSVTenants(t *testing.T) {
	dir := t.TempDir()
	d := twoOrgs()
	if err := WriteDir(dir, d); err != nil {
		t.Fatal(err)
	}
	back, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Staff) != 2 || len(back.Devices) != 2 {
		t.Fatalf("read back %d staff, %d devices; want 2 and 2", len(back.Staff), len(back.Devices))
	}
	again := t.TempDir()
	if err := WriteDir(again, back); err != nil {
		t.Fatal(err)
	}
	for _, name := range fileNames {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(again, name))
		if string(a) != string(b) {
			t.Errorf("%s differs after a read and a write:\n%s\n---\n%s", name, a, b)
		}
	}
	if s, ok := NewIndex(back).Staff("wiltshire", "u-17"); !ok || s.Team != "north" {
		t.Errorf("read back: Staff(wiltshire, u-17) = %+v, %v", s, ok)
	}
	head, err := os.ReadFile(filepath.Join(dir, FileRelationships))
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(string(head), "\n"); first != "actor_id,team,subject_id,relation,valid_from,valid_to,org" {
		t.Errorf("relationships.csv header = %q", first)
	}

	for _, tc := range []struct{ file, content, want string }{
		{FileStaff, "actor_id,role,active_from\nu-1,x,2026-01-01T00:00:00Z\n", `staff.csv:1: required column "org" is missing`},
		{FileStaff, "actor_id,org,active_from\nu-1,,2026-01-01T00:00:00Z\n", "staff.csv:2:5: org: value is required"},
		{FileStaff, "actor_id,org,active_from\nu-1,a,2026-01-01T00:00:00Z\nu-1,b,2026-01-01T00:00:00Z\nu-1,a,2026-01-01T00:00:00Z\n",
			`staff.csv:4:1: actor_id: "u-1" is already listed for org "a" on line 2`},
		{FileDevices, "device_id,kind\nt-1,desktop\n", `devices.csv:1: required column "org" is missing`},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadDir(dir); err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.file, err, tc.want)
		}
	}
}
