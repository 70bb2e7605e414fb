package kafkaref

import (
	"fmt"
	"time"

	json "github.com/goccy/go-json/v2"

	"github.com/dpiawatch/dpiawatch/reference"
)

// Message is one row as it goes on its kind's topic.
type Message struct {
	Kind  Kind
	Key   []byte
	Value []byte // nil: a tombstone
}

// Messages calls fn with every row of d as a message of its kind, kinds in
// CONTRACT §2 order: the producer side of the loader, used by `dpiawatch
// simulate --reference-kafka` and the tests. Keys follow Key.
func Messages(d *reference.Data, fn func(Message) error) error {
	emit := func(k Kind, key []byte, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("kafkaref: encode %s row: %w", k, err)
		}
		return fn(Message{Kind: k, Key: key, Value: b})
	}
	for _, s := range d.Staff {
		if err := emit(KindStaff, StaffKey(s), staffOut{s.ActorID, s.Org, s.Role, s.Team, s.External, ftime(s.ActiveFrom), ftime(s.ActiveTo)}); err != nil {
			return err
		}
	}
	for _, r := range d.Relationships {
		if err := emit(KindRelationships, RelationshipKey(r), relationshipWire{r.ActorID, r.Team, r.SubjectID, r.Relation, ftime(r.ValidFrom), ftime(r.ValidTo), r.Org}); err != nil {
			return err
		}
	}
	for _, s := range d.Shifts {
		if err := emit(KindShifts, ShiftKey(s), shiftOut{s.ActorID, ftime(s.Start), ftime(s.End), s.Org}); err != nil {
			return err
		}
	}
	for _, a := range d.Absences {
		if err := emit(KindAbsences, AbsenceKey(a), intervalWire{a.ActorID, ftime(a.Start), ftime(a.End), a.Kind, a.Org}); err != nil {
			return err
		}
	}
	for _, v := range d.Devices {
		if err := emit(KindDevices, DeviceKey(v), deviceWire{v.DeviceID, v.Org, v.Kind, v.AssignedTo, v.Location}); err != nil {
			return err
		}
	}
	for _, a := range d.SharingAgreements {
		out := sharingOut{a.PartnerOrg, a.Org, a.RecordTypes, a.Actions, ftime(a.ValidFrom), ftime(a.ValidTo)}
		if out.RecordTypes == nil {
			out.RecordTypes = []string{}
		}
		if out.Actions == nil {
			out.Actions = []string{}
		}
		if err := emit(KindSharingAgreements, SharingAgreementKey(a), out); err != nil {
			return err
		}
	}
	for _, v := range d.Subjects {
		if err := emit(KindSubjects, SubjectKey(v), subjectWire{v.SubjectID, v.Org, v.DisplayRef}); err != nil {
			return err
		}
	}
	return nil
}

type (
	staffOut struct {
		ActorID    string `json:"actor_id"`
		Org        string `json:"org"`
		Role       string `json:"role"`
		Team       string `json:"team"`
		External   bool   `json:"external"`
		ActiveFrom string `json:"active_from"`
		ActiveTo   string `json:"active_to"`
	}
	shiftOut struct {
		ActorID string `json:"actor_id"`
		Start   string `json:"start"`
		End     string `json:"end"`
		Org     string `json:"org,omitempty"`
	}
	sharingOut struct {
		PartnerOrg  string   `json:"partner_org"`
		Org         string   `json:"org"`
		RecordTypes []string `json:"record_types"`
		Actions     []string `json:"actions"`
		ValidFrom   string   `json:"valid_from"`
		ValidTo     string   `json:"valid_to"`
	}
)

// Keys. A message's key is its row's identity: a later message with the
// same key replaces the row, a tombstone deletes it, and compaction keeps
// only the latest. Every key is a compact JSON array of the fields that
// identify the row. Staff and devices are keyed by [org, id] (the loader
// rejects a row whose key differs, which keeps (org, id) unique as in the
// CSV, and keeps two orgs' same id from replacing each other); the other
// kinds by their identifying fields with the row's org first when it has
// one, so that, for example, ending a relationship (setting valid_to)
// replaces it. For those kinds the loader treats the key as opaque: any
// scheme works as long as one row always gets the same key.

// StaffKey is [org, actor_id].
func StaffKey(s reference.Staff) []byte { return arrayKey(s.Org, s.ActorID) }

// DeviceKey is [org, device_id].
func DeviceKey(v reference.Device) []byte { return arrayKey(v.Org, v.DeviceID) }

// SubjectKey is [org, subject_id].
func SubjectKey(v reference.Subject) []byte { return arrayKey(v.Org, v.SubjectID) }

// RelationshipKey is [actor_id, team, subject_id, relation, valid_from],
// preceded by org when the row has one.
func RelationshipKey(r reference.Relationship) []byte {
	return orgKey(r.Org, r.ActorID, r.Team, r.SubjectID, r.Relation, ftime(r.ValidFrom))
}

// ShiftKey is [actor_id, start], preceded by org when the row has one.
func ShiftKey(s reference.Shift) []byte { return orgKey(s.Org, s.ActorID, ftime(s.Start)) }

// AbsenceKey is [actor_id, start, kind], preceded by org when the row has one.
func AbsenceKey(a reference.Absence) []byte { return orgKey(a.Org, a.ActorID, ftime(a.Start), a.Kind) }

// orgKey is arrayKey(fields...) for a row of every org, arrayKey(org,
// fields...) for a row of one.
func orgKey(org string, fields ...string) []byte {
	if org == "" {
		return arrayKey(fields...)
	}
	return arrayKey(append([]string{org}, fields...)...)
}

// SharingAgreementKey is [partner_org, org, valid_from].
func SharingAgreementKey(a reference.SharingAgreement) []byte {
	return arrayKey(a.PartnerOrg, a.Org, ftime(a.ValidFrom))
}

func arrayKey(fields ...string) []byte {
	b, _ := json.Marshal(fields) // strings always encode
	return b
}

func ftime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}
