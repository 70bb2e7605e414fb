// Package reference holds the reference data of CONTRACT §2 — staff, care
// relationships, rosters, absences, devices and sharing agreements — that the
// checks judge access events against, and, beside it, the optional local
// references of the people whose records are opened (subjects.csv) that the
// web UI shows to those entitled to them.
package reference

import "time"

// Staff is one account that may log in (staff.csv). It is keyed by (Org,
// ActorID): the same actor id in two orgs is two people.
type Staff struct {
	ActorID    string
	Org        string
	Role       string
	Team       string
	External   bool
	ActiveFrom time.Time
	ActiveTo   time.Time // zero: open-ended
}

// Relationship is a business need to open a subject's record
// (relationships.csv). Exactly one of ActorID and Team is set.
type Relationship struct {
	// Org, when set, confines the row to that org's events; empty: the row
	// applies to its actor or team in every org (CONTRACT §2).
	Org       string `json:",omitempty"`
	ActorID   string
	Team      string
	SubjectID string
	Relation  string
	ValidFrom time.Time
	ValidTo   time.Time // zero: open-ended
}

// Shift is rostered working time (shifts.csv).
type Shift struct {
	Org     string `json:",omitempty"` // as Relationship.Org
	ActorID string
	Start   time.Time
	End     time.Time
}

// Absence is time the holder is not at work (absences.csv).
type Absence struct {
	Org     string `json:",omitempty"` // as Relationship.Org
	ActorID string
	Start   time.Time
	End     time.Time // zero: open-ended
	Kind    string    // leave, sickness, training …
}

// Device kinds of CONTRACT §2.
const (
	DeviceSharedTablet = "shared-tablet"
	DeviceDesktop      = "desktop"
	DeviceLaptop       = "laptop"
	DeviceMobile       = "mobile"
)

// Device is a terminal records are opened from (devices.csv), keyed by
// (Org, DeviceID).
type Device struct {
	DeviceID   string
	Org        string
	Kind       string
	AssignedTo string // an actor id, a team, or empty
	Location   string
}

// SharingAgreement bounds what a partner agency may do (sharing_agreements.csv).
// A list holding "*" allows anything.
type SharingAgreement struct {
	PartnerOrg  string
	Org         string
	RecordTypes []string
	Actions     []string
	ValidFrom   time.Time
	ValidTo     time.Time // zero: open-ended
}

// Subject is how an org knows one person locally (subjects.csv, an
// addition beside CONTRACT §2): a room or case reference ("WC-R14") or a
// display name, keyed by (Org, SubjectID). It is personal data that the
// checks never need: only the web UI shows it, and only to a viewer
// entitled to it (docs/configuration.md).
type Subject struct {
	Org        string
	SubjectID  string
	DisplayRef string
}

// Data is one complete set of reference data.
type Data struct {
	Staff             []Staff
	Relationships     []Relationship
	Shifts            []Shift
	Absences          []Absence
	Devices           []Device
	SharingAgreements []SharingAgreement
	// Subjects is never serialised with the rest (json:"-"): the store's
	// reference snapshots, and so anything built from them, never hold a
	// display reference, and the data's content hash (store.ReferenceID)
	// is what the checks judge by.
	Subjects []Subject `json:"-"`
}
