package kafkaref

import (
	"crypto/sha256"
	"slices"

	"github.com/dpiawatch/dpiawatch/reference"
)

// keyHash identifies a message key. 128 bits of SHA-256 make a collision
// among a county's few million keys practically impossible, and cost 16
// bytes a row instead of the key itself.
type keyHash [16]byte

func hashKey(key []byte) keyHash {
	s := sha256.Sum256(key)
	return keyHash(s[:16])
}

// table is one kind's rows, as the latest message of each key left them.
// Rows are kept dense (a delete moves the last row into the hole) so that a
// snapshot is the slice itself: after a snapshot the rows below its length
// are shared with the published Data and are copied before they are next
// overwritten (copy on write); appends never touch them.
type table[T any] struct {
	slot   map[keyHash]int32
	keys   []keyHash // keys[i] is rows[i]'s
	rows   []T
	shared int // rows[:shared] belong to a published snapshot
}

func newTable[T any]() *table[T] { return &table[T]{slot: map[keyHash]int32{}} }

func (t *table[T]) len() int { return len(t.rows) }

// own makes rows[i] writable.
func (t *table[T]) own(i int) {
	if i < t.shared {
		t.rows = slices.Grow(slices.Clone(t.rows), len(t.rows)/8)
		t.shared = 0
	}
}

func (t *table[T]) put(k keyHash, row T) {
	if i, ok := t.slot[k]; ok {
		t.own(int(i))
		t.rows[i] = row
		return
	}
	t.slot[k] = int32(len(t.rows))
	t.keys = append(t.keys, k)
	t.rows = append(t.rows, row)
}

// del removes the row of k, if any, and reports whether there was one.
func (t *table[T]) del(k keyHash) bool {
	i, ok := t.slot[k]
	if !ok {
		return false
	}
	last := len(t.rows) - 1
	t.own(int(i))
	if int(i) != last {
		t.rows[i], t.keys[i] = t.rows[last], t.keys[last]
		t.slot[t.keys[i]] = i
	}
	var zero T
	t.rows[last] = zero // drop the strings it held
	t.rows, t.keys = t.rows[:last], t.keys[:last]
	delete(t.slot, k)
	return true
}

// snapshot returns the rows; they stay unchanged for as long as anyone
// holds them.
func (t *table[T]) snapshot() []T {
	if len(t.rows) == 0 {
		return nil
	}
	t.shared = len(t.rows)
	return t.rows[:len(t.rows):len(t.rows)]
}

// tables holds every kind's table.
type tables struct {
	staff         *table[reference.Staff]
	relationships *table[reference.Relationship]
	shifts        *table[reference.Shift]
	absences      *table[reference.Absence]
	devices       *table[reference.Device]
	sharing       *table[reference.SharingAgreement]
	subjects      *table[reference.Subject]
}

func newTables() *tables {
	return &tables{newTable[reference.Staff](), newTable[reference.Relationship](), newTable[reference.Shift](),
		newTable[reference.Absence](), newTable[reference.Device](), newTable[reference.SharingAgreement](), newTable[reference.Subject]()}
}

// apply applies one message of kind: a nil value deletes the key's row, an
// invalid one too (the latest message of a key is the truth, and one that
// cannot be read leaves no row — the same after every restart), a valid one
// replaces it. It reports whether the data changed and the row's error.
func (ts *tables) apply(d *decoder, kind Kind, key, value []byte) (changed bool, err error) {
	k := hashKey(key)
	if len(key) == 0 {
		err = errf("key", "a message key is required (the row's identity)")
	} else if len(value) != 0 {
		switch kind {
		case KindStaff:
			var r reference.Staff
			if r, err = d.staff(string(key), value); err == nil {
				ts.staff.put(k, r)
				return true, nil
			}
		case KindRelationships:
			var r reference.Relationship
			if r, err = d.relationship(value); err == nil {
				ts.relationships.put(k, r)
				return true, nil
			}
		case KindShifts:
			var r reference.Shift
			if r, err = d.shift(value); err == nil {
				ts.shifts.put(k, r)
				return true, nil
			}
		case KindAbsences:
			var r reference.Absence
			if r, err = d.absence(value); err == nil {
				ts.absences.put(k, r)
				return true, nil
			}
		case KindDevices:
			var r reference.Device
			if r, err = d.device(string(key), value); err == nil {
				ts.devices.put(k, r)
				return true, nil
			}
		case KindSharingAgreements:
			var r reference.SharingAgreement
			if r, err = d.sharingAgreement(value); err == nil {
				ts.sharing.put(k, r)
				return true, nil
			}
		case KindSubjects:
			var r reference.Subject
			if r, err = d.subject(string(key), value); err == nil {
				ts.subjects.put(k, r)
				return true, nil
			}
		}
	}
	switch kind {
	case KindStaff:
		changed = ts.staff.del(k)
	case KindRelationships:
		changed = ts.relationships.del(k)
	case KindShifts:
		changed = ts.shifts.del(k)
	case KindAbsences:
		changed = ts.absences.del(k)
	case KindDevices:
		changed = ts.devices.del(k)
	case KindSharingAgreements:
		changed = ts.sharing.del(k)
	case KindSubjects:
		changed = ts.subjects.del(k)
	}
	return changed, err
}

func (ts *tables) len(kind Kind) int {
	switch kind {
	case KindStaff:
		return ts.staff.len()
	case KindRelationships:
		return ts.relationships.len()
	case KindShifts:
		return ts.shifts.len()
	case KindAbsences:
		return ts.absences.len()
	case KindDevices:
		return ts.devices.len()
	case KindSharingAgreements:
		return ts.sharing.len()
	case KindSubjects:
		return ts.subjects.len()
	}
	return 0
}

func (ts *tables) snapshot() *reference.Data {
	return &reference.Data{
		Staff:             ts.staff.snapshot(),
		Relationships:     ts.relationships.snapshot(),
		Shifts:            ts.shifts.snapshot(),
		Absences:          ts.absences.snapshot(),
		Devices:           ts.devices.snapshot(),
		SharingAgreements: ts.sharing.snapshot(),
		Subjects:          ts.subjects.snapshot(),
	}
}

// Overlay returns base with the kinds in kinds taken from top instead: the
// precedence when both a CSV directory and Kafka topics are configured.
// A kind read from Kafka replaces the directory's rows of that kind whole,
// even when its topic is empty. Neither argument is modified; base may be
// nil.
func Overlay(base, top *reference.Data, kinds []Kind) *reference.Data {
	var out reference.Data
	if base != nil {
		out = *base
	}
	for _, k := range kinds {
		switch k {
		case KindStaff:
			out.Staff = top.Staff
		case KindRelationships:
			out.Relationships = top.Relationships
		case KindShifts:
			out.Shifts = top.Shifts
		case KindAbsences:
			out.Absences = top.Absences
		case KindDevices:
			out.Devices = top.Devices
		case KindSharingAgreements:
			out.SharingAgreements = top.SharingAgreements
		case KindSubjects:
			out.Subjects = top.Subjects
		}
	}
	return &out
}
