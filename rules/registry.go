package rules

import "fmt"

// registration is one check as the engine knows it: its stable name, how to
// build it, and how to make its policy (OrgPolicy.Checks[name]) ready for
// the hot path. Each check declares its registration, its policy type and
// its resolver in its own file; registry lists them in the order they run,
// so adding a check adds its file and one line here.
type registration struct {
	name string
	// build makes the check. slot is where it finds its resolved policy in
	// every org's runtime: policyAt(v.org, slot).
	build func(slot int) check
	// policy resolves the check's policy for one org from what OrgPolicy.Checks
	// holds under its name (nil when nothing: the check's defaults). What it
	// returns is opaque to the engine and handed back to the check only.
	policy func(p any) (any, error)
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

// newChecks builds every check of regs, each with its slot.
func newChecks(regs []registration) []check {
	cs := make([]check, len(regs))
	for i, r := range regs {
		cs[i] = r.build(i)
	}
	return cs
}

// policyOf returns the policy of type P that OrgPolicy.Checks holds for a
// check (p), or the zero P when it holds none; a value of another type is an
// error, so that a policy handed to the wrong check cannot pass unnoticed.
func policyOf[P any](name string, p any) (P, error) {
	var zero P
	switch v := p.(type) {
	case nil:
		return zero, nil
	case *P:
		if v == nil {
			return zero, nil
		}
		return *v, nil
	case P:
		return v, nil
	default:
		return zero, fmt.Errorf("check %s: policy of type %T, want *%T", name, p, zero)
	}
}

// resolved is the resolver a check's registration built for an org, at the
// check's slot. The assertion to a concrete type is one comparison; nil
// when the org has no runtime for the check.
func resolved[R any](rt *orgRuntime, slot int) *R {
	r, _ := rt.policies[slot].(*R)
	return r
}
