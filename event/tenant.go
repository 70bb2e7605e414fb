package event

// ActorOrg is the org whose roster the actor belongs to: actor.org, or the
// event's org when the actor's is not given (CONTRACT §2). A partner
// agency's user is looked up in the partner's staff list, never in the
// org whose records they opened.
func (e *Event) ActorOrg() string {
	if e.Actor.Org != "" {
		return e.Actor.Org
	}
	return e.Org
}
