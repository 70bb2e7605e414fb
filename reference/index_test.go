package reference

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

func testIndex() *Index {
	return NewIndex(&Data{
		Staff: []Staff{{ActorID: "u-1", Org: "o", Team: "t"}},
		Relationships: []Relationship{
			{ActorID: "u-1", SubjectID: "c-1", ValidFrom: at(10), ValidTo: at(20)},
			{ActorID: "u-1", SubjectID: "c-1", ValidFrom: at(30)}, // reopened, open-ended
			{ActorID: "u-1", SubjectID: "c-0", ValidFrom: at(0)},
			{ActorID: "u-1", SubjectID: "c-2", ValidFrom: at(0)},
			{Team: "t", SubjectID: "c-9", ValidFrom: at(5), ValidTo: at(6)},
		},
		Shifts: []Shift{
			{ActorID: "u-1", Start: at(22), End: at(31)}, // a night over midnight
			{ActorID: "u-1", Start: at(7), End: at(15)},
			{ActorID: "u-1", Start: at(55), End: at(63)},
		},
		Absences: []Absence{
			{ActorID: "u-1", Start: at(40), End: at(48), Kind: "sickness"},
			{ActorID: "u-1", Start: at(100), Kind: "leave"},
		},
		Devices: []Device{{DeviceID: "tab-1", Org: "o", Kind: DeviceSharedTablet}},
	})
}

func TestHasRelationshipWindows(t *testing.T) {
	x := testIndex()
	for _, tc := range []struct {
		actor, team, subject string
		t                    time.Time
		want                 bool
	}{
		{"u-1", "", "c-1", at(10).Add(-time.Nanosecond), false},
		{"u-1", "", "c-1", at(10), true}, // ValidFrom inclusive
		{"u-1", "", "c-1", at(20).Add(-time.Nanosecond), true},
		{"u-1", "", "c-1", at(20), false}, // ValidTo exclusive
		{"u-1", "", "c-1", at(29), false},
		{"u-1", "", "c-1", at(30), true},
		{"u-1", "", "c-1", at(1e5), true}, // open-ended
		{"u-1", "", "c-3", at(12), false},
		{"u-2", "", "c-1", at(12), false},
		{"u-2", "t", "c-9", at(5), true}, // team row covers any member
		{"u-2", "t", "c-9", at(6), false},
		{"u-2", "", "c-9", at(5), false},
		{"u-1", "x", "c-9", at(5), false},
		{"u-1", "t", "c-0", at(5), true},
	} {
		if got := x.HasRelationship("o", tc.actor, tc.team, tc.subject, tc.t); got != tc.want {
			t.Errorf("HasRelationship(%s,%s,%s,%v) = %v, want %v", tc.actor, tc.team, tc.subject, tc.t, got, tc.want)
		}
	}
}

func TestShiftAt(t *testing.T) {
	x := testIndex()
	g := 30 * time.Minute
	for _, tc := range []struct {
		t     time.Time
		want  bool
		start time.Time
	}{
		{at(6.5).Add(-time.Nanosecond), false, time.Time{}},
		{at(6.5), true, at(7)}, // start-grace inclusive
		{at(12), true, at(7)},
		{at(15.5), true, at(7)}, // end+grace inclusive
		{at(15.5).Add(time.Nanosecond), false, time.Time{}},
		{at(21.6), true, at(22)},
		{at(24.5), true, at(22)}, // after midnight in a night shift
		{at(31.5), true, at(22)},
		{at(40), false, time.Time{}},
		{at(-100), false, time.Time{}},
		{at(1000), false, time.Time{}},
	} {
		s, ok := x.ShiftAt("o", "u-1", tc.t, g)
		if ok != tc.want || (ok && !s.Start.Equal(tc.start)) {
			t.Errorf("ShiftAt(%v) = %v %v, want %v %v", tc.t, s.Start, ok, tc.want, tc.start)
		}
	}
	if _, ok := x.ShiftAt("o", "nobody", at(12), g); ok {
		t.Error("shift for unknown actor")
	}
	if !x.HasShifts("o", "u-1") || x.HasShifts("o", "nobody") {
		t.Error("HasShifts wrong")
	}
}

