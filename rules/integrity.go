package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// The feed-integrity check: the access log itself is not what it should be.
// Its one pattern is a conflicting duplicate: an event republished with the
// id of a kept one but other content. The first is kept and the second
// dead-lettered; were the second dropped in silence (as a plain duplicate
// is), an access could hide behind a reused id.
const (
	CheckFeedIntegrity          = "feed-integrity"
	PatternConflictingDuplicate = "conflicting-duplicate"
)

// ConflictAlert is the alert for one conflicting duplicate, the same in the
// daemon and in a replay. It names the org, system, event id and the fields
// that differ, never their values (they may be personal data), and no actor
// or subject: who the event is about is what is in doubt. dpiaID is the
// org's DPIA. Neither DPIA dpiawatch ships names a risk to the integrity of
// the access log, so the alert cites no risk and says so rather than filing
// it under an unrelated one.
//
// Its id covers the event's key and the content of both versions, so a
// redelivery raises no second alert and a third, different version a new
// one.
func ConflictAlert(c store.Conflict, dpiaID string) alert.Alert {
	first, last := c.Kept.Time, c.Event.Time
	if last.Before(first) {
		first, last = last, first
	}
	return alert.Alert{
		ID:          alert.ID(c.Event.Org, CheckFeedIntegrity, PatternConflictingDuplicate, "", "", c.Event.System, c.Event.ID+"\x00"+ConflictDigest(c)),
		Check:       CheckFeedIntegrity,
		Pattern:     PatternConflictingDuplicate,
		Severity:    alert.SeverityHigh,
		Org:         c.Event.Org,
		FirstSeen:   first.UTC(),
		LastSeen:    last.UTC(),
		EventIDs:    []string{c.Event.ID},
		EventCount:  1,
		DPIA:        dpiaID,
		Risks:       []string{},
		Explanation: fmt.Sprintf("Event %s from %s was sent again with the same id but a different %s: the first was kept and the second set aside as a dead letter. A broken producer or tampering with the access log; no risk in DPIA %s covers the integrity of the access log.", c.Event.ID, c.Event.System, strings.Join(c.Fields, ", "), dpiaID),
	}
}

// ConflictDigest names the content of both versions of a conflict: the same
// pair of events, however encoded, has the same digest.
func ConflictDigest(c store.Conflict) string {
	h := sha256.New()
	for _, e := range [...]*event.Event{&c.Kept, &c.Event} {
		n := normalised(e)
		b, _ := event.Encode(&n) // a decoded event always encodes
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// normalised is e written one way for each meaning (see event.Diff).
func normalised(e *event.Event) event.Event {
	n := *e
	n.Time = n.Time.UTC()
	if n.Outcome == "" {
		n.Outcome = event.OutcomeSuccess
	}
	if n.Actor.Org == "" {
		n.Actor.Org = n.Org
	}
	if len(n.Subject.Sensitivity) > 0 {
		n.Subject.Sensitivity = slices.Compact(slices.Sorted(slices.Values(n.Subject.Sensitivity)))
	}
	if ip, err := netip.ParseAddr(n.Session.IP); err == nil {
		n.Session.IP = ip.Unmap().String()
	}
	return n
}
