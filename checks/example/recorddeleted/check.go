package recorddeleted

import (
	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Knobs are the check's settings at one level (org, role or team); a zero
// field inherits from the less specific level.
type Knobs struct {
	Exempt   *bool
	Severity alert.Severity // default medium
}

// Policy is the check's policy for one org: what rules.OrgPolicy.Checks
// holds under its name.
type Policy struct {
	Knobs
	Roles, Teams map[string]Knobs
}

// resolved is what the hot path reads for one (role, team).
type resolved struct {
	exempt   bool
	severity alert.Severity
}

type resolver = rules.Levels[resolved]

// newResolver merges the levels of p once, when the engine is built.
func newResolver(p Policy) (*resolver, error) {
	return rules.NewLevels(p.Knobs, p.Roles, p.Teams, func(ls []Knobs) (*resolved, error) {
		r := &resolved{severity: alert.SeverityMedium}
		for _, k := range ls {
			if k.Exempt != nil {
				r.exempt = *k.Exempt
			}
			if k.Severity != "" {
				r.severity = k.Severity
			}
		}
		return r, nil
	})
}

// recordDeleted is the check; slot is where its resolver is in each org's
// runtime.
type recordDeleted struct{ slot int }

func (recordDeleted) Name() string { return Name }

// Evaluate reports a successful delete by an actor who is not exempt.
func (c recordDeleted) Evaluate(ev *event.Event, v *rules.Env, eps *rules.Episodes) bool {
	if ev.Action != event.ActionDelete || ev.Outcome == event.OutcomeFailure {
		return false
	}
	p := rules.Resolved[resolver](v, c.slot).Get(ev.Actor.Role, ev.Actor.Team)
	if !p.exempt {
		eps.Add(v, ev, rules.Finding{Pattern: Name, Severity: p.severity, Gap: rules.DefaultEpisodeGap,
			Lead: func() string {
				return rules.Lead(ev, ev.Actor.Role, ev.Actor.Team, ev.Time.In(v.Location()), "who deleted a record")
			}})
	}
	return true
}