func TestShiftAtOverlapping(t *testing.T) {
	// A long shift containing a short later one: the short one must not hide it.
	x := NewIndex(&Data{Shifts: []Shift{
		{ActorID: "a", Start: at(0), End: at(24)},
		{ActorID: "a", Start: at(2), End: at(3)},
	}})
	if s, ok := x.ShiftAt("o", "a", at(10), 0); !ok || !s.Start.Equal(at(0)) {
		t.Fatalf("got %v %v", s, ok)
	}
	if s, ok := x.NearestShift("o", "a", at(10)); !ok || !s.Start.Equal(at(0)) {
		t.Fatalf("nearest got %v %v", s, ok)
	}
}

func TestNearestShift(t *testing.T) {
	x := testIndex()
	for _, tc := range []struct {
		t     time.Time
		start time.Time
	}{
		{at(-5), at(7)},
		{at(10), at(7)}, // inside
		{at(18), at(7)},
		{at(18.6), at(22)},
		{at(18.5), at(7)}, // tie: 3.5h both ways → the earlier
		{at(40), at(22)},
		{at(45), at(55)},
		{at(1000), at(55)},
	} {
		s, ok := x.NearestShift("o", "u-1", tc.t)
		if !ok || !s.Start.Equal(tc.start) {
			t.Errorf("NearestShift(%v) = %v %v, want %v", tc.t, s.Start, ok, tc.start)
		}
	}
	if _, ok := x.NearestShift("o", "nobody", at(0)); ok {
		t.Error("nearest shift for unknown actor")
	}
}

