// Package event defines the access event of CONTRACT §1 — one access to a care
// record or one session action in a CRM/CMS — and its validation rules, and
// reads it from its wire formats (Decoder: native JSON and FHIR R4 AuditEvent)
// and writes the native one (Encode).
package event

import (
	"fmt"
	"time"
)

// Action is what the actor did.
type Action string

// The actions of CONTRACT §1.
const (
	ActionLogin       Action = "login"
	ActionLoginFailed Action = "login_failed"
	ActionLogout      Action = "logout"
	ActionLock        Action = "lock"
	ActionUnlock      Action = "unlock"
	ActionTimeout     Action = "timeout"
	ActionView        Action = "view"
	ActionSearch      Action = "search"
	ActionCreate      Action = "create"
	ActionUpdate      Action = "update"
	ActionDelete      Action = "delete"
	ActionExport      Action = "export"
	ActionPrint       Action = "print"
	ActionShare       Action = "share"
)

// actionKinds tells session actions from record actions; it is also the set of
// valid actions.
var actionKinds = map[Action]bool{ // true: record action (needs a subject)
	ActionLogin: false, ActionLoginFailed: false, ActionLogout: false,
	ActionLock: false, ActionUnlock: false, ActionTimeout: false,
	ActionView: true, ActionSearch: true, ActionCreate: true, ActionUpdate: true,
	ActionDelete: true, ActionExport: true, ActionPrint: true, ActionShare: true,
}

// Valid reports whether a is one of the contract's actions.
func (a Action) Valid() bool { _, ok := actionKinds[a]; return ok }

// IsRecordAction reports whether a touches a subject's record (view … share).
func (a Action) IsRecordAction() bool { return actionKinds[a] }

// Outcome is whether the action succeeded.
type Outcome string

// The outcomes of CONTRACT §1.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
)

// Actor is who acted. Org differs from the event's org for partner-agency users.
type Actor struct {
	ID   string `json:"id"`
	Role string `json:"role,omitempty"`
	Team string `json:"team,omitempty"`
	Org  string `json:"org,omitempty"`
	// Kind tells a member of staff (the default) from a patient, a relative
	// or a system acting through a portal or an interface: a field beside
	// CONTRACT §1, absent for staff.
	Kind ActorKind `json:"kind,omitempty"`
}

// ActorKind is what kind of party an actor is.
type ActorKind string

// The actor kinds. Staff is written as absent (or "staff", which Validate
// turns into absent), so that events of the contract need no kind.
const (
	ActorStaff         ActorKind = ""
	ActorPatient       ActorKind = "patient"
	ActorRelatedPerson ActorKind = "related-person"
	ActorSystem        ActorKind = "system"
	actorStaffName     ActorKind = "staff"
)

// IsStaff reports whether k is a member of staff: only staff access is
// judged by the checks.
func (k ActorKind) IsStaff() bool { return k == ActorStaff }

// Subject is the person whose record was touched.
type Subject struct {
	ID          string   `json:"id,omitempty"`
	Sensitivity []string `json:"sensitivity,omitempty"`
}

// Record is the part of the subject's file that was touched.
type Record struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
}

// Session is the login session and device the action came from.
type Session struct {
	ID     string `json:"id,omitempty"`
	Device string `json:"device,omitempty"`
	IP     string `json:"ip,omitempty"`
	// MFA is whether this login used a second factor; nil when not reported.
	MFA *bool `json:"mfa,omitempty"`
}

// Event is one access event (CONTRACT §1).
type Event struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Org     string    `json:"org"`
	System  string    `json:"system"`
	Action  Action    `json:"action"`
	Actor   Actor     `json:"actor"`
	Subject Subject   `json:"subject,omitzero"`
	Record  Record    `json:"record,omitzero"`
	Session Session   `json:"session,omitzero"`
	Outcome Outcome   `json:"outcome"`
}

// Key identifies an event: the same key seen again is the same event.
type Key struct{ Org, System, ID string }

// Key returns the identity of e.
func (e *Event) Key() Key { return Key{e.Org, e.System, e.ID} }

// Limits that keep a hostile producer from making the monitor store or index
// arbitrary amounts of data through one field.
const (
	MaxIDLen               = 256
	MaxSensitivityLen      = 32
	MaxSensitivityEntryLen = 64
)

// Reason is why an event was rejected; the fixed set keeps metric label
// values bounded and dead-letter headers predictable.
type Reason string

