package sqlite

import (
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/event"
)

// FuzzEventCodec checks that an event survives the storage encoding: the
// columns plus the detail JSON decode to the same event, instant and UTC
// offset included. Strings are valid UTF-8 as everything decoded from JSON
// is (the store keeps text as JSON text).
func FuzzEventCodec(f *testing.F) {
	f.Add("lmc-1", "support-worker", "safeguarding", "10.2.0.14", int64(1772486045), int64(0), 0, uint8(1))
	f.Add("x\"\\\n\u2028", "", "", "", int64(-30610224000), int64(999999999), -34200, uint8(0))
	f.Add("", "é", "\x00", "::1", int64(253402300799), int64(1), 50400, uint8(2))
	f.Fuzz(func(t *testing.T, id, role, sens, ip string, sec, nsec int64, off int, mfa uint8) {
		if !utf8.ValidString(id) || !utf8.ValidString(role) || !utf8.ValidString(sens) || !utf8.ValidString(ip) {
			t.Skip()
		}
		if off < -18*3600 || off > 18*3600 {
			t.Skip()
		}
		in := event.Event{
			ID: id, Org: "o", System: "s", Action: event.ActionView, Outcome: event.OutcomeSuccess,
			Time:    time.Unix(sec, nsec%1e9).In(time.FixedZone("", off)),
			Actor:   event.Actor{ID: "u", Role: role},
			Subject: event.Subject{ID: id, Sensitivity: []string{sens}},
			Session: event.Session{IP: ip},
		}
		if mfa%3 != 2 {
			b := mfa%3 == 1
			in.Session.MFA = &b
		}
		args := make([]any, eventColumns)
		if err := encodeEvents(args, []event.Event{in}); err != nil {
			t.Fatal(err)
		}
		out, err := decodeEvent(args[0].(string), args[1].(string), args[2].(string), args[3].(int64),
			args[4].(string), args[5].(string), args[6].(string), args[7].(string))
		if err != nil {
			t.Fatal(err)
		}
		_, inOff := in.Time.Zone()
		_, outOff := out.Time.Zone()
		if !out.Time.Equal(in.Time) || inOff != outOff {
			t.Fatalf("time %v, want %v", out.Time, in.Time)
		}
		out.Time, in.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(out, in) {
			t.Fatalf("round trip\n got %+v\nwant %+v", out, in)
		}
	})
}
