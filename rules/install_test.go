package rules_test

// The engine's tests run the shipped checks, installed as the daemon
// installs them; the tests of package rules are in the same test binary.
import _ "github.com/dpiawatch/dpiawatch/checks/install"
