package reference

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"time"
)

// Index answers the checks' hot-path questions about one set of reference
// data. It is immutable once built and safe for any number of concurrent
// readers; lookups do not allocate. To change the data, build a new Index
// and swap it in.
type Index struct {
	staff    map[string]Staff
	devices  map[string]Device
	shifts   map[string]shiftList
	absences map[string][]Absence // sorted by Start
	actorRel map[string][]relEntry
	teamRel  map[string][]relEntry
	relKinds []string // distinct Relation values, indexed by relEntry.kind
	sharing  []SharingAgreement
	id       string // names the data (NewNamedIndex); empty when unnamed
}

// shiftList is one actor's shifts sorted by start, with the running maximum
// of their ends so that lookups stay correct even if shifts overlap.
type shiftList struct {
	shifts []Shift
	maxEnd []int64
}

// relEntry is one relationship row reduced to what the lookups need: 40
// bytes a row, so two million rows cost tens of megabytes. An owner's rows
// are sorted by (hash, subject): the binary search compares the inline
// hash, not strings scattered over the heap, which on a county's two
// million rows made cache misses the lookup's whole cost.
type relEntry struct {
	subject  string
	from, to int64  // unix nanoseconds; to is math.MaxInt64 when open-ended
	kind     uint32 // index of its Relation in Index.relKinds
	hash     uint32 // subjectHash(subject)
}

// subjectSeed seeds subjectHash: the order it gives only has to hold
// within one process.
var subjectSeed = maphash.MakeSeed()

func subjectHash(s string) uint32 { return uint32(maphash.String(subjectSeed, s)) }

// subjectRows returns the rows of subject among rows (one owner's).
func subjectRows(rows []relEntry, subject string) []relEntry {
	h := subjectHash(subject)
	i, _ := slices.BinarySearchFunc(rows, h, func(e relEntry, h uint32) int { return cmp.Compare(e.hash, h) })
	j := i
	for j < len(rows) && rows[j].hash == h {
		j++
	}
	run := rows[i:j]
	// Within a hash, rows are sorted by subject; collisions are rare.
	lo, _ := slices.BinarySearchFunc(run, subject, func(e relEntry, s string) int { return strings.Compare(e.subject, s) })
	hi := lo
	for hi < len(run) && run[hi].subject == subject {
		hi++
	}
	return run[lo:hi]
}

const openEnd = math.MaxInt64

