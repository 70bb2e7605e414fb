package event

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// contractExample is the event of CONTRACT §1, with "secret-" marking the
// values that are personal data: no error detail may ever contain it.
const contractExample = `{
  "id": "lmc-000123",
  "time": "2026-03-02T21:14:05Z",
  "org": "st-martins",
  "system": "logmycare",
  "action": "view",
  "actor":   {"id": "u-17", "role": "support-worker", "team": "webster-court", "org": "st-martins"},
  "subject": {"id": "secret-c-0042", "sensitivity": ["safeguarding"]},
  "record":  {"type": "care-plan", "id": "secret-cp-981"},
  "session": {"id": "s-5521", "device": "tab-03", "ip": "10.2.0.14", "mfa": true},
  "outcome": "success"
}`

func contractEvent() Event {
	mfa := true
	return Event{
		ID:      "lmc-000123",
		Time:    time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC),
		Org:     "st-martins",
		System:  "logmycare",
		Action:  ActionView,
		Actor:   Actor{ID: "u-17", Role: "support-worker", Team: "webster-court", Org: "st-martins"},
		Subject: Subject{ID: "secret-c-0042", Sensitivity: []string{"safeguarding"}},
		Record:  Record{Type: "care-plan", ID: "secret-cp-981"},
		Session: Session{ID: "s-5521", Device: "tab-03", IP: "10.2.0.14", MFA: &mfa},
		Outcome: OutcomeSuccess,
	}
}

