package kafkaref

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/reference"
)

func TestApplyRows(t *testing.T) {
	const secret = "c-SECRET"
	tests := []struct {
		name      string
		kind      Kind
		key       string
		value     string
		field     string // expected error field; "-" for no error
		wantRows  int
		checkLast func(*testing.T, *tables)
	}{
		{"staff ok", KindStaff, `["o","u-1"]`, `{"actor_id":"u-1","org":"o","role":"nurse","external":"yes","active_from":"2026-01-01T00:00:00Z","unknown":[1]}`, "-", 1,
			func(t *testing.T, ts *tables) {
				if s := ts.staff.rows[0]; !s.External || s.Role != "nurse" {
					t.Errorf("staff = %+v", s)
				}
			}},
		{"staff bool", KindStaff, `["o","u-1"]`, `{"actor_id":"u-1","org":"o","external":true,"active_from":"2026-01-01T00:00:00Z"}`, "-", 1, nil},
		{"staff key mismatch", KindStaff, `["o","u-2"]`, `{"actor_id":"u-1","org":"o","active_from":"2026-01-01T00:00:00Z"}`, "key", 0, nil},
		{"staff bad bool", KindStaff, `["o","u-1"]`, `{"actor_id":"u-1","org":"o","external":"` + secret + `","active_from":"2026-01-01T00:00:00Z"}`, "external", 0, nil},
		{"staff window", KindStaff, `["o","u-1"]`, `{"actor_id":"u-1","org":"o","active_from":"2026-01-02T00:00:00Z","active_to":"2026-01-01T00:00:00Z"}`, "active_to", 0, nil},
		// Tenants (CONTRACT §2): staff and devices need an org, and their key
		// names it, so that two orgs' same id never replace each other.
		{"staff bare id key", KindStaff, "u-1", `{"actor_id":"u-1","org":"o","active_from":"2026-01-01T00:00:00Z"}`, "key", 0, nil},
		{"staff no org", KindStaff, `["","u-1"]`, `{"actor_id":"u-1","active_from":"2026-01-01T00:00:00Z"}`, "org", 0, nil},
		{"device bare id key", KindDevices, "tab-1", `{"device_id":"tab-1","org":"o","kind":"desktop"}`, "key", 0, nil},
		{"relationship of one org", KindRelationships, "k", `{"org":"o","actor_id":"u","subject_id":"c-1","valid_from":"2026-01-01T00:00:00Z"}`, "-", 1,
			func(t *testing.T, ts *tables) {
				if r := ts.relationships.rows[0]; r.Org != "o" {
					t.Errorf("relationship org = %q", r.Org)
				}
			}},
		{"relationship ok", KindRelationships, "k", `{"team":"t","subject_id":"c-1","valid_from":"2026-01-01T00:00:00+01:00","valid_to":null}`, "-", 1, nil},
		{"relationship both owners", KindRelationships, "k", `{"actor_id":"u","team":"t","subject_id":"c-1","valid_from":"2026-01-01T00:00:00Z"}`, "actor_id", 0, nil},
		{"relationship no subject", KindRelationships, "k", `{"actor_id":"u","valid_from":"2026-01-01T00:00:00Z"}`, "subject_id", 0, nil},
		{"relationship wrong type", KindRelationships, "k", `{"actor_id":"u","subject_id":17,"valid_from":"2026-01-01T00:00:00Z"}`, "subject_id", 0, nil},
		{"relationship bad time", KindRelationships, "k", `{"actor_id":"u","subject_id":"` + secret + `","valid_from":"` + secret + `"}`, "valid_from", 0, nil},
		{"shift ok", KindShifts, "k", `{"actor_id":"u","start":"2026-01-01T08:00:00Z","end":"2026-01-01T16:00:00Z"}`, "-", 1, nil},
		{"shift backwards", KindShifts, "k", `{"actor_id":"u","start":"2026-01-01T08:00:00Z","end":"2026-01-01T08:00:00Z"}`, "end", 0, nil},
		{"absence open", KindAbsences, "k", `{"actor_id":"u","start":"2026-01-01T08:00:00Z","kind":"leave"}`, "-", 1, nil},
		{"device ok", KindDevices, `["o","tab-1"]`, `{"device_id":"tab-1","org":"o","kind":"shared-tablet"}`, "-", 1, nil},
		{"device kind", KindDevices, `["o","tab-1"]`, `{"device_id":"tab-1","org":"o","kind":"toaster"}`, "kind", 0, nil},
		{"sharing lists", KindSharingAgreements, "k", `{"partner_org":"p","org":"o","record_types":"care-plan; notes","actions":["view"],"valid_from":"2026-01-01T00:00:00Z"}`, "-", 1,
			func(t *testing.T, ts *tables) {
				a := ts.sharing.rows[0]
				if fmt.Sprint(a.RecordTypes, a.Actions) != "[care-plan notes] [view]" {
					t.Errorf("lists = %v %v", a.RecordTypes, a.Actions)
				}
			}},
		{"sharing bad list", KindSharingAgreements, "k", `{"partner_org":"p","org":"o","actions":{"a":1},"valid_from":"2026-01-01T00:00:00Z"}`, "actions", 0, nil},
		{"not json", KindShifts, "k", `{"actor_id":"` + secret, "", 0, nil},
		{"not an object", KindShifts, "k", `["` + secret + `"]`, "", 0, nil},
		{"duplicate member", KindShifts, "k", `{"actor_id":"u","actor_id":"v"}`, "", 0, nil},
		// Hidden characters and bounds, as in the CSV files (issue 16, item 10).
		{"staff bidi id", KindStaff, "u-\u202e1", `{"actor_id":"u-\u202e1","active_from":"2026-01-01T00:00:00Z"}`, "actor_id", 0, nil},
		{"relationship bidi subject", KindRelationships, "k", `{"actor_id":"u","subject_id":"c-\u20681","valid_from":"2026-01-01T00:00:00Z"}`, "subject_id", 0, nil},
		{"device zero-width location", KindDevices, `["o","tab-1"]`, `{"device_id":"tab-1","org":"o","kind":"desktop","location":"ward\u200b2"}`, "location", 0, nil},
		{"absence 30 KB kind", KindAbsences, "k", `{"actor_id":"u","start":"2026-01-01T08:00:00Z","kind":"` + strings.Repeat("k", 30<<10) + `"}`, "kind", 0, nil},
		{"sharing bidi list entry", KindSharingAgreements, "k", `{"partner_org":"p","org":"o","record_types":["care\u202eplan"],"valid_from":"2026-01-01T00:00:00Z"}`, "record_types", 0, nil},
		{"subject ok", KindSubjects, `["o","c-1"]`, `{"subject_id":"c-1","org":"o","display_ref":"WC-R14"}`, "-", 1,
			func(t *testing.T, ts *tables) {
				if v := ts.subjects.rows[0]; v.DisplayRef != "WC-R14" || v.Org != "o" {
					t.Errorf("subject = %+v", v)
				}
			}},
		{"subject bare id key", KindSubjects, "c-1", `{"subject_id":"c-1","org":"o","display_ref":"WC-R14"}`, "key", 0, nil},
		{"subject no org", KindSubjects, `["","c-1"]`, `{"subject_id":"c-1","display_ref":"WC-R14"}`, "org", 0, nil},
		{"subject no display_ref", KindSubjects, `["o","c-1"]`, `{"subject_id":"c-1","org":"o","display_ref":" "}`, "display_ref", 0, nil},
		{"subject hidden character", KindSubjects, `["o","c-1"]`, `{"subject_id":"c-1","org":"o","display_ref":"` + secret + `\u202e"}`, "display_ref", 0, nil},
		{"no key", KindShifts, "", `{"actor_id":"u","start":"2026-01-01T08:00:00Z","end":"2026-01-01T16:00:00Z"}`, "key", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTables()
			_, err := ts.apply(newDecoder(), tc.kind, []byte(tc.key), []byte(tc.value))
			if tc.field == "-" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
			} else {
				var fe *fieldError
				if !errors.As(err, &fe) {
					t.Fatalf("error = %v, want a field error on %q", err, tc.field)
				}
				if fe.field != tc.field {
					t.Errorf("field = %q (%v), want %q", fe.field, err, tc.field)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("error quotes the value: %v", err)
				}
			}
			if n := ts.len(tc.kind); n != tc.wantRows {
				t.Errorf("rows = %d, want %d", n, tc.wantRows)
			}
			if tc.checkLast != nil {
				tc.checkLast(t, ts)
			}
		})
	}
}

