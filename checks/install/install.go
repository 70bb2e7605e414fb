// Package install installs every check dpiawatch ships: importing it, for
// its side effect, is what gives a program checks to configure and run.
// Every program and test that loads a configuration or builds an engine
// from one imports it (cmd/dpiawatch through cli, the daemon, replay, the
// benchmark, e2e); config.Load refuses to load without any check
// registered, so forgetting it fails loudly instead of running no checks.
//
// The line of a check here is its one registration: the order of the
// lines is the order the checks run, are configured and are reported.
package install

import (
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/checks/bulkaccess"
	"github.com/dpiawatch/dpiawatch/checks/nobusinessneed"
	"github.com/dpiawatch/dpiawatch/checks/outofhours"
	"github.com/dpiawatch/dpiawatch/checks/sharedcredential"
	"github.com/dpiawatch/dpiawatch/checks/unlockedsession"
)

func init() {
	checks.Register(outofhours.Check)
	checks.Register(nobusinessneed.Check)
	checks.Register(sharedcredential.Check)
	checks.Register(unlockedsession.Check)
	checks.Register(bulkaccess.Check)
}
