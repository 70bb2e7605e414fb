// Package unlockedsession is the unlocked-session check
// (docs/checks/unlocked-session.md): sessions left unlocked for too long,
// and devices handed over with another account's session still open.
package unlockedsession

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
)

// Check is the check as package checks registers it (checks/install).
var Check = checks.Check{
	Name:    Name,
	Section: func() config.CheckSection { return new(Config) },
	Build:   registration.Build,
	Policy:  registration.Policy,
}
