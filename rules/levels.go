package rules

import "fmt"

// Levels holds a check's policy resolved for every combination of the roles
// and teams its configuration overrides, built once so that the hot path
// only reads. Knobs K are given at three Levels — the org's, a role's, a
// team's — and merged least specific first (org, role, team) by the
// check's resolve function: a team's local arrangement beats what applies
// to a role across teams.
type Levels[P any] struct {
	roles, teams map[string]bool
	byKey        map[[2]string]*P // [role or "", team or ""]
}

// NewLevels resolves base with each override of roles and teams.
func NewLevels[K, P any](base K, roles, teams map[string]K, resolve func(levels []K) (*P, error)) (*Levels[P], error) {
	l := &Levels[P]{roles: map[string]bool{}, teams: map[string]bool{}, byKey: map[[2]string]*P{}}
	rs, ts := []string{""}, []string{""}
	for _, k := range sortedKeys(roles) {
		if k == "" {
			return nil, fmt.Errorf("role override with an empty role")
		}
		l.roles[k] = true
		rs = append(rs, k)
	}
	for _, k := range sortedKeys(teams) {
		if k == "" {
			return nil, fmt.Errorf("team override with an empty team")
		}
		l.teams[k] = true
		ts = append(ts, k)
	}
	for _, role := range rs {
		for _, team := range ts {
			ks := []K{base}
			if role != "" {
				ks = append(ks, roles[role])
			}
			if team != "" {
				ks = append(ks, teams[team])
			}
			p, err := resolve(ks)
			if err != nil {
				where := "org"
				switch {
				case team != "":
					where = "team " + team
				case role != "":
					where = "role " + role
				}
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			l.byKey[[2]string{role, team}] = p
		}
	}
	return l, nil
}

// Get returns the policy of an actor of role and team; a role or team with
// no override of its own takes the org's.
func (l *Levels[P]) Get(role, team string) *P {
	if !l.roles[role] {
		role = ""
	}
	if !l.teams[team] {
		team = ""
	}
	return l.byKey[[2]string{role, team}]
}

// All calls fn with every resolved policy.
func (l *Levels[P]) All(fn func(*P)) {
	for _, p := range l.byKey {
		fn(p)
	}
}
