// Package recorddeleted is the example check of
// docs/checks/adding-a-check.md: every delete of a record is an alert
// (pattern record-deleted), with a severity knob and role or team overrides
// that can exempt the staff whose job it is. It is not installed in the
// shipped binary (checks/install does not list it); its test registers it.
package recorddeleted

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Name is the check's stable name: its key under checks: and its alerts'
// check and pattern.
const Name = "record-deleted"

// Check is the check as checks.Register takes it: its configuration
// section and its engine side.
var Check = checks.Check{
	Name:     Name,
	Patterns: []string{Name}, // its one pattern bears its name
	Section:  func() config.CheckSection { return new(Config) },
	Build:    func(slot int) rules.Check { return recordDeleted{slot: slot} },
	// The org's Policy (nil: the defaults; another type: refused), resolved
	// once when the engine is built.
	Policy: rules.ResolvePolicy(Name, newResolver),
}
