// Package outofhours is the out-of-hours check (CONTRACT §2, §4;
// docs/checks/out-of-hours.md): access outside the actor's rostered shifts
// or, for staff without shifts, outside default working hours and on bank
// holidays.
package outofhours

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Check is the check as package checks registers it (checks/install).
var Check = checks.Check{
	Name:     Name,
	Patterns: []string{PatternOutsideShift, PatternOutsideWorkingHours, PatternBankHoliday},
	Section:  func() config.CheckSection { return new(Config) },
	Build:    func(slot int) rules.Check { return outOfHours{slot: slot} },
	Policy:   rules.ResolvePolicy(Name, newOOHResolver),
}
