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
