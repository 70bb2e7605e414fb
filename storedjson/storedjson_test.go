package storedjson

import (
	"testing"
	"time"

	jsonv1 "github.com/goccy/go-json"
)

// hazards has a field for each way v2's defaults write other bytes than
// v1's: omitempty numbers and bools, nil slices and maps, map key order,
// HTML and JS characters, invalid UTF-8, times, bytes and pointers.
type hazards struct {
	N     int               `json:"n,omitempty"`
	F     float64           `json:"f,omitempty"`
	B     bool              `json:"b,omitempty"`
	U     uint32            `json:"u,omitempty"`
	S     string            `json:"s,omitempty"`
	P     *int              `json:"p,omitempty"`
	L     []string          `json:"l"`
	LE    []string          `json:"le,omitempty"`
	M     map[string]int    `json:"m"`
	Bytes []byte            `json:"bytes"`
	T     time.Time         `json:"t"`
	TZ    time.Time         `json:"tz,omitzero"`
	Any   any               `json:"any"`
	Inner struct{ X int }   `json:"inner"`
	Keep  int               `json:"keep"`
	Deep  map[string][]bool `json:"deep,omitempty"`
}

// TestSameBytesAsV1 encodes values with goccy/go-json's v1 API and with
// Marshal: every byte must match, so that what v1 wrote reads back and
// compares the same.
func TestSameBytesAsV1(t *testing.T) {
	seven := 7
	for _, c := range []struct {
		name string
		v    hazards
	}{
		{"zero", hazards{}},
		{"full", hazards{N: -3, F: 0.1, B: true, U: 4, S: "x", P: &seven, L: []string{}, LE: []string{"a"},
			M: map[string]int{"z": 1, "b": 2, "y": 3, "a": 4, "q": 5, "c": 6, "x": 7, "d": 8}, Bytes: []byte{0, 1, 254, 255},
			T: time.Date(2026, 3, 2, 8, 0, 0, 123456789, time.UTC), TZ: time.Date(2026, 3, 2, 8, 0, 0, 0, time.FixedZone("", 5400)),
			Any: map[string]any{"k": []any{1.5, "s", nil}}, Keep: 0, Deep: map[string][]bool{"b": nil, "a": {true}}}},
		{"escapes", hazards{S: "<script>&amp;'\"\u2028\u2029\x01\x7f é 😀", L: []string{"\\", "\t\n"},
			M: map[string]int{"<k>": 1, "\u2028": 2}}},
	} {
		want, err := jsonv1.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, want)
		}
		var back hazards
		if err := Unmarshal(want, &back); err != nil {
			t.Errorf("%s: reading v1's bytes back: %v", c.name, err)
		}
		if again, _ := Marshal(back); string(again) != string(want) {
			t.Errorf("%s: read back and written again:\ngot  %s\nwant %s", c.name, again, want)
		}
	}
}

// TestInvalidUTF8: the one difference left. v1 wrote a byte that is not
// UTF-8 as the escape \ufffd, v2 writes U+FFFD itself: the same string
// once read. None reaches the codec in practice: events and reference rows
// are refused unless they are UTF-8 (event, reference/kafkaref), and the
// API's encoding/json replaces such bytes on reading.
func TestInvalidUTF8(t *testing.T) {
	v := []string{"ok\xc3", "\xff\xfe"}
	v1, err := jsonv1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["ok\ufffd","\ufffd\ufffd"]`; string(v1) != want {
		t.Errorf("v1 wrote %s, want %s", v1, want)
	}
	if want := "[\"ok\uFFFD\",\"\uFFFD\uFFFD\"]"; string(v2) != want {
		t.Errorf("v2 wrote %s, want %s", v2, want)
	}
	var a, b []string
	if err := Unmarshal(v1, &a); err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(v2, &b); err != nil {
		t.Fatal(err)
	}
	if a[0] != b[0] || a[1] != b[1] || a[0] != "ok\uFFFD" {
		t.Errorf("read back: %q from v1, %q from v2", a, b)
	}
}
