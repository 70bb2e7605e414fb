package reference

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDirRefusesHiddenAndOversizeCells: a cell holding a bidirectional
// control or another hidden character, or longer than its bound, is refused
// with its file, line, column position and column name — and never quoted,
// since it may be megabytes long (issue 16, item 10).
func TestLoadDirRefusesHiddenAndOversizeCells(t *testing.T) {
	long := strings.Repeat("x", MaxCellBytes+1)
	tests := []struct {
		name, file, content, want string
	}{
		{"right-to-left override in an actor id", FileStaff,
			"actor_id,org,active_from\nu-\u202e71,st-martins,2026-01-01T00:00:00Z\n",
			"staff.csv:2:1: actor_id: contains the hidden character U+202E at byte 2"},
		{"first strong isolate in a subject id", FileRelationships,
			"actor_id,subject_id,valid_from\nu-1,c-\u2068001,2026-01-01T00:00:00Z\n",
			"relationships.csv:2:5: subject_id: contains the hidden character U+2068 at byte 2"},
		{"arabic letter mark in a team", FileStaff,
			"actor_id,team,active_from,org\nu-1,webster\u061c,2026-01-01T00:00:00Z,st-martins\n",
			"staff.csv:2:5: team: contains the hidden character U+061C at byte 7"},
		{"zero-width space in a device id, quoted", FileDevices,
			"device_id,kind,org\n\"tab\u200b03\",desktop,st-martins\n",
			"devices.csv:2:1: device_id: contains the hidden character U+200B at byte 3"},
		{"a control character in a location", FileDevices,
			"device_id,kind,location,org\ntab-03,desktop,\"ward\x1b[2J\",st-martins\n",
			"devices.csv:2:16: location: contains the hidden character U+001B at byte 4"},
		{"left-to-right mark in a list", FileSharingAgreements,
			"partner_org,org,record_types,actions,valid_from\nnhs,st-martins,care-plan;\u200eassessment,view,2026-01-01T00:00:00Z\n",
			"sharing_agreements.csv:2:16: record_types: contains the hidden character U+200E at byte 10"},
		{"an actor id over the bound", FileShifts,
			"actor_id,start,end\n" + long + ",2026-01-01T08:00:00Z,2026-01-01T16:00:00Z\n",
			"shifts.csv:2:1: actor_id: is longer than 256 bytes"},
		{"an absence kind of 30 KB", FileAbsences,
			"actor_id,start,kind\nu-1,2026-01-01T00:00:00Z," + strings.Repeat("k", 30<<10) + "\n",
			"absences.csv:2:26: kind: is longer than 256 bytes"},
		{"a time cell of 30 KB", FileAbsences,
			"actor_id,start\nu-1," + strings.Repeat("9", 30<<10) + "\n",
			"absences.csv:2:5: start: is longer than 256 bytes"},
		{"a list entry over the bound", FileSharingAgreements,
			"partner_org,org,record_types,actions,valid_from\nnhs,st-martins,care-plan;" + long + ",view,2026-01-01T00:00:00Z\n",
			"sharing_agreements.csv:2:16: record_types: has an entry longer than 256 bytes"},
		{"a list of 5 KB", FileSharingAgreements,
			"partner_org,org,record_types,actions,valid_from\nnhs,st-martins," + strings.Repeat("care-plan;", 500) + ",view,2026-01-01T00:00:00Z\n",
			"sharing_agreements.csv:2:16: record_types: is longer than 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := LoadDir(dir)
			if err == nil {
				t.Fatalf("LoadDir accepted the file (%d staff, %d relationships, %d shifts, %d absences, %d devices, %d agreements)",
					len(d.Staff), len(d.Relationships), len(d.Shifts), len(d.Absences), len(d.Devices), len(d.SharingAgreements))
			}
			if got := err.Error(); got != tc.want {
				if len(got) > 300 {
					got = got[:300] + fmt.Sprintf("… (%d bytes)", len(got))
				}
				t.Errorf("error:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestLoadDirAcceptsCellsAtTheBound: the bounds are inclusive, and letters
// of any script are not hidden characters.
func TestLoadDirAcceptsCellsAtTheBound(t *testing.T) {
	dir := t.TempDir()
	id := strings.Repeat("u", MaxCellBytes)
	staff := "actor_id,team,active_from,org\n" + id + ",Zoë's team مريم,2026-01-01T00:00:00Z,st-martins\n"
	if err := os.WriteFile(filepath.Join(dir, FileStaff), []byte(staff), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Staff) != 1 || d.Staff[0].ActorID != id || d.Staff[0].Team != "Zoë's team مريم" {
		t.Errorf("staff = %+v", d.Staff)
	}
}
