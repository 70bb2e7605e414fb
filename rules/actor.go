package rules

import (
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// ActorGroups returns the staff row of actor a in org (known false when
// org's roster has none) and the role and team the checks judge a by: the
// roster's where it gives them, else the event's. Every check resolves its
// policy levels by these, so they are worked out the same way everywhere.
func ActorGroups(r Roster, org string, a *event.Actor) (role, team string, st reference.Staff, known bool) {
	role, team = a.Role, a.Team
	st, known = r.Staff(org, a.ID)
	if known {
		if st.Role != "" {
			role = st.Role
		}
		if st.Team != "" {
			team = st.Team
		}
	}
	return role, team, st, known
}

// resolved is what every check asks of the reference data about the event
// being judged, looked up once for all of them before they run
// (Engine.resolveQueued): with a county's roster the checks' own lookups
// (one each, into maps too large for the cache) were a sixth of judging.
type resolved struct {
	role, team  string
	staff       reference.Staff
	known       bool
	device      reference.Device
	deviceKnown bool
}

func resolve(r Roster, ev *event.Event) resolved {
	var x resolved
	x.role, x.team, x.staff, x.known = ActorGroups(r, ev.ActorOrg(), &ev.Actor)
	if ev.Session.Device != "" {
		x.device, x.deviceKnown = r.Device(ev.Org, ev.Session.Device)
	}
	return x
}

// ActorGroups is ActorGroups(v.Roster(), ev.ActorOrg(), &ev.Actor): the
// staff row, role and team of ev's actor, resolved once for every check
// when ev is the event being judged.
func (v *Env) ActorGroups(ev *event.Event) (role, team string, st reference.Staff, known bool) {
	if c := v.cur; c != nil && c.ev == ev {
		return c.role, c.team, c.staff, c.known
	}
	return ActorGroups(v.roster, ev.ActorOrg(), &ev.Actor)
}

// SessionDevice is v.Roster().Device(ev.Org, ev.Session.Device), resolved
// once for every check when ev is the event being judged.
func (v *Env) SessionDevice(ev *event.Event) (reference.Device, bool) {
	if c := v.cur; c != nil && c.ev == ev {
		return c.device, c.deviceKnown
	}
	if ev.Session.Device == "" {
		return reference.Device{}, false
	}
	return v.roster.Device(ev.Org, ev.Session.Device)
}