// An invalid value replaces its key's row by nothing, like a tombstone.
func TestInvalidReplacesRow(t *testing.T) {
	ts, d := newTables(), newDecoder()
	ok := `{"actor_id":"u","start":"2026-01-01T08:00:00Z","end":"2026-01-01T16:00:00Z"}`
	if _, err := ts.apply(d, KindShifts, []byte("k"), []byte(ok)); err != nil {
		t.Fatal(err)
	}
	changed, err := ts.apply(d, KindShifts, []byte("k"), []byte(`{"actor_id":"u"}`))
	if err == nil || !changed || ts.shifts.len() != 0 {
		t.Errorf("changed=%v err=%v rows=%d: want the row removed with an error", changed, err, ts.shifts.len())
	}
}

// A published snapshot never changes, whatever the table does next.
func TestSnapshotCopyOnWrite(t *testing.T) {
	tb := newTable[int]()
	key := func(i int) keyHash { return hashKey([]byte(fmt.Sprint(i))) }
	for i := range 10 {
		tb.put(key(i), i)
	}
	snap := tb.snapshot()
	want := fmt.Sprint(snap)
	tb.put(key(3), 33)  // overwrite
	tb.del(key(0))      // swap-remove into the shared prefix
	tb.put(key(10), 10) // append
	if got := fmt.Sprint(snap); got != want {
		t.Errorf("snapshot changed: %s, want %s", got, want)
	}
	got := map[int]bool{}
	for _, v := range tb.rows {
		got[v] = true
	}
	if len(tb.rows) != 10 || got[0] || got[3] || !got[33] || !got[10] {
		t.Errorf("table rows = %v", tb.rows)
	}
	for i, k := range tb.keys {
		if tb.slot[k] != int32(i) {
			t.Errorf("slot of row %d = %d", i, tb.slot[k])
		}
	}
}