func TestAbsentAt(t *testing.T) {
	x := testIndex()
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{at(40).Add(-time.Nanosecond), false}, {at(40), true}, {at(48).Add(-time.Nanosecond), true},
		{at(48), false}, {at(99), false}, {at(100), true}, {at(1e5), true},
	} {
		if _, got := x.AbsentAt("o", "u-1", tc.t); got != tc.want {
			t.Errorf("AbsentAt(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestLookups(t *testing.T) {
	x := testIndex()
	if s, ok := x.Staff("o", "u-1"); !ok || s.Team != "t" {
		t.Error("Staff")
	}
	if _, ok := x.Staff("o", "u-9"); ok {
		t.Error("unknown staff found")
	}
	if d, ok := x.Device("o", "tab-1"); !ok || d.Kind != DeviceSharedTablet {
		t.Error("Device")
	}
}

func TestSharingAgreement(t *testing.T) {
	x := NewIndex(&Data{SharingAgreements: []SharingAgreement{
		{PartnerOrg: "police", Org: "w", RecordTypes: []string{"referral"}, Actions: []string{"view", "update"}, ValidFrom: at(0), ValidTo: at(10)},
		{PartnerOrg: "health", Org: "w", RecordTypes: []string{"*"}, Actions: []string{"view"}, ValidFrom: at(0)},
	}})
	for _, tc := range []struct {
		partner, rt, action string
		t                   time.Time
		want                bool
	}{
		{"police", "referral", "view", at(0), true},
		{"police", "referral", "export", at(1), false},
		{"police", "case-note", "view", at(1), false},
		{"police", "referral", "view", at(10), false},
		{"health", "anything", "view", at(1000), true},
		{"health", "anything", "update", at(1), false},
		{"schools", "referral", "view", at(1), false},
	} {
		if _, got := x.SharingAgreementFor(tc.partner, "w", tc.rt, tc.action, tc.t); got != tc.want {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
}

// countyIndex is sized like the brief: 10,000 staff, 200,000 subjects, 2M
// relationship rows, a month of shifts.
func countyIndex(b *testing.B) *Index {
	b.Helper()
	d := &Data{}
	for i := range 10000 {
		d.Staff = append(d.Staff, Staff{ActorID: fmt.Sprintf("u-%05d", i), Org: "o", Team: fmt.Sprintf("team-%02d", i%50), ActiveFrom: at(-1e4)})
		for day := range 30 {
			d.Shifts = append(d.Shifts, Shift{ActorID: d.Staff[i].ActorID, Start: at(float64(day*24 + 8)), End: at(float64(day*24 + 16))})
		}
		d.Absences = append(d.Absences, Absence{ActorID: d.Staff[i].ActorID, Start: at(100), End: at(148)})
		d.Devices = append(d.Devices, Device{DeviceID: fmt.Sprintf("d-%05d", i), Org: "o", Kind: DeviceLaptop})
	}
	for i := range 2_000_000 {
		r := Relationship{SubjectID: fmt.Sprintf("c-%06d", i%200000), ValidFrom: at(-1e4)}
		if i%2 == 0 {
			r.ActorID = fmt.Sprintf("u-%05d", i%10000)
		} else {
			r.Team = fmt.Sprintf("team-%02d", i%50)
		}
		d.Relationships = append(d.Relationships, r)
	}
	return NewIndex(d)
}

func BenchmarkIndex(b *testing.B) {
	x := countyIndex(b)
	tm := at(24*10 + 12)
	for _, bc := range []struct {
		name string
		fn   func()
	}{
		{"Staff", func() { x.Staff("o", "u-04242") }},
		{"HasShifts", func() { x.HasShifts("o", "u-04242") }},
		{"ShiftAt", func() { x.ShiftAt("o", "u-04242", tm, 30*time.Minute) }},
		{"NearestShift", func() { x.NearestShift("o", "u-04242", tm.Add(8*time.Hour)) }},
		{"AbsentAt", func() { x.AbsentAt("o", "u-04242", tm) }},
		{"Device", func() { x.Device("o", "d-04242") }},
		{"HasRelationship/actor", func() { x.HasRelationship("o", "u-04242", "", "c-004242", tm) }},
		{"HasRelationship/team-miss", func() { x.HasRelationship("o", "u-04242", "team-42", "c-199999", tm) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.fn()
			}
		})
	}
}

// TestIndexConcurrentReaders is meant for -race: readers share one Index.
func TestIndexConcurrentReaders(t *testing.T) {
	x := testIndex()
	done := make(chan bool)
	for range 4 {
		go func() {
			for i := range 1000 {
				x.HasRelationship("o", "u-1", "t", "c-1", at(float64(i%40)))
				x.ShiftAt("o", "u-1", at(float64(i%70)), time.Minute)
				x.NearestShift("o", "u-1", at(float64(i%70)))
				x.AbsentAt("o", "u-1", at(float64(i)))
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
}

func TestNearestRelationship(t *testing.T) {
	day := func(n int) time.Time { return time.Date(2026, 3, n, 0, 0, 0, 0, time.UTC) }
	x := NewIndex(&Data{Relationships: []Relationship{
		{ActorID: "u-1", SubjectID: "c-1", Relation: "caseload", ValidFrom: day(1), ValidTo: day(5)},
		{Team: "t", SubjectID: "c-1", Relation: "allocation", ValidFrom: day(2), ValidTo: day(8)},
		{Team: "t", SubjectID: "c-1", Relation: "referral", ValidFrom: day(20)},
		{ActorID: "u-1", SubjectID: "c-2", Relation: "caseload", ValidFrom: day(15), ValidTo: day(25)},
		{ActorID: "u-1", SubjectID: "c-2", Relation: "referral", ValidFrom: day(12)},
	}})
	if !x.HasRelationships("o") || NewIndex(&Data{}).HasRelationships("o") {
		t.Fatal("HasRelationships")
	}
	cases := []struct {
		team, subject string
		at            time.Time
		want          string // relation, or "" for none
	}{
		{"t", "c-1", day(10), "allocation"}, // the latest to end, the team's
		{"", "c-1", day(10), "caseload"},    // without the team
		{"t", "c-1", day(8), "allocation"},  // valid_to is exclusive: ended
		{"t", "c-1", day(7), "caseload"},    // the allocation is valid: not looked at
		{"", "c-2", day(10), "referral"},    // none ended: the earliest to start
		{"", "c-3", day(10), ""},            // nothing
		{"t", "c-1", day(-400), "caseload"}, // every row starts later: the earliest
	}
	for i, tc := range cases {
		r, ok := x.NearestRelationship("o", "u-1", tc.team, tc.subject, tc.at)
		got := ""
		if ok {
			got = r.Relation
		}
		if got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, got, tc.want)
		}
	}
	r, _ := x.NearestRelationship("o", "u-1", "t", "c-1", day(10))
	if r.Team != "t" || r.ActorID != "" || !r.ValidFrom.Equal(day(2)) || !r.ValidTo.Equal(day(8)) || r.SubjectID != "c-1" {
		t.Errorf("row %+v", r)
	}
}

// TestRelationshipAt: the relationship in force at t, the worker's own
// before the team's, with its kind; none outside every window; and it
// agrees with HasRelationship everywhere.
func TestRelationshipAt(t *testing.T) {
	x := NewIndex(&Data{Relationships: []Relationship{
		{ActorID: "u-1", SubjectID: "c-1", Relation: "key-worker", ValidFrom: at(10), ValidTo: at(20)},
		{Team: "t", SubjectID: "c-1", Relation: "caseload", ValidFrom: at(0)},
		{Org: "other", Team: "t", SubjectID: "c-2", Relation: "caseload", ValidFrom: at(0)},
	}})
	for _, tc := range []struct {
		org, actor, team, subject string
		t                         time.Time
		want                      string // "actor:relation", "team:relation" or ""
	}{
		{"o", "u-1", "t", "c-1", at(15), "actor:key-worker"},
		{"o", "u-1", "t", "c-1", at(20), "team:caseload"}, // the key-worker row has ended
		{"o", "u-1", "", "c-1", at(20), ""},
		{"o", "u-1", "t", "c-1", at(-1), ""},
		{"o", "u-2", "t", "c-1", at(15), "team:caseload"},
		{"o", "u-1", "t", "c-2", at(15), ""}, // another org's row
		{"other", "u-1", "t", "c-2", at(15), "team:caseload"},
	} {
		r, ok := x.RelationshipAt(tc.org, tc.actor, tc.team, tc.subject, tc.t)
		got := ""
		switch {
		case ok && r.ActorID == tc.actor && r.Team == "":
			got = "actor:" + r.Relation
		case ok && r.Team == tc.team && r.ActorID == "":
			got = "team:" + r.Relation
		case ok:
			got = fmt.Sprintf("%+v", r)
		}
		if got != tc.want {
			t.Errorf("RelationshipAt(%s,%s,%s,%s,%v) = %q, want %q", tc.org, tc.actor, tc.team, tc.subject, tc.t, got, tc.want)
		}
		if has := x.HasRelationship(tc.org, tc.actor, tc.team, tc.subject, tc.t); has != ok {
			t.Errorf("RelationshipAt says %v, HasRelationship %v", ok, has)
		}
	}
}

// TestSubjectRef: display references are an org's own; another org's row
// for the same subject id is never the answer.
func TestSubjectRef(t *testing.T) {
	x := NewIndex(&Data{Subjects: []Subject{{Org: "o", SubjectID: "c-1", DisplayRef: "WC-R14"}, {Org: "p", SubjectID: "c-2", DisplayRef: "P-2"}}})
	for _, tc := range []struct {
		org, subject, want string
		ok                 bool
	}{{"o", "c-1", "WC-R14", true}, {"p", "c-1", "", false}, {"o", "c-2", "", false}, {"p", "c-2", "P-2", true}} {
		if got, ok := x.SubjectRef(tc.org, tc.subject); got != tc.want || ok != tc.ok {
			t.Errorf("SubjectRef(%s, %s) = %q %v, want %q %v", tc.org, tc.subject, got, ok, tc.want, tc.ok)
		}
	}
}
