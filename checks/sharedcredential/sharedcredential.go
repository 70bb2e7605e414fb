// Package sharedcredential is the shared-credential check
// (docs/checks/shared-credential.md): signs that an account is used by
// someone other than its holder — concurrent sessions, impossible travel,
// use while absent or after leaving, missing MFA, failed-login bursts.
package sharedcredential

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Check is the check as package checks registers it (checks/install).
var Check = checks.Check{
	Name: Name,
	Patterns: []string{PatternConcurrentSessions, PatternImpossibleTravel, PatternUsedWhileAbsent, PatternUsedAfterLeaving,
		PatternFailedLoginBurst, PatternExternalWithoutMFA, PatternUnknownAccount},
	Section: func() config.CheckSection { return new(Config) },
	Build:   func(slot int) rules.Check { return newSharedCredential(slot) },
	Policy:  rules.ResolvePolicy(Name, newSCResolver),
}
