// Package bulkaccess is the bulk-access check (docs/checks/bulk-access.md):
// an actor opening far more different people's records in a window than
// their own usual and their team's.
package bulkaccess

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Check is the check as package checks registers it (checks/install).
var Check = checks.Check{
	Name:     Name,
	Patterns: []string{PatternBulkAccess},
	Section:  func() config.CheckSection { return new(Config) },
	Build:    func(slot int) rules.Check { return newBulkAccess(slot) },
	Policy:   rules.ResolvePolicy(Name, newBulkResolver),
}
