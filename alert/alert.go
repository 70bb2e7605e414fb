// Package alert defines the alert of CONTRACT §3: one episode of behaviour that
// a check found, tied to the DPIA risks it evidences.
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Severity orders alerts for triage.
type Severity string

// Severities, lowest first.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Severities lists every Severity, lowest first (also the fixed label set).
var Severities = []Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// Rank is the position of s in Severities, or -1.
func (s Severity) Rank() int {
	for i, v := range Severities {
		if v == s {
			return i
		}
	}
	return -1
}

// MaxEventIDs caps Alert.EventIDs so that a long episode cannot grow one row
// without bound; EventCount keeps the true total.
const MaxEventIDs = 200

// Alert is one episode: the same actor, check and pattern, events close in
// time. It grows (LastSeen, EventIDs) while the episode continues.
type Alert struct {
	ID          string    `json:"id"`
	Check       string    `json:"check"`
	Pattern     string    `json:"pattern"`
	Severity    Severity  `json:"severity"`
	Org         string    `json:"org"`
	ActorID     string    `json:"actor_id"`
	SubjectID   string    `json:"subject_id"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	EventIDs    []string  `json:"event_ids"`
	DPIA        string    `json:"dpia"`
	Risks       []string  `json:"risks"`
	Explanation string    `json:"explanation"`

	// Beside the contract.
	EventCount int      `json:"event_count"`
	RiskTitles []string `json:"risk_titles,omitempty"` // the DPIA's own words, parallel to Risks
	Mitigation string   `json:"mitigation,omitempty"`  // the DPIA mitigation this alert evidences
	// ReferenceID names the reference data the check judged against (the
	// content hash store.ReferenceID gives it, also a snapshot's ID), so
	// that the alert can show what that data said. Empty when the checks ran
	// without named reference data, and on alerts stored before it existed.
	ReferenceID string `json:"reference_id,omitempty"`
	// Version grows by one each time the stored alert changes; the outbox
	// delivers each version to each receiver at most once.
	Version int64 `json:"-"`
}

// ID derives a deterministic alert id: the same evidence (org, check,
// pattern, actor, subject and the event that opened the episode) always
// yields the same id, so replays and restarts update one alert rather than
// raise a second.
func ID(org, check, pattern, actorID, subjectID, system, firstEventID string) string {
	h := sha256.New()
	for _, s := range []string{org, check, pattern, actorID, subjectID, system, firstEventID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "a-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// AddEvent records id in the episode, keeping EventIDs bounded and unique.
// It reports whether the event was new to this alert.
func (a *Alert) AddEvent(id string, at time.Time) bool {
	for _, e := range a.EventIDs {
		if e == id {
			return false
		}
	}
	a.EventCount++
	if len(a.EventIDs) < MaxEventIDs {
		a.EventIDs = append(a.EventIDs, id)
	}
	if a.FirstSeen.IsZero() || at.Before(a.FirstSeen) {
		a.FirstSeen = at
	}
	if at.After(a.LastSeen) {
		a.LastSeen = at
	}
	return true
}

// Summary is a short, non-identifying one-line rendering for logs: no
// subject, no explanation (which may name a record type).
func (a *Alert) Summary() string {
	return strings.Join([]string{a.Check, a.Pattern, string(a.Severity), a.Org, a.DPIA, strings.Join(a.Risks, ",")}, " ")
}
