// Package nobusinessneed is the no-business-need check
// (docs/checks/no-business-need.md): record access without a relationship
// in force between the actor, or their team, and the person, and partner
// agencies' access without a sharing agreement that allows it.
package nobusinessneed

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Check is the check as package checks registers it (checks/install).
var Check = checks.Check{
	Name:     Name,
	Patterns: []string{PatternNoRelationship, PatternRelationshipEnded, PatternOutsideSharingAgreement},
	Section:  func() config.CheckSection { return new(Config) },
	Build:    func(slot int) rules.Check { return noBusinessNeed{slot: slot} },
	Policy:   rules.ResolvePolicy(Name, newNBNResolver),
}