// variant returns the contract example changed by edit, which works on the
// generic JSON tree ("actor.id" paths).
func variant(t testing.TB, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := stdjson.Unmarshal([]byte(contractExample), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := stdjson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// set sets path ("actor.id") to v; del deletes it.
func set(path string, v any) func(map[string]any) {
	return func(m map[string]any) {
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
}

func del(path string) func(map[string]any) {
	return func(m map[string]any) {
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		delete(m, parts[len(parts)-1])
	}
}

func all(edits ...func(map[string]any)) func(map[string]any) {
	return func(m map[string]any) {
		for _, e := range edits {
			e(m)
		}
	}
}

// reasonOf returns the Reason of err ("" for nil) and fails on any error
// that is not an *Error.
func reasonOf(t testing.TB, err error) Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *event.Error", err, err)
	}
	if e.Detail == "" {
		t.Errorf("error %v has no detail", err)
	}
	if strings.Contains(strings.ToLower(e.Detail), "secret") {
		t.Errorf("detail %q echoes a value from the message", e.Detail)
	}
	return e.Reason
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
		ok   bool
	}{
		{"", FormatAuto, true},
		{"auto", FormatAuto, true},
		{"native", FormatNative, true},
		{"fhir", FormatFHIR, true},
		{"FHIR", "", false},
		{"json", "", false},
	} {
		got, err := ParseFormat(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestNewDecoderPanicsOnBadFormat(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewDecoder accepted an unknown format")
		}
	}()
	NewDecoder(DecoderOptions{Format: "xml"})
}

func TestDecodeContractExample(t *testing.T) {
	for _, f := range []Format{FormatAuto, FormatNative} {
		var ev Event
		if err := NewDecoder(DecoderOptions{Format: f}).Decode([]byte(contractExample), &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := contractEvent(); !reflect.DeepEqual(ev, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", f, ev, want)
		}
	}
}

// TestDecodeNativeRules covers every rule of CONTRACT §1 and the decoder's
// handling of hostile input.
func TestDecodeNativeRules(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	longID := strings.Repeat("x", MaxIDLen+1)
	manyLabels := make([]any, MaxSensitivityLen+1)
	for i := range manyLabels {
		manyLabels[i] = "l"
	}
	tests := []struct {
		name  string
		edit  func(map[string]any) // applied to the contract example
		raw   string               // used instead when set
		want  Reason
		check func(t *testing.T, ev *Event)
	}{
		// Required fields: absent, empty and null.
		{name: "id absent", edit: del("id"), want: ReasonMissingField},
		{name: "id empty", edit: set("id", ""), want: ReasonMissingField},
		{name: "id null", edit: set("id", nil), want: ReasonMissingField},
		{name: "time absent", edit: del("time"), want: ReasonMissingField},
		{name: "time null", edit: set("time", nil), want: ReasonMissingField},
		{name: "org absent", edit: del("org"), want: ReasonMissingField},
		{name: "org empty", edit: set("org", ""), want: ReasonMissingField},
		{name: "system absent", edit: del("system"), want: ReasonMissingField},
		{name: "action absent", edit: del("action"), want: ReasonMissingField},
		{name: "action empty", edit: set("action", ""), want: ReasonMissingField},
		{name: "actor absent", edit: del("actor"), want: ReasonMissingField},
		{name: "actor.id absent", edit: del("actor.id"), want: ReasonMissingField},
		{name: "actor.id empty", edit: set("actor.id", ""), want: ReasonMissingField},
		{name: "subject absent on view", edit: del("subject"), want: ReasonMissingField},
		{name: "subject.id empty on view", edit: set("subject.id", ""), want: ReasonMissingField},

		// Outcome.
		{name: "outcome absent is success", edit: del("outcome"), check: func(t *testing.T, ev *Event) {
			if ev.Outcome != OutcomeSuccess {
				t.Errorf("outcome = %q", ev.Outcome)
			}
		}},
		{name: "outcome failure", edit: set("outcome", "failure"), check: func(t *testing.T, ev *Event) {
			if ev.Outcome != OutcomeFailure {
				t.Errorf("outcome = %q", ev.Outcome)
			}
		}},
		{name: "outcome other", edit: set("outcome", "failed"), want: ReasonInvalidField},
		{name: "outcome capitalised", edit: set("outcome", "Success"), want: ReasonInvalidField},

		// Actions.
		{name: "action unknown", edit: set("action", "read"), want: ReasonUnknownAction},
		{name: "action upper case", edit: set("action", "VIEW"), want: ReasonUnknownAction},

		// Optional parts.
		{name: "minimal session event", raw: `{"id":"e1","time":"2026-03-02T07:00:00Z","org":"o","system":"s","action":"login","actor":{"id":"u"}}`,
			check: func(t *testing.T, ev *Event) {
				want := Event{ID: "e1", Time: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC), Org: "o", System: "s",
					Action: ActionLogin, Actor: Actor{ID: "u"}, Outcome: OutcomeSuccess}
				if !reflect.DeepEqual(*ev, want) {
					t.Errorf("got %+v", *ev)
				}
			}},
		{name: "mfa false", edit: set("session.mfa", false), check: func(t *testing.T, ev *Event) {
			if ev.Session.MFA == nil || *ev.Session.MFA {
				t.Errorf("mfa = %v", ev.Session.MFA)
			}
		}},
		{name: "mfa absent is nil", edit: del("session.mfa"), check: func(t *testing.T, ev *Event) {
			if ev.Session.MFA != nil {
				t.Errorf("mfa = %v", *ev.Session.MFA)
			}
		}},
		{name: "empty sensitivity is nil", edit: set("subject.sensitivity", []any{}), check: func(t *testing.T, ev *Event) {
			if ev.Subject.Sensitivity != nil {
				t.Errorf("sensitivity = %#v", ev.Subject.Sensitivity)
			}
		}},
		{name: "partner-agency actor org", edit: set("actor.org", "wiltshire-police"), check: func(t *testing.T, ev *Event) {
			if ev.Actor.Org != "wiltshire-police" || ev.Org != "st-martins" {
				t.Errorf("actor.org = %q, org = %q", ev.Actor.Org, ev.Org)
			}
		}},

		// Unknown fields are ignored, never an error.
		{name: "unknown fields ignored", edit: all(
			set("schema_version", 3), set("extra", map[string]any{"a": []any{1, "x", nil, true}}),
			set("actor.email", "secret@example.org"), set("session.user_agent", "Mozilla"),
			set("subject.dob", nil), set("record.title", map[string]any{}),
		), check: func(t *testing.T, ev *Event) {
			if want := contractEvent(); !reflect.DeepEqual(*ev, want) {
				t.Errorf("got %+v", *ev)
			}
		}},
		{name: "member names are case-sensitive", edit: all(del("id"), set("ID", "lmc-1")), want: ReasonMissingField},

		// Time zones and offsets: the instant is kept, in UTC.
		{name: "time with offset", edit: set("time", "2026-07-01T09:30:00+01:00"), check: wantTime("2026-07-01T08:30:00Z")},
		{name: "time with negative offset", edit: set("time", "2026-03-02T16:14:05-05:00"), check: wantTime("2026-03-02T21:14:05Z")},
		{name: "time with minus zero", edit: set("time", "2026-03-02T21:14:05-00:00"), check: wantTime("2026-03-02T21:14:05Z")},
		{name: "time with half-hour offset", edit: set("time", "2026-03-03T02:44:05.5+05:30"), check: wantTime("2026-03-02T21:14:05.5Z")},
		{name: "time with nanoseconds", edit: set("time", "2026-03-02T21:14:05.123456789Z"), check: wantTime("2026-03-02T21:14:05.123456789Z")},
		{name: "time across the DST change", edit: set("time", "2026-03-29T01:30:00+01:00"), check: wantTime("2026-03-29T00:30:00Z")},
		{name: "time without zone", edit: set("time", "2026-03-02T21:14:05"), want: ReasonInvalidField},
		{name: "time date only", edit: set("time", "2026-03-02"), want: ReasonInvalidField},
		{name: "time with a space", edit: set("time", "2026-03-02 21:14:05Z"), want: ReasonInvalidField},
		{name: "time zone name", edit: set("time", "2026-03-02T21:14:05 GMT"), want: ReasonInvalidField},
		{name: "time offset out of range", edit: set("time", "2026-03-02T21:14:05+24:00"), want: ReasonInvalidField},
		{name: "time month 13", edit: set("time", "2026-13-02T21:14:05Z"), want: ReasonInvalidField},
		{name: "time before year 0 in UTC", edit: set("time", "0000-01-01T00:30:00+01:00"), want: ReasonInvalidField},
		{name: "time after year 9999 in UTC", edit: set("time", "9999-12-31T23:30:00-01:00"), want: ReasonInvalidField},
		{name: "time in year 0", edit: set("time", "0000-01-01T00:30:00Z"), check: wantTime("0000-01-01T00:30:00Z")},
		{name: "time empty", edit: set("time", ""), want: ReasonInvalidField},
		{name: "time as number", edit: set("time", 1772486045), want: ReasonMalformed},
		{name: "time year zero instant", edit: set("time", "0001-01-01T00:00:00Z"), want: ReasonMissingField},

		// Wrong JSON types.
		{name: "id as number", edit: set("id", 123), want: ReasonMalformed},
		{name: "actor as string", edit: set("actor", "u-17"), want: ReasonMalformed},
		{name: "subject.id as array", edit: set("subject.id", []any{"secret"}), want: ReasonMalformed},
		{name: "sensitivity as string", edit: set("subject.sensitivity", "secret"), want: ReasonMalformed},
		{name: "mfa as string", edit: set("session.mfa", "true"), want: ReasonMalformed},
		{name: "outcome as bool", edit: set("outcome", true), want: ReasonMalformed},

		// Limits of event.go.
		{name: "id too long", edit: set("id", longID), want: ReasonInvalidField},
		{name: "subject.id too long", edit: set("subject.id", "secret"+longID), want: ReasonInvalidField},
		{name: "too many sensitivity labels", edit: set("subject.sensitivity", manyLabels), want: ReasonInvalidField},

		// Not an object, truncated, trailing data.
		{name: "empty", raw: ``, want: ReasonMalformed},
		{name: "white space", raw: " \n\t", want: ReasonMalformed},
		{name: "null", raw: `null`, want: ReasonMalformed},
		{name: "array", raw: `[` + contractExample + `]`, want: ReasonMalformed},
		{name: "string", raw: `"secret"`, want: ReasonMalformed},
		{name: "not JSON", raw: `id=lmc-1 subject=secret`, want: ReasonMalformed},
		{name: "truncated", raw: contractExample[:len(contractExample)/2], want: ReasonMalformed},
		{name: "unclosed", raw: contractExample[:len(contractExample)-1], want: ReasonMalformed},
		{name: "trailing garbage", raw: contractExample + ` x`, want: ReasonMalformed},
		{name: "two objects", raw: contractExample + contractExample, want: ReasonMalformed},
		{name: "trailing comma", raw: strings.Replace(contractExample, `"success"`, `"success",`, 1), want: ReasonMalformed},
		{name: "single quotes", raw: `{'id':'x'}`, want: ReasonMalformed},
		{name: "trailing white space", raw: contractExample + "\r\n \t", check: func(t *testing.T, ev *Event) {}},
		{name: "leading white space", raw: "\n " + contractExample},
		{name: "byte order mark", raw: "\xef\xbb\xbf" + contractExample, want: ReasonMalformed},

		// Hostile input.
		{name: "deep nesting in an unknown member", raw: `{"x":` + deep(20000) + `}`, want: ReasonMalformed},
		{name: "moderate nesting in an unknown member", raw: strings.Replace(contractExample, `"id": "lmc-000123"`, `"x":`+deep(1000)+`, "id": "lmc-000123"`, 1)},
		{name: "deep objects", raw: strings.Repeat(`{"":`, 10500) + "1" + strings.Repeat("}", 10500), want: ReasonMalformed},
		{name: "huge number in an unknown member", raw: strings.Replace(contractExample, `"id"`, `"n": 1e999999999, "m": -`+strings.Repeat("9", 5000)+`, "id"`, 1)},
		{name: "huge number as mfa", edit: set("session.mfa", stdjson.Number("1e999999999")), want: ReasonMalformed},
		{name: "huge number as id", edit: set("id", stdjson.Number(strings.Repeat("9", 400))), want: ReasonMalformed},
		{name: "invalid UTF-8 in a value", raw: strings.Replace(contractExample, `secret-c-0042`, "secret-c-\xff\xfe", 1), want: ReasonMalformed},
		{name: "invalid UTF-8 in an unknown member", raw: strings.Replace(contractExample, `"id"`, "\"note\": \"\xc3\x28\", \"id\"", 1), want: ReasonMalformed},
		{name: "overlong UTF-8", raw: strings.Replace(contractExample, `u-17`, "u-\xc0\xaf", 1), want: ReasonMalformed},
		{name: "lone UTF-16 surrogate escape", raw: strings.Replace(contractExample, `u-17`, `u-\ud800`, 1), want: ReasonMalformed},
		{name: "UTF-16 surrogate pair escape", raw: strings.Replace(contractExample, `u-17`, `u-\ud83d\ude42`, 1), check: func(t *testing.T, ev *Event) {
			if ev.Actor.ID != "u-🙂" || !utf8.ValidString(ev.Actor.ID) {
				t.Errorf("actor.id = %q", ev.Actor.ID)
			}
		}},
		{name: "raw NUL byte in a string", raw: strings.Replace(contractExample, `u-17`, "u-\x0017", 1), want: ReasonMalformed},
		{name: "NUL byte between tokens", raw: strings.Replace(contractExample, `"id"`, "\x00\"id\"", 1), want: ReasonMalformed},
		{name: "escaped NUL in an id", edit: set("actor.id", "u-\x0017"), want: ReasonInvalidField},
		{name: "escaped newline in an id", edit: set("subject.id", "secret\nc-1"), want: ReasonInvalidField},
		{name: "escaped DEL in a label", edit: set("subject.sensitivity", []any{"a\x7f"}), want: ReasonInvalidField},
		{name: "unicode in ids is fine", edit: set("actor.team", "équipe-ß-团队"), check: func(t *testing.T, ev *Event) {
			if ev.Actor.Team != "équipe-ß-团队" {
				t.Errorf("team = %q", ev.Actor.Team)
			}
		}},
		{name: "duplicate member", raw: strings.Replace(contractExample, `"id": "lmc-000123"`, `"id": "lmc-000123", "id": "lmc-000124"`, 1), want: ReasonMalformed},
		{name: "duplicate nested member", raw: strings.Replace(contractExample, `"id": "u-17"`, `"id": "u-17", "id": "u-99"`, 1), want: ReasonMalformed},
		{name: "duplicate unknown member", raw: strings.Replace(contractExample, `"id"`, `"x": 1, "x": 2, "id"`, 1), want: ReasonMalformed},
	}
	d := NewDecoder(DecoderOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in []byte
			switch {
			case tc.edit != nil:
				in = variant(t, tc.edit)
			default:
				in = []byte(tc.raw)
			}
			var ev Event
			err := d.Decode(in, &ev)
			if got := reasonOf(t, err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
			if err == nil {
				if verr := ev.Validate(); verr != nil {
					t.Errorf("decoded event does not validate: %v", verr)
				}
				if tc.check != nil {
					tc.check(t, &ev)
				}
			}
		})
	}
}

