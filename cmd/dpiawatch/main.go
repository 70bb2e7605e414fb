// Command dpiawatch turns the promises of a Data Protection Impact Assessment
// into running checks over the access logs of care-record systems. See the
// README and `dpiawatch --help`.
package main

import (
	"os"

	_ "github.com/dpiawatch/dpiawatch/checks/install" // the checks the binary ships (cli installs them too)
	"github.com/dpiawatch/dpiawatch/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