// NewIndex builds an Index over d. d is not retained except for the
// strings it shares.
func NewIndex(d *Data) *Index {
	x := &Index{
		staff:    make(map[string]Staff, len(d.Staff)),
		devices:  make(map[string]Device, len(d.Devices)),
		shifts:   make(map[string]shiftList),
		absences: make(map[string][]Absence),
	}
	for _, s := range d.Staff {
		x.staff[s.ActorID] = s
	}
	for _, v := range d.Devices {
		x.devices[v.DeviceID] = v
	}

	shifts := slices.Clone(d.Shifts)
	slices.SortFunc(shifts, func(a, b Shift) int {
		if c := strings.Compare(a.ActorID, b.ActorID); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
	for lo := 0; lo < len(shifts); {
		hi := lo + 1
		for hi < len(shifts) && shifts[hi].ActorID == shifts[lo].ActorID {
			hi++
		}
		l := shiftList{shifts: shifts[lo:hi:hi], maxEnd: make([]int64, hi-lo)}
		m := int64(math.MinInt64)
		for i, s := range l.shifts {
			m = max(m, s.End.UnixNano())
			l.maxEnd[i] = m
		}
		x.shifts[shifts[lo].ActorID] = l
		lo = hi
	}

	for _, a := range d.Absences {
		x.absences[a.ActorID] = append(x.absences[a.ActorID], a)
	}
	for _, l := range x.absences {
		slices.SortFunc(l, func(a, b Absence) int { return a.Start.Compare(b.Start) })
	}

	x.actorRel, x.teamRel, x.relKinds = buildRelations(d.Relationships)
	x.sharing = slices.Clone(d.SharingAgreements)
	return x
}

// NewNamedIndex builds an Index over d that names d by id: the content
// hash the store gives the same data (store.ReferenceID; computed by the
// caller, since store imports this package), so that what the checks
// judge against can be found again among the stored snapshots.
func NewNamedIndex(d *Data, id string) *Index {
	x := NewIndex(d)
	x.id = id
	return x
}

// ReferenceID returns the name NewNamedIndex gave the data, or "".
func (x *Index) ReferenceID() string { return x.id }

// buildRelations groups relationship rows by owner (actor or team) into
// subslices of one backing array, each sorted by subject for binary search.
func buildRelations(rows []Relationship) (byActor, byTeam map[string][]relEntry, kinds []string) {
	type keyed struct {
		team  bool
		owner string
		e     relEntry
	}
	all := make([]keyed, 0, len(rows))
	kindOf := map[string]uint32{}
	for _, r := range rows {
		kind, ok := kindOf[r.Relation]
		if !ok {
			kind = uint32(len(kinds))
			kindOf[r.Relation] = kind
			kinds = append(kinds, r.Relation)
		}
		k := keyed{owner: r.ActorID, e: relEntry{subject: r.SubjectID, from: math.MinInt64, to: openEnd, kind: kind, hash: subjectHash(r.SubjectID)}}
		if r.ActorID == "" {
			k.team, k.owner = true, r.Team
		}
		if !r.ValidFrom.IsZero() {
			k.e.from = r.ValidFrom.UnixNano()
		}
		if !r.ValidTo.IsZero() {
			k.e.to = r.ValidTo.UnixNano()
		}
		all = append(all, k)
	}
	slices.SortFunc(all, func(a, b keyed) int {
		switch {
		case a.team != b.team:
			if a.team {
				return 1
			}
			return -1
		case a.owner != b.owner:
			return strings.Compare(a.owner, b.owner)
		case a.e.hash != b.e.hash:
			return cmp.Compare(a.e.hash, b.e.hash)
		}
		return strings.Compare(a.e.subject, b.e.subject)
	})
	entries := make([]relEntry, len(all))
	for i := range all {
		entries[i] = all[i].e
	}
	byActor, byTeam = make(map[string][]relEntry), make(map[string][]relEntry)
	for lo := 0; lo < len(all); {
		hi := lo + 1
		for hi < len(all) && all[hi].team == all[lo].team && all[hi].owner == all[lo].owner {
			hi++
		}
		m := byActor
		if all[lo].team {
			m = byTeam
		}
		m[all[lo].owner] = entries[lo:hi:hi]
		lo = hi
	}
	return byActor, byTeam, kinds
}

// Staff returns the account of actorID.
func (x *Index) Staff(actorID string) (Staff, bool) {
	s, ok := x.staff[actorID]
	return s, ok
}

// Device returns the device id.
func (x *Index) Device(id string) (Device, bool) {
	d, ok := x.devices[id]
	return d, ok
}

// HasShifts reports whether actorID has any rostered shift; staff without
// shifts are judged against default working hours.
func (x *Index) HasShifts(actorID string) bool {
	return len(x.shifts[actorID].shifts) > 0
}

// ShiftAt returns a shift of actorID with Start-grace ≤ t ≤ End+grace (the
// latest-starting one if several match).
func (x *Index) ShiftAt(actorID string, t time.Time, grace time.Duration) (Shift, bool) {
	l := x.shifts[actorID]
	tn := t.UnixNano()
	g := int64(grace)
	// First shift starting after t+grace: only shifts before it can match.
	i, _ := slices.BinarySearchFunc(l.shifts, tn+g, func(s Shift, v int64) int {
		if s.Start.UnixNano() <= v {
			return -1
		}
		return 1
	})
	for j := i - 1; j >= 0 && l.maxEnd[j]+g >= tn; j-- {
		if l.shifts[j].End.UnixNano()+g >= tn {
			return l.shifts[j], true
		}
	}
	return Shift{}, false
}

// NearestShift returns the shift of actorID closest to t: one containing t,
// else the one whose start or end lies nearest (the earlier on a tie).
func (x *Index) NearestShift(actorID string, t time.Time) (Shift, bool) {
	l := x.shifts[actorID]
	if len(l.shifts) == 0 {
		return Shift{}, false
	}
	tn := t.UnixNano()
	i, _ := slices.BinarySearchFunc(l.shifts, tn, func(s Shift, v int64) int {
		if s.Start.UnixNano() <= v {
			return -1
		}
		return 1
	})
	best, bestDist := -1, int64(math.MaxInt64)
	// Shifts starting at or before t: distance is t-End, or 0 inside.
	for j := i - 1; j >= 0; j-- {
		d := max(tn-l.shifts[j].End.UnixNano(), 0)
		if d <= bestDist {
			best, bestDist = j, d
		}
		if j == 0 || tn-l.maxEnd[j-1] > bestDist {
			break
		}
	}
	if i < len(l.shifts) {
		if d := l.shifts[i].Start.UnixNano() - tn; d < bestDist {
			best = i
		}
	}
	return l.shifts[best], true
}

// AbsentAt returns an absence of actorID with Start ≤ t < End (or open).
func (x *Index) AbsentAt(actorID string, t time.Time) (Absence, bool) {
	for _, a := range x.absences[actorID] {
		if t.Before(a.Start) {
			break
		}
		if a.End.IsZero() || t.Before(a.End) {
			return a, true
		}
	}
	return Absence{}, false
}

// HasRelationship reports whether actorID, or team when not empty, has a
// relationship row with subjectID valid at t (ValidFrom ≤ t < ValidTo, or
// open-ended).
func (x *Index) HasRelationship(actorID, team, subjectID string, t time.Time) bool {
	tn := t.UnixNano()
	if validAt(x.actorRel[actorID], subjectID, tn) {
		return true
	}
	return team != "" && validAt(x.teamRel[team], subjectID, tn)
}

// HasRelationships reports whether any relationship row is loaded.
func (x *Index) HasRelationships() bool { return len(x.actorRel) > 0 || len(x.teamRel) > 0 }

// NearestRelationship returns, among the relationships of actorID, or of
// team when not empty, with subjectID that are not valid at t, the latest
// to have ended at or before t (ValidTo ≤ t), else the earliest to start
// after t. The row has ActorID or Team set as it was loaded. It does not
// look at rows valid at t: ask HasRelationship first.
func (x *Index) NearestRelationship(actorID, team, subjectID string, t time.Time) (Relationship, bool) {
	tn := t.UnixNano()
	var best relEntry
	bestTeam, found := false, false
	better := func(e relEntry) bool {
		switch {
		case !found:
			return true
		case e.to <= tn && best.to <= tn:
			return e.to > best.to
		case e.to <= tn:
			return true // an ended one before one yet to start
		case best.to <= tn:
			return false
		}
		return e.from < best.from
	}
	scan := func(rows []relEntry, isTeam bool) {
		for _, e := range subjectRows(rows, subjectID) {
			if e.from <= tn && tn < e.to {
				continue
			}
			if better(e) {
				best, bestTeam, found = e, isTeam, true
			}
		}
	}
	scan(x.actorRel[actorID], false)
	if team != "" {
		scan(x.teamRel[team], true)
	}
	if !found {
		return Relationship{}, false
	}
	r := Relationship{SubjectID: subjectID, Relation: x.relKinds[best.kind]}
	if bestTeam {
		r.Team = team
	} else {
		r.ActorID = actorID
	}
	if best.from != math.MinInt64 {
		r.ValidFrom = time.Unix(0, best.from).UTC()
	}
	if best.to != openEnd {
		r.ValidTo = time.Unix(0, best.to).UTC()
	}
	return r, true
}

func validAt(rows []relEntry, subject string, tn int64) bool {
	for _, e := range subjectRows(rows, subject) {
		if e.from <= tn && tn < e.to {
			return true
		}
	}
	return false
}

// SharingAgreementFor returns an agreement between partnerOrg and org valid
// at t (ValidFrom ≤ t < ValidTo, or open) that permits recordType and
// action.
func (x *Index) SharingAgreementFor(partnerOrg, org, recordType, action string, t time.Time) (SharingAgreement, bool) {
	for _, a := range x.sharing {
		if a.PartnerOrg == partnerOrg && a.Org == org && a.ValidAt(t) && a.Permits(recordType, action) {
			return a, true
		}
	}
	return SharingAgreement{}, false
}

// ValidAt reports whether the agreement is in force at t.
func (a *SharingAgreement) ValidAt(t time.Time) bool {
	return !t.Before(a.ValidFrom) && (a.ValidTo.IsZero() || t.Before(a.ValidTo))
}

// Permits reports whether the agreement covers recordType and action ("*"
// in a list allows anything).
func (a *SharingAgreement) Permits(recordType, action string) bool {
	return allows(a.RecordTypes, recordType) && allows(a.Actions, action)
}

func allows(list []string, v string) bool {
	for _, s := range list {
		if s == "*" || s == v {
			return true
		}
	}
	return false
}

// ActiveAt reports whether the account may log in at t (ActiveFrom ≤ t <
// ActiveTo, or open).
func (s *Staff) ActiveAt(t time.Time) bool {
	return !t.Before(s.ActiveFrom) && (s.ActiveTo.IsZero() || t.Before(s.ActiveTo))
}

// ValidAt reports whether the relationship is in force at t.
func (r *Relationship) ValidAt(t time.Time) bool {
	return !t.Before(r.ValidFrom) && (r.ValidTo.IsZero() || t.Before(r.ValidTo))
}