// Rejection reasons.
const (
	ReasonMalformed     Reason = "malformed"      // not JSON, or the wrong JSON types
	ReasonTooLarge      Reason = "too_large"      // bigger than the configured limit
	ReasonMissingField  Reason = "missing_field"  // a required field is absent
	ReasonInvalidField  Reason = "invalid_field"  // a field has a value the contract does not allow
	ReasonUnknownAction Reason = "unknown_action" // action not in CONTRACT §1
	ReasonUnsupported   Reason = "unsupported"    // a FHIR resource we cannot map
	ReasonUnknownOrg    Reason = "unknown_org"    // org not configured
	// ReasonEventTimeOutOfRange: time is outside the accepted window
	// around now (TimeWindow).
	ReasonEventTimeOutOfRange Reason = "event_time_out_of_range"
	// ReasonConflictingDuplicate: the key of an event already kept, with
	// other content (Diff); the first is kept.
	ReasonConflictingDuplicate Reason = "conflicting_duplicate"
)

// Reasons lists every Reason, for pre-initialising metric label sets.
var Reasons = []Reason{ReasonMalformed, ReasonTooLarge, ReasonMissingField, ReasonInvalidField, ReasonUnknownAction, ReasonUnsupported, ReasonUnknownOrg,
	ReasonEventTimeOutOfRange, ReasonConflictingDuplicate}

// Error is a rejected event: a fixed Reason and a human-readable detail that
// names the field (never its value, which may be personal data).
type Error struct {
	Reason Reason
	Detail string
	// Path is the FHIR path of the offending element
	// ("AuditEvent.agent[0].who", "Bundle.entry[2].resource.id"); empty for
	// native events and for rules not tied to one element.
	Path string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Reason, e.Detail) }

func reject(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Validate applies CONTRACT §1 and fills defaults (outcome success). It
// returns an *Error on the first broken rule.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return reject(ReasonMissingField, "id is required")
	case e.Time.IsZero():
		return reject(ReasonMissingField, "time is required")
	case e.Org == "":
		return reject(ReasonMissingField, "org is required")
	case e.System == "":
		return reject(ReasonMissingField, "system is required")
	case e.Action == "":
		return reject(ReasonMissingField, "action is required")
	case e.Actor.ID == "":
		return reject(ReasonMissingField, "actor.id is required")
	}
	if !e.Action.Valid() {
		return reject(ReasonUnknownAction, "action is not one of the contract's actions")
	}
	switch e.Outcome {
	case "":
		e.Outcome = OutcomeSuccess
	case OutcomeSuccess, OutcomeFailure:
	default:
		return reject(ReasonInvalidField, "outcome must be success or failure")
	}
	// A search (a query with no patient) and a failure (a refused attempt)
	// are accesses without a subject (CONTRACT §1).
	if e.Action.IsRecordAction() && e.Subject.ID == "" && e.Action != ActionSearch && e.Outcome != OutcomeFailure {
		return reject(ReasonMissingField, "subject.id is required for a successful %s", e.Action)
	}
	switch e.Actor.Kind {
	case actorStaffName:
		e.Actor.Kind = ActorStaff
	case ActorStaff, ActorPatient, ActorRelatedPerson, ActorSystem:
	default:
		return reject(ReasonInvalidField, "actor.kind must be staff, patient, related-person or system")
	}
	// An array, not a map: Validate is on the hot path and must not allocate.
	fields := [...]struct{ name, v string }{
		{"id", e.ID}, {"org", e.Org}, {"system", e.System}, {"actor.id", e.Actor.ID},
		{"actor.role", e.Actor.Role}, {"actor.team", e.Actor.Team}, {"actor.org", e.Actor.Org},
		{"subject.id", e.Subject.ID}, {"record.type", e.Record.Type}, {"record.id", e.Record.ID},
		{"session.id", e.Session.ID}, {"session.device", e.Session.Device}, {"session.ip", e.Session.IP},
	}
	for _, f := range fields {
		if len(f.v) > MaxIDLen {
			return reject(ReasonInvalidField, "%s is longer than %d bytes", f.name, MaxIDLen)
		}
	}
	if len(e.Subject.Sensitivity) > MaxSensitivityLen {
		return reject(ReasonInvalidField, "subject.sensitivity has more than %d entries", MaxSensitivityLen)
	}
	for _, s := range e.Subject.Sensitivity {
		if len(s) > MaxSensitivityEntryLen {
			return reject(ReasonInvalidField, "subject.sensitivity has an entry longer than %d bytes", MaxSensitivityEntryLen)
		}
	}
	return nil
}
