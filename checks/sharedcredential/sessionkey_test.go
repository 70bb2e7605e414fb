package sharedcredential

import (
	"testing"

	"github.com/dpiawatch/dpiawatch/event"
)

// TestIsSessionKey: isSessionKey(k, ev) is sessionKey(ev) == k, for every
// pair of a few awkward sessions (an id, a device and an IP, either alone,
// separators inside them).
func TestIsSessionKey(t *testing.T) {
	sessions := []event.Session{
		{ID: "s-1"}, {ID: "s-1", Device: "d"}, {ID: "1"}, {ID: "d:x|"},
		{Device: "lt-1", IP: "10.0.0.1"}, {Device: "lt-1"}, {IP: "10.0.0.1"},
		{Device: "a|b", IP: "c"}, {Device: "a", IP: "b|c"}, {Device: "s", IP: "1"},
	}
	for _, a := range sessions {
		for _, b := range sessions {
			ea, eb := &event.Event{Session: a}, &event.Event{Session: b}
			k := sessionKey(ea)
			if got, want := isSessionKey(k, eb), k == sessionKey(eb); got != want {
				t.Errorf("isSessionKey(%q, %+v) = %v, want %v", k, b, got, want)
			}
		}
	}
}
