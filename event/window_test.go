package event

import (
	"testing"
	"time"
)

func TestTimeWindow(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	w := TimeWindow{MaxAge: DefaultMaxAge, MaxAhead: DefaultMaxAhead}
	tests := []struct {
		name   string
		t      time.Time
		detail string // "" when accepted
	}{
		{"now", now, ""},
		{"oldest accepted", now.Add(-DefaultMaxAge), ""},
		{"latest accepted", now.Add(DefaultMaxAhead), ""},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "time is more than max_age 9600h before now"},
		{"unix epoch", time.Unix(0, 0).UTC(), "time is more than max_age 9600h before now"},
		{"a nanosecond too old", now.Add(-DefaultMaxAge - 1), "time is more than max_age 9600h before now"},
		{"a nanosecond too far ahead", now.Add(DefaultMaxAhead + 1), "time is more than max_ahead 5m after now"},
		{"year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), "time is more than max_ahead 5m after now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.Check(tt.t, now)
			if tt.detail == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Reason != ReasonEventTimeOutOfRange || e.Detail != tt.detail {
				t.Fatalf("Check = %#v, want %s: %s", err, ReasonEventTimeOutOfRange, tt.detail)
			}
		})
	}
	if got := formatBound(90 * time.Minute); got != "1h30m" {
		t.Errorf("formatBound(90m) = %q", got)
	}
}

func TestTimeWindowsByOrg(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	w := TimeWindows{
		Default: TimeWindow{MaxAge: DefaultMaxAge, MaxAhead: DefaultMaxAhead},
		ByOrg:   map[string]TimeWindow{"short": {MaxAge: 30 * 24 * time.Hour, MaxAhead: DefaultMaxAhead, AgeBound: "the org's events retention of 30 days"}},
	}
	old := now.Add(-31 * 24 * time.Hour)
	if err := w.Check(&Event{Org: "other", Time: old}, now); err != nil {
		t.Errorf("other org: %v, want accepted", err)
	}
	err := w.Check(&Event{Org: "short", Time: old}, now)
	if e, ok := err.(*Error); !ok || e.Detail != "time is more than the org's events retention of 30 days before now" {
		t.Errorf("short org: %v", err)
	}
}

// TestTimeWindowCheckAge: a replay measures max_age from its newest event
// and names that reference in the detail.
func TestTimeWindowCheckAge(t *testing.T) {
	ref := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	w := TimeWindow{MaxAge: DefaultMaxAge, MaxAhead: DefaultMaxAhead}
	if err := w.CheckAge(ref.Add(-DefaultMaxAge), ref, "the newest event in the input"); err != nil {
		t.Errorf("oldest accepted: %v", err)
	}
	err := w.CheckAge(time.Unix(0, 0), ref, "the newest event in the input")
	if e, ok := err.(*Error); !ok || e.Detail != "time is more than max_age 9600h before the newest event in the input" {
		t.Errorf("1970: %v", err)
	}
	if err := w.CheckAge(ref.Add(time.Hour), ref, "x"); err != nil {
		t.Errorf("CheckAge applied the ahead bound: %v", err)
	}
}
