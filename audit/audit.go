// Package audit is the monitor's audit trail: every change a person makes
// (a triage decision, a silence, a routine-audit review, a re-send, an
// evidence export with identities) as one entry, written by the store in the
// same transaction as the change.
package audit

import "time"

// Entry is one change made by a person: who, what, when.
type Entry struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // e.g. "silence.create", "silence.expire", "triage.explained"
	Object string    `json:"object"` // the silence or alert id
	Detail string    `json:"detail"` // JSON of the change; never subject data
}
