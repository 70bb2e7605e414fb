package rules

import (
	"testing"
	"time"
)

// TestCheckpointJSONBytes pins the bytes of the checkpoints the Engine
// writes (a Keyed entry, an org's clock, a chunk of waiting events) as
// goccy/go-json's v1 API wrote them before the move to encoding/json
// (issue 15): state written by either restores the same.
func TestCheckpointJSONBytes(t *testing.T) {
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	keyed, err := benchKeyed(at).drain(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	clock, err := (&orgClock{wm: at, frontier: at.Add(-time.Minute), aheadN: 2, aheadMin: at.Add(time.Hour)}).encode()
	if err != nil {
		t.Fatal(err)
	}
	oc := &orgClock{wm: at, frontier: at.Add(-time.Hour)}
	for _, ev := range benchWaiting(at, 1) {
		oc.push(ev)
	}
	waiting, err := oc.checkpoint("st-martins", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"keyed", string(keyed[0].Value), `{"at":"2026-03-02T08:00:00Z","v":{"l":1772438400000000000,"w":"AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZWxzeoGIj5adpKuyucDHztXc4+rx+P8GDRQbIikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt9PsCCRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+Lp8Pf+BQwTGiEoLzY9REtSWWBnbnV8g4qRmJ+mrbS7wsnQ197l7PP6AQgPFh0kKzI5","d":20514,"p":14,"t":"webster-court","o":9,"b":11}}`},
		{"clock", string(clock), `{"watermark":"2026-03-02T08:00:00Z","frontier":"2026-03-02T07:59:00Z","ahead":2,"ahead_min":"2026-03-02T09:00:00Z"}`},
		{"waiting", string(waiting[0].Value), `[{"id":"lmc-000000000","time":"2026-03-02T08:00:00Z","org":"st-martins","system":"logmycare","action":"view","actor":{"id":"u-0","role":"support-worker","team":"webster-court","org":"st-martins"},"subject":{"id":"c-0000","sensitivity":["safeguarding"]},"record":{"type":"care-plan","id":"cp-0"},"session":{"id":"s-0","device":"tab-01","ip":"10.2.0.14","mfa":true},"outcome":"success"}]`},
	} {
		if c.got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, c.got, c.want)
		}
	}
}

// zeroState has the field kinds the checks' state types tag omitempty:
// numbers, bools, bytes, a pointer, and a slice and a map without it.
type zeroState struct {
	N    int32          `json:"n,omitempty"`
	B    bool           `json:"b,omitempty"`
	W    []byte         `json:"w,omitempty"`
	P    *int64         `json:"p,omitempty"`
	S    []string       `json:"s"`
	M    map[string]int `json:"m"`
	Kept int32          `json:"k"`
}

// TestZeroFieldBytes pins what the v1 API wrote for zero values, where the
// v2 API's defaults differ (omitempty keeps a 0 or a false; a nil slice or
// map is [] or {}; map keys unsorted): a Keyed entry with every field
// zero, one with a map of several keys, and a clock that is not ahead.
func TestZeroFieldBytes(t *testing.T) {
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		v    zeroState
		want string
	}{
		{"zero", zeroState{}, `{"at":"2026-03-02T08:00:00Z","v":{"s":null,"m":null,"k":0}}`},
		{"map", zeroState{S: []string{}, M: map[string]int{"z": 1, "a": 2, "m": 3, "q": 4, "b": 5, "y": 6, "c": 7, "x": 8, "d": 9}},
			`{"at":"2026-03-02T08:00:00Z","v":{"s":[],"m":{"a":2,"b":5,"c":7,"d":9,"m":3,"q":4,"x":8,"y":6,"z":1},"k":0}}`},
	} {
		k := NewKeyed[zeroState]("zero", time.Hour)
		k.bind("rules/test/")
		k.table("o")["k"] = &keyedEntry[zeroState]{at: at, val: c.v, key: "k", dirty: true}
		k.dirty = append(k.dirty, orgKey{"o", "k"})
		out, err := k.drain(nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(out[0].Value); got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, c.want)
		}
	}
	clock, err := (&orgClock{wm: at}).encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"watermark":"2026-03-02T08:00:00Z"}`; string(clock) != want {
		t.Errorf("clock:\ngot  %s\nwant %s", clock, want)
	}
}
