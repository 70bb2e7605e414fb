package event

import (
	"slices"
	"testing"
)

// TestDiff decodes variants of the contract example and compares each with
// the example: a byte-different encoding of the same event is no
// difference, a changed field is named (and only named: never its value).
func TestDiff(t *testing.T) {
	tests := []struct {
		name string
		edit func(m map[string]any)
		want []string
	}{
		{"same bytes", func(map[string]any) {}, nil},
		{"other offset, same instant", set("time", "2026-03-02T22:14:05+01:00"), nil},
		{"fractional zero seconds", set("time", "2026-03-02T21:14:05.000Z"), nil},
		{"outcome absent is success", del("outcome"), nil},
		{"actor.org absent is the org", del("actor.org"), nil},
		{"sensitivity order and repeats", set("subject.sensitivity", []any{"safeguarding", "safeguarding"}), nil},
		{"ipv4-mapped ipv6", set("session.ip", "::ffff:10.2.0.14"), nil},
		{"unknown member", set("extra", "ignored"), nil},
		{"another actor, action and time",
			all(set("actor.id", "u-99"), set("action", "export"), set("time", "2026-03-02T23:00:00Z")),
			[]string{"time", "action", "actor.id"}},
		{"actor details", all(set("actor.role", "manager"), set("actor.team", "x"), set("actor.org", "partner")),
			[]string{"actor.role", "actor.team", "actor.org"}},
		{"subject and record", all(set("subject.id", "c-1"), set("subject.sensitivity", []any{"adoption"}), set("record.type", "note"), set("record.id", "n-1")),
			[]string{"subject.id", "subject.sensitivity", "record.type", "record.id"}},
		{"sensitivity dropped", del("subject.sensitivity"), []string{"subject.sensitivity"}},
		{"session", all(set("session.id", "s-1"), set("session.device", "d-1"), set("session.ip", "10.2.0.15"), set("session.mfa", false)),
			[]string{"session.id", "session.device", "session.ip", "session.mfa"}},
		{"mfa not reported", del("session.mfa"), []string{"session.mfa"}},
		{"outcome", set("outcome", "failure"), []string{"outcome"}},
	}
	d := NewDecoder(DecoderOptions{})
	var base Event
	if err := d.Decode([]byte(contractExample), &base); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			if err := d.Decode(variant(t, tt.edit), &ev); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := Diff(&base, &ev); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
			if got := Diff(&ev, &base); !slices.Equal(got, tt.want) {
				t.Errorf("Diff reversed = %q, want %q", got, tt.want)
			}
		})
	}
	// Keys differ too: every field is compared, the key's included.
	other := contractEvent()
	other.ID, other.Org, other.System = "x", "y", "z"
	if got, want := Diff(&base, &other), []string{"id", "org", "system"}; !slices.Equal(got, want) {
		t.Errorf("Diff of keys = %q, want %q", got, want)
	}
}
