package rules

// registration is one check as the engine knows it: its stable name, how to
// build it, and how to make its part of an org's policy ready for the hot
// path. Each check declares its registration in its own file; registry
// lists them in the order they run, so adding a check adds one line here
// (and, until policies are generic, its policy to OrgPolicy and its
// resolver to orgRuntime).
type registration struct {
	name  string
	build func() check
	org   func(p OrgPolicy, rt *orgRuntime) error
}

var registry = []registration{
	outOfHoursRegistration,
	noBusinessNeedRegistration,
	unlockedSessionRegistration,
	sharedCredentialRegistration,
	bulkAccessRegistration,
}

// Checks lists the names of every check the Engine can run.
func Checks() []string {
	names := make([]string, len(registry))
	for i, r := range registry {
		names[i] = r.name
	}
	return names
}

// newChecks builds every check.
func newChecks() []check {
	cs := make([]check, len(registry))
	for i, r := range registry {
		cs[i] = r.build()
	}
	return cs
}
