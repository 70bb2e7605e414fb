package event

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeRefusesHiddenCharactersAndOversizeValues: identifiers holding a
// bidirectional control or another invisible character, and sensitivity
// labels over their bound, are dead-lettered as invalid_field with a detail
// naming the field (issue 16, item 10).
func TestDecodeRefusesHiddenCharactersAndOversizeValues(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(map[string]any)
		detail string // the error's detail must contain this
	}{
		{"right-to-left override in actor.id", set("actor.id", "u-\u202e71"), "actor.id contains the hidden character U+202E"},
		{"right-to-left override in subject.id", set("subject.id", "secret-c-\u202e24"), "subject.id contains the hidden character U+202E"},
		{"arabic letter mark in id", set("id", "lmc-\u061c1"), "id contains the hidden character U+061C"},
		{"first strong isolate in session.device", set("session.device", "tab-\u206803"), "session.device contains the hidden character U+2068"},
		{"left-to-right mark in actor.team", set("actor.team", "webster\u200ecourt"), "actor.team contains the hidden character U+200E"},
		{"zero-width space in org", set("org", "st-martins\u200b"), "org contains the hidden character U+200B"},
		{"zero-width joiner in record.id", set("record.id", "cp\u200d981"), "record.id contains the hidden character U+200D"},
		{"C1 control in actor.org", set("actor.org", "st\u0085martins"), "actor.org contains the hidden character U+0085"},
		{"byte order mark in system", set("system", "\ufefflogmycare"), "system contains the hidden character U+FEFF"},
		{"line separator in actor.role", set("actor.role", "support\u2028worker"), "actor.role contains the hidden character U+2028"},
		{"pop directional formatting in a sensitivity label", set("subject.sensitivity", []any{"safe\u202cguarding"}), "subject.sensitivity contains the hidden character U+202C"},
		{"a 30 KB sensitivity label", set("subject.sensitivity", []any{strings.Repeat("s", 30<<10)}), "subject.sensitivity has an entry longer than 64 bytes"},
		{"a sensitivity label one byte over", set("subject.sensitivity", []any{strings.Repeat("s", MaxSensitivityEntryLen+1)}), "subject.sensitivity has an entry longer than 64 bytes"},
	}
	d := NewDecoder(DecoderOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := d.Decode(variant(t, tc.edit), &ev)
			if got := reasonOf(t, err); got != ReasonInvalidField {
				t.Fatalf("reason = %q (%v), want %q", got, err, ReasonInvalidField)
			}
			var e *Error
			if errors.As(err, &e); !strings.Contains(e.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", e.Detail, tc.detail)
			}
		})
	}
	// At the bound, and letters of any script, are accepted.
	ok := all(set("subject.sensitivity", []any{strings.Repeat("s", MaxSensitivityEntryLen)}),
		set("actor.team", "Zoë's team مريم"))
	var ev Event
	if err := d.Decode(variant(t, ok), &ev); err != nil {
		t.Errorf("a label of %d bytes and non-Latin letters: %v", MaxSensitivityEntryLen, err)
	}
}
