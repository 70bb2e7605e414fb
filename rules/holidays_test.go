package rules

import (
	"testing"
	"time"
)

// TestBankHolidaysEnglandWales checks the engine's calendar against the
// bank holidays gov.uk publishes for England and Wales, 2024–2027
// (substitute days included): each listed day is a holiday and no other
// weekday of those years is.
func TestBankHolidaysEnglandWales(t *testing.T) {
	official := map[int][]string{
		2024: {"01-01", "03-29", "04-01", "05-06", "05-27", "08-26", "12-25", "12-26"},
		2025: {"01-01", "04-18", "04-21", "05-05", "05-26", "08-25", "12-25", "12-26"},
		2026: {"01-01", "04-03", "04-06", "05-04", "05-25", "08-31", "12-25", "12-28"},
		2027: {"01-01", "03-26", "03-29", "05-03", "05-31", "08-30", "12-27", "12-28"},
	}
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	v := Env{holidays: newHolidays()}
	for year, days := range official {
		want := map[string]bool{}
		for _, d := range days {
			want[d] = true
		}
		for day := time.Date(year, 1, 1, 12, 0, 0, 0, london); day.Year() == year; day = day.AddDate(0, 0, 1) {
			if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
				continue
			}
			name, got := v.IsHoliday(day)
			if got != want[day.Format("01-02")] {
				t.Errorf("%s: holiday = %v (%q), gov.uk says %v", day.Format("Mon 2006-01-02"), got, name, want[day.Format("01-02")])
			}
		}
	}
}