func wantTime(s string) func(t *testing.T, ev *Event) {
	return func(t *testing.T, ev *Event) {
		t.Helper()
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.Time.Equal(want) || ev.Time.Location() != time.UTC {
			t.Errorf("time = %v, want %v in UTC", ev.Time, want)
		}
	}
}

// TestDecodeEveryAction checks each action of CONTRACT §1, with and without a
// subject: record actions need one, session actions do not.
func TestDecodeEveryAction(t *testing.T) {
	d := NewDecoder(DecoderOptions{Format: FormatNative})
	for a, record := range actionKinds {
		for _, withSubject := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/subject=%v", a, withSubject), func(t *testing.T) {
				edit := set("action", string(a))
				if !withSubject {
					edit = all(edit, del("subject"), del("record"))
				}
				var ev Event
				err := d.Decode(variant(t, edit), &ev)
				want := Reason("")
				if record && !withSubject && a != ActionSearch {
					want = ReasonMissingField // CONTRACT §1: only a search may have no subject
				}
				if got := reasonOf(t, err); got != want {
					t.Fatalf("reason = %q (%v), want %q", got, err, want)
				}
				if err == nil && ev.Action != a {
					t.Errorf("action = %q", ev.Action)
				}
			})
		}
	}
}

// TestDecodeFailureWithoutSubject: a refused attempt at any record action
// is an access without a subject (CONTRACT §1), a success is not.
func TestDecodeFailureWithoutSubject(t *testing.T) {
	d := NewDecoder(DecoderOptions{Format: FormatNative})
	for a, record := range actionKinds {
		if !record {
			continue
		}
		for _, outcome := range []Outcome{OutcomeFailure, OutcomeSuccess} {
			t.Run(fmt.Sprintf("%s/%s", a, outcome), func(t *testing.T) {
				var ev Event
				err := d.Decode(variant(t, all(set("action", string(a)), set("outcome", string(outcome)), del("subject"), del("record"))), &ev)
				want := Reason("")
				if outcome == OutcomeSuccess && a != ActionSearch {
					want = ReasonMissingField
				}
				if got := reasonOf(t, err); got != want {
					t.Fatalf("reason = %q (%v), want %q", got, err, want)
				}
			})
		}
	}
}

