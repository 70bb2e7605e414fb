// Package checkname holds the words people read for each check and pattern:
// the web UI and the evidence pack show "Outside the sharing agreement",
// never the identifier "outside-sharing-agreement", and both read this one
// table so that they never name the same thing two ways.
package checkname

// checks and patterns map the stable identifiers (rules' Check* and
// Pattern* constants, the heartbeat's feed-silent) to display names.
// TestEveryCheckAndPatternIsNamed keeps them complete.
var (
	checks = map[string]string{
		"out-of-hours":      "Out-of-hours access",
		"no-business-need":  "No business need",
		"unlocked-session":  "Unlocked session",
		"shared-credential": "Shared or misused login",
		"bulk-access":       "Bulk access",
		"feed-integrity":    "Feed integrity",
		"feed-silent":       "Silent data feed",
	}
	patterns = map[string]string{
		"outside-shift":             "Outside their rostered shift",
		"outside-working-hours":     "Outside working hours",
		"bank-holiday":              "On a bank holiday",
		"no-relationship":           "No care relationship with the person",
		"relationship-ended":        "After the care relationship ended",
		"outside-sharing-agreement": "Outside the sharing agreement",
		"unlocked-gap":              "Session left unlocked",
		"device-handover":           "Device handed over while signed in",
		"concurrent-sessions":       "Signed in at two places at once",
		"impossible-travel":         "Sign-ins too far apart to travel between",
		"used-while-absent":         "Used while the worker was absent",
		"used-after-leaving":        "Used after the worker left",
		"failed-login-burst":        "Burst of failed sign-ins",
		"external-without-mfa":      "Signed in from outside without MFA",
		"unknown-account":           "Account on no staff list",
		"bulk-access":               "Many records opened in a short time",
		"conflicting-duplicate":     "One event id with different content",
		"no-events":                 "No events from a system",
	}
)

// Check is the display name of a check; an unknown check shows as its
// identifier, so that a check added without a name is still findable.
func Check(id string) string {
	if n, ok := checks[id]; ok {
		return n
	}
	return id
}

// Pattern is the display name of a pattern (the behaviour within a check);
// an unknown pattern shows as its identifier.
func Pattern(id string) string {
	if n, ok := patterns[id]; ok {
		return n
	}
	return id
}
