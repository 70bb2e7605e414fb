// Package checks is the registry of dpiawatch's DPIA mitigation checks.
//
// A check is one package under checks/ that owns everything about it: its
// configuration section (a config.CheckSection: its YAML type, positioned
// validation, defaults and the engine policy of each org) and the check
// itself (a rules.Check, its policy type and resolver). It describes itself
// as a Check value, and package checks/install registers every shipped
// check with Register, one line each; Register feeds both the
// configuration's registry (the keys under checks:) and the engine's (the
// checks every Engine runs). Nothing else names a check: adding one is one
// package plus one line in checks/install (docs/checks/adding-a-check.md).
package checks

import (
	"fmt"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Check is one check as both registries know it.
type Check struct {
	// Name is the check's stable name (CONTRACT §3): its key under checks:
	// and the check field of its alerts.
	Name string
	// Patterns are the patterns its alerts carry (CONTRACT §3), at least
	// one: what checks.<Name>.pattern_evidences may map to DPIA risks.
	Patterns []string
	// Section returns a new, empty configuration section (a pointer) for
	// the configuration to decode checks.<Name> into.
	Section func() config.CheckSection
	// Build and Policy are the engine's side (rules.Registration): Build
	// makes the check, which finds its resolved policy at slot; Policy
	// turns what its section's EnginePolicy returned for an org into what
	// the hot path reads.
	Build  func(slot int) rules.Check
	Policy func(p any) (any, error)
}

// Register registers c with the configuration and the engine. Call it
// from an init function, before any configuration is loaded or engine
// built; it panics on an incomplete Check or a name registered twice.
func Register(c Check) {
	rules.Register(rules.Registration{Name: c.Name, Build: c.Build, Policy: c.Policy})
	config.RegisterCheck(c.Name, c.Patterns, c.Section)
}

// Targeted is a configured override: whom it applies to, an org (empty:
// every org), a role or a team.
type Targeted interface {
	Target() (org, role, team string)
}

// PlaceOverrides applies the overrides of a check (name) that concern org
// to its policy, in order, each at its level — a role's knobs, a team's, or
// the org's own (base) — by apply, which merges one override into the knobs
// it is given. An override of another org is skipped. An override naming
// both a role and a team is an error: a knob is resolved at one level only
// (configuration validation refuses it first, with its position:
// config.Config.ValidateOverrideTarget).
func PlaceOverrides[K any, O Targeted](name, org string, ovs []O, base *K, roles, teams map[string]K, apply func(K, O) K) error {
	for _, ov := range ovs {
		ovOrg, role, team := ov.Target()
		switch {
		case ovOrg != "" && ovOrg != org:
		case role != "" && team != "":
			return fmt.Errorf("checks.%s.overrides: an override for role %q and team %q at once is not supported; use one of them", name, role, team)
		case role != "":
			roles[role] = apply(roles[role], ov)
		case team != "":
			teams[team] = apply(teams[team], ov)
		default:
			*base = apply(*base, ov)
		}
	}
	return nil
}

// Severity is a configured severity as the engine takes it; validation has
// refused unknown ones, and "" leaves the engine's default.
func Severity(s string) alert.Severity { return alert.Severity(s) }

// SectionOf returns the section of the named check in cfg as the check's
// own type S, or the zero S when cfg has no such section.
func SectionOf[S config.CheckSection](cfg *config.Config, name string) S {
	s, _ := cfg.Checks.Section(name)
	sec, _ := s.(S)
	return sec
}
