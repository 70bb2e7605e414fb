package event

import (
	"net/netip"
	"slices"
)

// Diff names the fields of CONTRACT §1 in which a and b differ, in the
// contract's order, or returns nil when they are the same event. The
// comparison is of what the fields mean, not how they were written: times
// are compared as instants (any offset), an absent outcome is success, an
// absent actor.org is the event's org, subject.sensitivity is a set (order
// and repeats do not count), and session.ip is compared as an address when
// both sides parse as one. Two encodings of one event therefore never
// differ, whatever their bytes, and an event read back from a store equals
// the one written.
//
// Only field names are returned, never values: a conflict is reported in
// logs, dead letters and alerts, where personal data must not go.
func Diff(a, b *Event) []string {
	var out []string
	add := func(differ bool, name string) {
		if differ {
			out = append(out, name)
		}
	}
	add(a.ID != b.ID, "id")
	add(!a.Time.Equal(b.Time), "time")
	add(a.Org != b.Org, "org")
	add(a.System != b.System, "system")
	add(a.Action != b.Action, "action")
	add(a.Actor.ID != b.Actor.ID, "actor.id")
	add(a.Actor.Role != b.Actor.Role, "actor.role")
	add(a.Actor.Team != b.Actor.Team, "actor.team")
	add(actorOrg(a) != actorOrg(b), "actor.org")
	add(actorKindOf(a) != actorKindOf(b), "actor.kind")
	add(a.Subject.ID != b.Subject.ID, "subject.id")
	add(!slices.Equal(sensitivitySet(a.Subject.Sensitivity), sensitivitySet(b.Subject.Sensitivity)), "subject.sensitivity")
	add(a.Record.Type != b.Record.Type, "record.type")
	add(a.Record.ID != b.Record.ID, "record.id")
	add(a.Session.ID != b.Session.ID, "session.id")
	add(a.Session.Device != b.Session.Device, "session.device")
	add(!sameIP(a.Session.IP, b.Session.IP), "session.ip")
	add(!sameMFA(a.Session.MFA, b.Session.MFA), "session.mfa")
	add(outcome(a) != outcome(b), "outcome")
	return out
}

func actorOrg(e *Event) string {
	if e.Actor.Org == "" {
		return e.Org
	}
	return e.Actor.Org
}

// actorKindOf reads "staff" as absent, as Validate writes it.
func actorKindOf(e *Event) ActorKind {
	if e.Actor.Kind == actorStaffName {
		return ActorStaff
	}
	return e.Actor.Kind
}

func outcome(e *Event) Outcome {
	if e.Outcome == "" {
		return OutcomeSuccess
	}
	return e.Outcome
}

func sensitivitySet(s []string) []string {
	if len(s) < 2 {
		return s
	}
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

func sameIP(a, b string) bool {
	if a == b {
		return true
	}
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	return errA == nil && errB == nil && pa.Unmap() == pb.Unmap()
}

func sameMFA(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
