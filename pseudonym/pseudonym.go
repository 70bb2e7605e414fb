// Package pseudonym turns the identifiers of people into stable,
// non-reversible references, so that a reader can see that two alerts, two
// accesses or two rows of an evidence pack concern the same person without
// learning who. Slack and webhook messages, the web UI and evidence packs all
// use this one implementation with one key, so that a person has the same
// pseudonym everywhere.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Pseudonymizer computes pseudonyms with a keyed HMAC-SHA256. A nil
// Pseudonymizer, or one without a key, hides identifiers entirely: an
// unkeyed hash of a short identifier could be reversed by enumeration.
type Pseudonymizer struct {
	key []byte
}

// New returns a Pseudonymizer keyed by key (from configuration). An empty
// key yields one that hides every identifier.
func New(key []byte) *Pseudonymizer {
	return &Pseudonymizer{key: append([]byte(nil), key...)}
}

// Subject returns the pseudonym of the person whose record was accessed
// ("subj-" and 12 hex digits), or "" when it must be left out (no key, or no
// subject).
func (p *Pseudonymizer) Subject(subjectID string) string {
	return p.sum("subj-", subjectID)
}

// Actor returns the pseudonym of a worker's account ("acct-" and 12 hex
// digits), or "" when it must be left out. Accounts are hashed in a domain of
// their own, so that an account and a subject with the same identifier do
// not share a pseudonym.
func (p *Pseudonymizer) Actor(actorID string) string {
	if actorID == "" {
		return ""
	}
	return p.sum("acct-", "actor\x00"+actorID)
}

// Of returns the pseudonym of id as a subject when kind is "subject" and as
// an account otherwise: the form the evidence export takes.
func (p *Pseudonymizer) Of(kind, id string) string {
	if kind == "subject" {
		return p.Subject(id)
	}
	return p.Actor(id)
}

func (p *Pseudonymizer) sum(prefix, id string) string {
	if p == nil || len(p.key) == 0 || id == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(id))
	return prefix + hex.EncodeToString(m.Sum(nil))[:12]
}
