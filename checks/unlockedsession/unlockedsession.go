// Package unlockedsession is the unlocked-session check
// (docs/checks/unlocked-session.md): sessions left unlocked for too long,
// and devices handed over with another account's session still open.
package unlockedsession

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Check is the check as package checks registers it (checks/install).
var Check = checks.Check{
	Name:     Name,
	Patterns: []string{PatternUnlockedGap, PatternDeviceHandover},
	Section:  func() config.CheckSection { return new(Config) },
	Build:    func(slot int) rules.Check { return newUnlockedSession(slot) },
	Policy:   rules.ResolvePolicy(Name, newULSResolver),
}