func TestOverlay(t *testing.T) {
	base := &reference.Data{Staff: []reference.Staff{{ActorID: "csv"}}, Devices: []reference.Device{{DeviceID: "csv"}}}
	top := &reference.Data{Staff: nil, Devices: []reference.Device{{DeviceID: "kafka"}}, Shifts: []reference.Shift{{ActorID: "kafka"}}}
	got := Overlay(base, top, []Kind{KindStaff, KindDevices})
	if len(got.Staff) != 0 || got.Devices[0].DeviceID != "kafka" || len(got.Shifts) != 0 || base.Devices[0].DeviceID != "csv" {
		t.Errorf("Overlay = %+v", got)
	}
}

func FuzzApply(f *testing.F) {
	f.Add("relationships", "k", `{"team":"t","subject_id":"c-1","valid_from":"2026-01-01T00:00:00Z"}`)
	f.Add("sharing-agreements", "k", `{"partner_org":"p","org":"o","record_types":["a"],"actions":"*","valid_from":"2026-01-01T00:00:00Z"}`)
	f.Add("staff", "u", `{"actor_id":"u","external":"1","active_from":"2026-01-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, kind, key, value string) {
		ts := newTables()
		_, err := ts.apply(newDecoder(), Kind(kind), []byte(key), []byte(value))
		if err != nil && ts.len(Kind(kind)) != 0 {
			t.Errorf("invalid row kept: %v", err)
		}
	})
}

// BenchmarkCountyRelationships measures the heap that two million
// relationship rows (a county) cost the loader, and a snapshot.
func BenchmarkCountyRelationships(b *testing.B) {
	const n = 2_000_000
	values := make([][]byte, 0, 1000)
	for i := range 1000 {
		values = append(values, fmt.Appendf(nil, `{"actor_id":"u-%05d","subject_id":"c-%06d","relation":"allocation","valid_from":"2025-01-01T00:00:00Z","valid_to":"2027-01-01T00:00:00Z"}`, i%10000, i))
	}
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		ts, d := newTables(), newDecoder()
		for i := range n {
			v := values[i%len(values)]
			v = fmt.Appendf(v[:0:0], `{"actor_id":"u-%05d","subject_id":"c-%06d","relation":"allocation","valid_from":"2025-01-01T00:00:00Z"}`, i%10000, i%200000)
			key := fmt.Appendf(nil, "%d", i)
			if _, err := ts.apply(d, KindRelationships, key, v); err != nil {
				b.Fatal(err)
			}
		}
		took := time.Since(start)
		snap := ts.snapshot()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(took.Seconds(), "load-s")
		runtime.KeepAlive(snap)
		runtime.KeepAlive(ts)
	}
}
