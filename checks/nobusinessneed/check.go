package nobusinessneed

import (
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
)

// The no-business-need check's patterns (CONTRACT §3); its name is Name.
const (

	// No relationship of the actor or their team with the subject is in
	// force, and none has ended (one may start later).
	PatternNoRelationship = "no-relationship"
	// A relationship existed but ended before the access.
	PatternRelationshipEnded = "relationship-ended"
	// A partner-agency user did what their sharing agreement does not allow.
	PatternOutsideSharingAgreement = "outside-sharing-agreement"
)

// Knobs are the settings of the no-business-need check at one
// level (org, role or team). A nil or zero field inherits from the less
// specific level, and in the end takes the default.
type Knobs struct {
	// Exempt actors are not judged: a role whose duty is to open any record
	// (an IG auditor, a duty desk). Default false.
	Exempt *bool
	// AfterEnd lets a relationship count for this long after it ended
	// (writing up a closed case). Default 0: CONTRACT §2, an ended
	// relationship does not count.
	AfterEnd *time.Duration
	// EpisodeGap: events this close in time to an episode join it. Default 1h.
	EpisodeGap time.Duration
	// Severity is the base severity when the DPIA does not score the risks
	// the check evidences; raised one step for a sensitive subject. Default
	// medium.
	Severity alert.Severity
}

// Policy is the check's settings for one org, with overrides
// for actors of a role or a team; each knob resolves most specific first:
// team, role, org, default.
type Policy struct {
	Knobs
	Roles map[string]Knobs
	Teams map[string]Knobs
}

type nbnPolicy struct {
	exempt   bool
	afterEnd time.Duration
	gap      time.Duration
	severity alert.Severity
}

// nbnResolver is the no-business-need policy by role and team.
type nbnResolver = rules.Levels[nbnPolicy]

func newNBNResolver(p Policy) (*nbnResolver, error) {
	return rules.NewLevels(p.Knobs, p.Roles, p.Teams, resolveNBN)
}

// resolveNBN merges levels, least specific first, over the defaults.
func resolveNBN(levels []Knobs) (*nbnPolicy, error) {
	pol := &nbnPolicy{gap: rules.DefaultEpisodeGap, severity: alert.SeverityMedium}
	for _, k := range levels {
		if k.Exempt != nil {
			pol.exempt = *k.Exempt
		}
		if k.AfterEnd != nil {
			pol.afterEnd = *k.AfterEnd
		}
		if k.EpisodeGap != 0 {
			pol.gap = k.EpisodeGap
		}
		if k.Severity != "" {
			pol.severity = k.Severity
		}
	}
	switch {
	case pol.afterEnd < 0:
		return nil, fmt.Errorf("after-end allowance must not be negative")
	case pol.gap < 0:
		return nil, fmt.Errorf("episode gap must not be negative")
	case pol.severity.Rank() < 0:
		return nil, fmt.Errorf("unknown severity %q", pol.severity)
	}
	return pol, nil
}

// noBusinessNeed is the no-business-need check (CONTRACT §2, issue 3): a
// successful record action needs a relationship of the actor, or of their
// team, with the subject, in force at the event time; a partner-agency user
// is also bounded by their organisation's sharing agreement.
//
// Episodes are keyed by actor and pattern, not by subject (CONTRACT §3): a
// worker browsing five records they have no business with is one alert of
// five events, its subject the first one opened.
type noBusinessNeed struct{ slot int }

func (noBusinessNeed) Name() string { return Name }

// Evaluate judges a successful record action.
func (c noBusinessNeed) Evaluate(ev *event.Event, v *rules.Env, eps *rules.Episodes) bool {
	if !ev.Action.IsRecordAction() || ev.Outcome == event.OutcomeFailure || ev.Subject.ID == "" {
		return false
	}
	// Without relationship rows there is nothing to judge against: every
	// access would be an alert. The reference data is incomplete, not the
	// staff at fault.
	if !v.Roster().HasRelationships(ev.Org) {
		return false
	}
	actor, subject, t := ev.Actor.ID, ev.Subject.ID, ev.Time
	role, team, st, known := v.ActorGroups(ev)
	p := rules.Resolved[nbnResolver](v, c.slot).Get(role, team)
	if p.exempt {
		return true
	}
	loc := v.Location()

	if !v.Roster().HasRelationship(ev.Org, actor, team, subject, t) {
		rel, found := v.Roster().NearestRelationship(ev.Org, actor, team, subject, t)
		ended := found && !rel.ValidTo.IsZero() && !rel.ValidTo.After(t)
		if !ended || t.Sub(rel.ValidTo) >= p.afterEnd {
			pattern := PatternNoRelationship
			if ended {
				pattern = PatternRelationshipEnded
			}
			eps.Add(v, ev, rules.Finding{Pattern: pattern, Severity: p.severity, Gap: p.gap, Lead: func() string {
				why := "with no relationship to the person (theirs or their team's) in force"
				if found {
					why += "; nearest: " + relationText(rel, actor, t, loc)
				}
				return rules.Lead(ev, role, team, t.In(loc), why)
			}})
		}
	}

	partner := ev.Actor.Org
	external := known && st.External
	if (partner == "" || partner == ev.Org) && external && st.Org != "" {
		partner = st.Org
	}
	if (partner != "" && partner != ev.Org) || external {
		if _, ok := v.Roster().SharingAgreementFor(partner, ev.Org, ev.Record.Type, string(ev.Action), t); !ok {
			eps.Add(v, ev, rules.Finding{Pattern: PatternOutsideSharingAgreement, Severity: p.severity, Gap: p.gap, Lead: func() string {
				who := "their agency"
				if rules.PlainWord(partner) {
					who = partner
				}
				return rules.Lead(ev, role, team, t.In(loc), "which no information sharing agreement of "+who+" in force allows")
			}})
		}
	}
	return true
}

// relationText describes the nearest relationship, e.g. "caseload of team
// webster-court until 2 Mar 2026"; labels that are not plain words are left
// out.
func relationText(r reference.Relationship, actor string, t time.Time, loc *time.Location) string {
	s := "a relationship"
	if rules.PlainWord(r.Relation) {
		s = r.Relation
	}
	switch {
	case r.ActorID == actor:
		s = "their own " + s
	case rules.PlainWord(r.Team):
		s += " of team " + r.Team
	default:
		s += " of their team"
	}
	if !r.ValidTo.IsZero() && !r.ValidTo.After(t) {
		return s + " until " + rules.DateText(r.ValidTo.In(loc))
	}
	return s + " from " + rules.DateText(r.ValidFrom.In(loc))
}