// TestDecodeActorKind: actor.kind is optional, "staff" is the default
// written as absent, and only the four kinds are accepted.
func TestDecodeActorKind(t *testing.T) {
	d := NewDecoder(DecoderOptions{Format: FormatNative})
	for _, tc := range []struct {
		in   string
		want ActorKind
		err  Reason
	}{
		{"staff", ActorStaff, ""}, {"patient", ActorPatient, ""}, {"related-person", ActorRelatedPerson, ""},
		{"system", ActorSystem, ""}, {"Patient", "", ReasonInvalidField}, {"robot", "", ReasonInvalidField},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var ev Event
			err := d.Decode(variant(t, set("actor.kind", tc.in)), &ev)
			if got := reasonOf(t, err); got != tc.err {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.err)
			}
			if err == nil && ev.Actor.Kind != tc.want {
				t.Errorf("kind = %q, want %q", ev.Actor.Kind, tc.want)
			}
		})
	}
}

// TestDecodeEveryTruncation decodes every proper prefix of a valid message:
// each must be rejected as malformed, none may panic or pass.
func TestDecodeEveryTruncation(t *testing.T) {
	d := NewDecoder(DecoderOptions{})
	msg := []byte(strings.TrimSpace(contractExample))
	for i := range len(msg) {
		var ev Event
		if got := reasonOf(t, d.Decode(msg[:i], &ev)); got != ReasonMalformed {
			t.Errorf("prefix of %d bytes: reason %q, want malformed", i, got)
		}
	}
}

