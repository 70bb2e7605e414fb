package evidence

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Settings summary: a board reads what a check looks for and how
// sensitive it is, in a sentence, not `overrides[0].role: ;` or a site's
// coordinates. The full settings stay in evidence.json and checks.csv.

// checkAims says what each shipped check looks for; a check not listed
// (one added later) is named as it is.
var checkAims = map[string]string{
	"bulk-access":       "Looks for an account opening far more people's records than usual",
	"no-business-need":  "Looks for access to people the worker's team has no relationship with",
	"out-of-hours":      "Looks for access outside working hours",
	"shared-credential": "Looks for one account used by more than one person (two places at once, impossible travel, guessed passwords)",
	"unlocked-session":  "Looks for sessions left open and used after the worker has gone",
	"feed-integrity":    "Looks for access records sent again with different content",
}

// settingsSummary is c's settings as one or two plain sentences.
func settingsSummary(c CheckInfo) string {
	v := map[string]string{}
	sites, overrides := map[string]bool{}, map[string]bool{}
	for _, s := range c.Settings {
		v[s.Key] = s.Value
		if i := strings.Index(s.Key, "]"); i > 0 {
			switch {
			case strings.HasPrefix(s.Key, "sites["):
				sites[s.Key[:i]] = true
			case strings.HasPrefix(s.Key, "overrides["):
				overrides[s.Key[:i]] = true
			}
		}
	}
	aim, ok := checkAims[c.Name]
	if !ok {
		aim = "The " + c.Name + " check"
	}
	var parts []string
	switch c.Name {
	case "out-of-hours":
		if d := v["working_hours.days"]; d != "" {
			parts = append(parts, fmt.Sprintf("working hours %s %s to %s", daysText(d), v["working_hours.start"], v["working_hours.end"]))
		}
		if bh := v["working_hours.bank_holidays"]; bh != "" {
			parts = append(parts, "bank holidays of "+strings.ReplaceAll(titleWords(bh), " And ", " and ")+" count as out of hours")
		}
		if g := durationText(v["grace"]); g != "" {
			parts = append(parts, g+" of grace either side")
		}
	case "bulk-access":
		if n := v["min_subjects"]; n != "" {
			parts = append(parts, fmt.Sprintf("at least %s people within %s and %s times the account's usual number (learnt over %s days)",
				n, durationText(v["window"]), v["multiplier"], v["baseline_days"]))
		}
	case "no-business-need":
		if d := durationText(v["after_end"]); d != "" && d != "no time" {
			parts = append(parts, "a relationship counts for "+d+" after it ends")
		}
	case "shared-credential":
		if s := v["max_speed_kmh"]; s != "" {
			parts = append(parts, "travel faster than "+s+" km/h between two uses")
		}
		if n := v["failed_logins"]; n != "" && n != "0" {
			parts = append(parts, fmt.Sprintf("%s failed logins within %s", n, durationText(v["failed_login_window"])))
		}
		if len(sites) > 0 {
			parts = append(parts, plural(len(sites), "known site"))
		}
		if u := v["unknown_networks"]; u != "" {
			parts = append(parts, "unknown networks treated as "+u)
		}
	case "unlocked-session":
		if l := durationText(v["limit"]); l != "" {
			parts = append(parts, "a session open more than "+l+" after the worker left")
		}
	}
	s := aim
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, "; ")
	}
	s += "."
	if sev := v["severity"]; sev != "" {
		s += " Alerts are " + sev + " severity"
		if g := durationText(v["episode_gap"]); g != "" {
			s += "; accesses less than " + g + " apart make one alert"
		}
		s += "."
	}
	if len(overrides) > 0 {
		s += " " + plural(len(overrides), "exception") + " for particular organisations, roles or teams."
	}
	return s
}

// durationText is a Go duration in words ("1h0m0s" → "1 hour"); "" when
// the value is not a duration.
func durationText(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return ""
	}
	if d == 0 {
		return "no time"
	}
	var parts []string
	if h := int(d / time.Hour); h > 0 {
		parts = append(parts, plural(h, "hour"))
	}
	if m := int(d % time.Hour / time.Minute); m > 0 {
		parts = append(parts, plural(m, "minute"))
	}
	if sec := int(d % time.Minute / time.Second); sec > 0 || len(parts) == 0 {
		parts = append(parts, plural(sec, "second"))
	}
	return strings.Join(parts, " ")
}

// daysText is a YAML list of weekdays in words: "[mon, tue, wed, thu,
// fri]" → "Monday to Friday".
func daysText(list string) string {
	names := map[string]string{"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}
	order := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	var days []string
	for _, d := range strings.Split(strings.Trim(list, "[]"), ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			days = append(days, d)
		}
	}
	if len(days) == 0 {
		return "no day"
	}
	// A run of consecutive days reads as "Monday to Friday".
	first := -1
	for i, o := range order {
		if o == days[0] {
			first = i
		}
	}
	run := first >= 0 && first+len(days) <= len(order)
	for i := 0; run && i < len(days); i++ {
		run = order[first+i] == days[i]
	}
	if run && len(days) > 2 {
		return names[days[0]] + " to " + names[days[len(days)-1]]
	}
	var out []string
	for _, d := range days {
		if n, ok := names[d]; ok {
			out = append(out, n)
		} else {
			out = append(out, strconv.Quote(d))
		}
	}
	return strings.Join(out, ", ")
}

// titleWords capitalises hyphenated words: "england-and-wales" →
// "England And Wales".
func titleWords(s string) string {
	w := strings.Fields(strings.ReplaceAll(s, "-", " "))
	for i, x := range w {
		w[i] = strings.ToUpper(x[:1]) + x[1:]
	}
	return strings.Join(w, " ")
}
