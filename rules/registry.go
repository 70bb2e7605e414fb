package rules

import (
	"fmt"
	"slices"
	"sync"
)

// Registration is one check as the engine knows it: its stable name, how to
// build it, and how to make its policy (OrgPolicy.Checks[name]) ready for
// the hot path. A check package registers it once, from init, through
// Register (package checks does so for the checks it installs).
type Registration struct {
	// Name is the check's stable name (CONTRACT §3): alerts' check field
	// and its state key prefix.
	Name string
	// Build makes the check. slot is where it finds its resolved policy in
	// every org's runtime: Resolved[R](v, slot).
	Build func(slot int) Check
	// Policy resolves the check's policy for one org from what
	// OrgPolicy.Checks holds under its name (nil when nothing: the check's
	// defaults). What it returns is opaque to the engine and handed back to
	// the check only, through Resolved.
	Policy func(p any) (any, error)
}

var (
	registryMu sync.Mutex
	registry   []Registration // in the order registered: the order checks run
)

// Register adds a check to those every Engine built afterwards runs, in the
// order registered. It panics on an incomplete registration or a name
// registered twice: both are programming errors, found at start-up.
func Register(r Registration) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if r.Name == "" || r.Build == nil || r.Policy == nil {
		panic(fmt.Sprintf("rules: Register(%q): name, Build and Policy are required", r.Name))
	}
	if slices.ContainsFunc(registry, func(o Registration) bool { return o.Name == r.Name }) {
		panic(fmt.Sprintf("rules: check %q registered twice", r.Name))
	}
	registry = append(registry, r)
}

// registered returns the registered checks, in order.
func registered() []Registration {
	registryMu.Lock()
	defer registryMu.Unlock()
	return slices.Clone(registry)
}

// Checks lists the names of every registered check, in the order they run.
func Checks() []string {
	regs := registered()
	names := make([]string, len(regs))
	for i, r := range regs {
		names[i] = r.Name
	}
	return names
}

// newChecks builds every check of regs, each with its slot.
func newChecks(regs []Registration) []Check {
	cs := make([]Check, len(regs))
	for i, r := range regs {
		cs[i] = r.Build(i)
	}
	return cs
}

// PolicyOf returns the policy of type P that OrgPolicy.Checks holds for a
// check (p), or the zero P when it holds none; a value of another type is an
// error, so that a policy handed to the wrong check cannot pass unnoticed.
func PolicyOf[P any](name string, p any) (P, error) {
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

// Resolved is the resolver a check's registration built for an org, at the
// check's slot. The assertion to a concrete type is one comparison; nil
// when the org has no runtime for the check.
func Resolved[R any](v *Env, slot int) *R {
	r, _ := v.org.policies[slot].(*R)
	return r
}

// ResolvePolicy makes a Registration's Policy from a check's policy type P
// and the function that resolves it for the hot path: the policy
// OrgPolicy.Checks holds (PolicyOf: nil for the defaults, another type
// refused), resolved once when the Engine is built.
func ResolvePolicy[P, R any](name string, resolve func(P) (*R, error)) func(p any) (any, error) {
	return func(p any) (any, error) {
		pol, err := PolicyOf[P](name, p)
		if err != nil {
			return nil, err
		}
		return resolve(pol)
	}
}