func TestDecodeTooLarge(t *testing.T) {
	msg := []byte(contractExample)
	for _, tc := range []struct {
		name string
		max  int
		in   []byte
		want Reason
	}{
		{"at the limit", len(msg), msg, ""},
		{"one byte over", len(msg) - 1, msg, ReasonTooLarge},
		{"default limit passes 64 KiB", 0, padTo(msg, DefaultMaxBytes), ""},
		{"default limit", 0, padTo(msg, DefaultMaxBytes+1), ReasonTooLarge},
		{"negative is the default", -1, padTo(msg, DefaultMaxBytes+1), ReasonTooLarge},
		// Checked before parsing: garbage that is too large is too large.
		{"garbage over the limit", 10, []byte(strings.Repeat("x", 11)), ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := NewDecoder(DecoderOptions{MaxBytes: tc.max}).Decode(tc.in, &ev)
			if got := reasonOf(t, err); got != tc.want {
				t.Errorf("reason = %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// padTo pads msg with trailing white space to n bytes.
func padTo(msg []byte, n int) []byte {
	return append(bytes.Clone(msg), bytes.Repeat([]byte(" "), n-len(msg))...)
}

// TestDecodeResetsEvent reuses one Event for several messages: nothing of an
// earlier message may survive into a later one.
func TestDecodeResetsEvent(t *testing.T) {
	d := NewDecoder(DecoderOptions{})
	minimal := []byte(`{"id":"e2","time":"2026-03-02T07:00:00Z","org":"o","system":"s","action":"logout","actor":{"id":"u"}}`)
	var fresh Event
	if err := d.Decode(minimal, &fresh); err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := d.Decode([]byte(contractExample), &ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(minimal, &ev); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ev, fresh) {
		t.Errorf("reused event kept fields:\n got %+v\nwant %+v", ev, fresh)
	}
	// A rejected message leaves nothing of the earlier one either.
	if err := d.Decode([]byte(contractExample), &ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(`{"id":"e3"}`), &ev); err == nil {
		t.Fatal("accepted an incomplete event")
	}
	if ev.Subject.ID != "" || ev.Actor.ID != "" || ev.Session.MFA != nil {
		t.Errorf("rejected message left fields of the previous one: %+v", ev)
	}
	if err := d.Decode([]byte(contractExample), &ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(nil, &ev); err == nil || !reflect.DeepEqual(ev, Event{}) {
		t.Errorf("empty message: err %v, event %+v", err, ev)
	}
}

// TestDecodeCopiesStrings overwrites the input after decoding, as a reused
// read buffer would be: the event must not change.
func TestDecodeCopiesStrings(t *testing.T) {
	buf := []byte(contractExample)
	var ev Event
	if err := NewDecoder(DecoderOptions{}).Decode(buf, &ev); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	if want := contractEvent(); !reflect.DeepEqual(ev, want) {
		t.Errorf("event changed with its input: %+v", ev)
	}
}

// TestDecodeConcurrent shares one Decoder between goroutines (run with -race).
func TestDecodeConcurrent(t *testing.T) {
	d := NewDecoder(DecoderOptions{Org: "st-martins", System: "fhir"})
	fhirMsg, err := os.ReadFile(filepath.Join("testdata", "fhir", "read-care-plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	var wantFHIR Event
	if err := d.Decode(fhirMsg, &wantFHIR); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				var ev Event
				id := fmt.Sprintf("e-%d-%d", g, i)
				if i%2 == 0 {
					if err := d.Decode([]byte(strings.Replace(contractExample, "lmc-000123", id, 1)), &ev); err != nil || ev.ID != id {
						errs <- fmt.Errorf("native %s: %v, got id %q", id, err, ev.ID)
						return
					}
					continue
				}
				if err := d.Decode(fhirMsg, &ev); err != nil || !reflect.DeepEqual(ev, wantFHIR) {
					errs <- fmt.Errorf("fhir: %v, got %+v", err, ev)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDecodeFormats checks that a fixed format reads only its own kind.
func TestDecodeFormats(t *testing.T) {
	fhirMsg, err := os.ReadFile(filepath.Join("testdata", "fhir", "read-care-plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	patient := []byte(`{"resourceType":"Patient","id":"secret-c-1"}`)
	nativeWithType := variant(t, set("resourceType", "Bundle"))
	bundle := []byte(`{"resourceType":"Bundle","type":"searchset","entry":[]}`)
	bundleLater := []byte(`{"type":"searchset","resourceType":"Bundle"}`)
	fhirLater := bytes.Replace(fhirMsg, []byte(`"resourceType": "AuditEvent",`), nil, 1)
	fhirLater = append(fhirLater[:len(fhirLater)-2], []byte(`, "resourceType": "AuditEvent"}`)...)
	for _, tc := range []struct {
		format Format
		in     []byte
		want   Reason
	}{
		{FormatAuto, []byte(contractExample), ""},
		{FormatAuto, fhirMsg, ""},
		{FormatAuto, patient, ReasonUnsupported},
		{FormatAuto, nativeWithType, ReasonUnsupported},
		{FormatAuto, bundle, ReasonUnsupported},
		{FormatAuto, bundleLater, ReasonUnsupported},
		{FormatAuto, fhirLater, ""},
		{FormatFHIR, bundle, ReasonUnsupported},
		{FormatFHIR, fhirLater, ""},
		{FormatNative, []byte(contractExample), ""},
		{FormatNative, fhirMsg, ReasonMissingField}, // no time, org …: not an event
		{FormatNative, nativeWithType, ""},          // an unknown member to native
		{FormatFHIR, fhirMsg, ""},
		{FormatFHIR, patient, ReasonUnsupported},
		{FormatFHIR, []byte(contractExample), ReasonUnsupported},
	} {
		var ev Event
		d := NewDecoder(DecoderOptions{Format: tc.format, Org: "st-martins", System: "fhir"})
		if got := reasonOf(t, d.Decode(tc.in, &ev)); got != tc.want {
			t.Errorf("%s on %.40q: reason %q, want %q", tc.format, tc.in, got, tc.want)
		}
	}
}

func TestEncodeGolden(t *testing.T) {
	ev := contractEvent()
	got, err := Encode(&ev)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "native", "contract.golden.json"), append(got, '\n'))
}

func TestEncodeRejectsInvalidUTF8(t *testing.T) {
	ev := contractEvent()
	ev.Actor.ID = "u-\xff"
	if _, err := Encode(&ev); err == nil {
		t.Error("Encode accepted invalid UTF-8")
	}
}

// TestRoundTrip checks Decode(Encode(e)) == e over random valid events.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := NewDecoder(DecoderOptions{Format: FormatNative})
	for i := range 3000 {
		want := randomEvent(rng)
		if err := want.Validate(); err != nil {
			t.Fatalf("generator made an invalid event: %v", err)
		}
		b, err := Encode(&want)
		if err != nil {
			t.Fatalf("event %d: encode: %v", i, err)
		}
		var got Event
		if err := d.Decode(b, &got); err != nil {
			t.Fatalf("event %d: decode %s: %v", i, b, err)
		}
		if !got.Time.Equal(want.Time) {
			t.Fatalf("event %d: time %v, want %v", i, got.Time, want.Time)
		}
		want.Time = want.Time.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d: round trip of %s:\n got %+v\nwant %+v", i, b, got, want)
		}
	}
}

func randomEvent(rng *rand.Rand) Event {
	str := func(required bool) string {
		if !required && rng.IntN(3) == 0 {
			return ""
		}
		// No U+2028 (which JSON encoders escape): ids refuse it now (visible.Hidden).
		alphabet := []rune(`abcXYZ019-_./:@ é团🙂"\<>&` + "\u00a0")
		n := 1 + rng.IntN(20)
		r := make([]rune, n)
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	actions := make([]Action, 0, len(actionKinds))
	for a := range actionKinds {
		actions = append(actions, a)
	}
	ev := Event{
		ID:     str(true),
		Time:   time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("", (rng.IntN(49)-24)*30*60)),
		Org:    str(true),
		System: str(true),
		Action: actions[rng.IntN(len(actions))],
		Actor:  Actor{ID: str(true), Role: str(false), Team: str(false), Org: str(false)},
		Record: Record{Type: str(false), ID: str(false)},
		Session: Session{
			ID: str(false), Device: str(false), IP: str(false),
		},
		Outcome: []Outcome{OutcomeSuccess, OutcomeFailure}[rng.IntN(2)],
	}
	if ev.Action.IsRecordAction() || rng.IntN(2) == 0 {
		ev.Subject.ID = str(true)
	}
	for range rng.IntN(3) {
		ev.Subject.Sensitivity = append(ev.Subject.Sensitivity, str(true))
	}
	if rng.IntN(2) == 0 {
		mfa := rng.IntN(2) == 0
		ev.Session.MFA = &mfa
	}
	return ev
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n got %s\nwant %s", path, got, want)
	}
}

// TestMalformedDetails pins the details of malformed input, which name the
// problem and the place but never the content.
func TestMalformedDetails(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"id":"secret"`, "truncated JSON at byte 14"},
		{`{"id":"a","id":"secret"}`, "duplicate member name at byte 10"},
		{"{\"id\":\"secret\xff\"}", "invalid UTF-8 at byte 13"},
		{`{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "nesting too deep at byte 10004"},
		{`{"id":secret}`, "invalid JSON syntax at byte 6"},
		{`{"id":"a"} secret`, "invalid JSON syntax at byte 11"},
		{`{"actor":{"id":["secret"]}}`, "actor.id has the wrong JSON type"},
		{`{"subject":{"sensitivity":["a",1]}}`, "subject.sensitivity has the wrong JSON type"},
		{`{"time":"secret"}`, "time must be an RFC 3339 time with a UTC offset"},
		{`[]`, "message is not a JSON object"},
	} {
		var ev Event
		err := NewDecoder(DecoderOptions{}).Decode([]byte(tc.in), &ev)
		var e *Error
		if !errors.As(err, &e) || e.Detail != tc.want {
			t.Errorf("Decode(%.30q) = %v, want detail %q", tc.in, err, tc.want)
		}
	}
}
