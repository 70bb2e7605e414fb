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
//
// Every lookup names the org it is asked for (CONTRACT §2, tenants): staff
// and devices are keyed by (org, id), so the same id in two orgs is two
// people or two devices and an id unknown to an org's roster is unknown
// there, whatever other orgs hold. Relationship, shift and absence rows may
// carry an org; a row without one applies to its id in every org.
type Index struct {
	orgs     map[string]*tenant // rows of one org, by org
	every    tenant             // rows without an org: they apply in every org
	relKinds []string           // distinct Relation values, indexed by relEntry.kind
	sharing  []SharingAgreement
	id       string // names the data (NewNamedIndex); empty when unnamed
}

// tenant is the rows of one org (or, as Index.every, of every org), by id.
// Looking the org up first and then the id costs two short string hashes;
// a map keyed by (org, id) hashed both strings at once about as slowly, and
// this way the rows of every org are one field away, not a second lookup.
type tenant struct {
	staff    map[string]Staff
	devices  map[string]Device
	shifts   map[string]shiftList
	absences map[string][]Absence // sorted by Start
	actorRel map[string]relRows
	teamRel  map[string]relRows
	subjects map[string]string // display references, by subject id
}

// noRows is the tenant of an org without rows of its own.
var noRows = &tenant{}

// in returns org's own rows.
func (x *Index) in(org string) *tenant {
	if t := x.orgs[org]; t != nil {
		return t
	}
	return noRows
}

// rowsOf returns the tenant that holds rows of org: Index.every for "".
func (x *Index) rowsOf(org string) *tenant {
	if org == "" {
		return &x.every
	}
	t := x.orgs[org]
	if t == nil {
		t = &tenant{}
		x.orgs[org] = t
	}
	return t
}

// orgKey is an id within an org; org "" for rows that apply in every org.
type orgKey struct{ org, id string }

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

// relRows is one owner's relationship rows, sorted by (hash, subject). An
// owner with many rows (a team's caseload: a county's teams have a hundred
// thousand and more) also has a hash table of where each hash's rows start,
// since a binary search over them missed the cache at nearly every step:
// it was the largest cost of judging a county's events.
type relRows struct {
	rows  []relEntry
	slots []relSlot // nil for few rows; else a power of two, at most half full
}

// relSlot is where the rows of one subject hash start: rows[start-1];
// start 0 is an empty slot.
type relSlot struct{ hash, start uint32 }

// relTableFrom is the number of rows from which an owner has a table.
const relTableFrom = 256

func newRelRows(rows []relEntry) relRows {
	r := relRows{rows: rows}
	if len(rows) < relTableFrom {
		return r
	}
	n := 1
	for n < 2*len(rows) {
		n <<= 1
	}
	r.slots = make([]relSlot, n)
	mask := uint32(n - 1)
	for i := range rows {
		if i > 0 && rows[i].hash == rows[i-1].hash {
			continue
		}
		h := rows[i].hash
		j := h & mask
		for r.slots[j].start != 0 {
			j = (j + 1) & mask
		}
		r.slots[j] = relSlot{hash: h, start: uint32(i + 1)}
	}
	return r
}

// of returns the rows of subject.
func (r relRows) of(subject string) []relEntry {
	h := subjectHash(subject)
	if r.slots == nil {
		i, _ := slices.BinarySearchFunc(r.rows, h, func(e relEntry, h uint32) int { return cmp.Compare(e.hash, h) })
		return subjectRun(r.rows[i:], h, subject)
	}
	mask := uint32(len(r.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		switch s := r.slots[j]; {
		case s.start == 0:
			return nil
		case s.hash == h:
			return subjectRun(r.rows[s.start-1:], h, subject)
		}
	}
}

// subjectRun returns the rows of subject at the start of rows, which begin
// with those of its hash h, if any.
func subjectRun(rows []relEntry, h uint32, subject string) []relEntry {
	j := 0
	for j < len(rows) && rows[j].hash == h {
		j++
	}
	run := rows[:j]
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
	x := &Index{orgs: make(map[string]*tenant)}
	for _, s := range d.Staff {
		t := x.rowsOf(s.Org)
		if t.staff == nil {
			t.staff = make(map[string]Staff)
		}
		t.staff[s.ActorID] = s
	}
	for _, v := range d.Devices {
		t := x.rowsOf(v.Org)
		if t.devices == nil {
			t.devices = make(map[string]Device)
		}
		t.devices[v.DeviceID] = v
	}

	shifts := slices.Clone(d.Shifts)
	slices.SortFunc(shifts, func(a, b Shift) int {
		return cmp.Or(strings.Compare(a.Org, b.Org), strings.Compare(a.ActorID, b.ActorID), a.Start.Compare(b.Start))
	})
	for lo := 0; lo < len(shifts); {
		hi := lo + 1
		for hi < len(shifts) && shifts[hi].ActorID == shifts[lo].ActorID && shifts[hi].Org == shifts[lo].Org {
			hi++
		}
		l := shiftList{shifts: shifts[lo:hi:hi], maxEnd: make([]int64, hi-lo)}
		m := int64(math.MinInt64)
		for i, s := range l.shifts {
			m = max(m, s.End.UnixNano())
			l.maxEnd[i] = m
		}
		t := x.rowsOf(shifts[lo].Org)
		if t.shifts == nil {
			t.shifts = make(map[string]shiftList)
		}
		t.shifts[shifts[lo].ActorID] = l
		lo = hi
	}

	for _, a := range d.Absences {
		t := x.rowsOf(a.Org)
		if t.absences == nil {
			t.absences = make(map[string][]Absence)
		}
		t.absences[a.ActorID] = append(t.absences[a.ActorID], a)
	}
	for _, t := range x.tenants() {
		for _, l := range t.absences {
			slices.SortFunc(l, func(a, b Absence) int { return a.Start.Compare(b.Start) })
		}
	}

	byActor, byTeam, kinds := buildRelations(d.Relationships)
	x.relKinds = kinds
	for k, rows := range byActor {
		t := x.rowsOf(k.org)
		if t.actorRel == nil {
			t.actorRel = make(map[string]relRows)
		}
		t.actorRel[k.id] = newRelRows(rows)
	}
	for k, rows := range byTeam {
		t := x.rowsOf(k.org)
		if t.teamRel == nil {
			t.teamRel = make(map[string]relRows)
		}
		t.teamRel[k.id] = newRelRows(rows)
	}
	x.sharing = slices.Clone(d.SharingAgreements)
	for _, v := range d.Subjects {
		t := x.rowsOf(v.Org)
		if t.subjects == nil {
			t.subjects = make(map[string]string)
		}
		t.subjects[v.SubjectID] = v.DisplayRef
	}
	return x
}

// tenants returns every org's rows and those of every org.
func (x *Index) tenants() []*tenant {
	ts := []*tenant{&x.every}
	for _, t := range x.orgs {
		ts = append(ts, t)
	}
	return ts
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

// buildRelations groups relationship rows by owner (org and actor or team)
// into subslices of one backing array, each sorted by subject for binary
// search.
func buildRelations(rows []Relationship) (byActor, byTeam map[orgKey][]relEntry, kinds []string) {
	type keyed struct {
		team  bool
		owner orgKey
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
		k := keyed{owner: orgKey{r.Org, r.ActorID}, e: relEntry{subject: r.SubjectID, from: math.MinInt64, to: openEnd, kind: kind, hash: subjectHash(r.SubjectID)}}
		if r.ActorID == "" {
			k.team, k.owner.id = true, r.Team
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
			return cmp.Or(strings.Compare(a.owner.org, b.owner.org), strings.Compare(a.owner.id, b.owner.id))
		case a.e.hash != b.e.hash:
			return cmp.Compare(a.e.hash, b.e.hash)
		}
		return strings.Compare(a.e.subject, b.e.subject)
	})
	entries := make([]relEntry, len(all))
	for i := range all {
		entries[i] = all[i].e
	}
	byActor, byTeam = make(map[orgKey][]relEntry), make(map[orgKey][]relEntry)
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

// Staff returns the staff row of actorID in org. A row of another org is
// never returned: an actor unknown to its org's roster is an unknown
// account there (CONTRACT §2).
func (x *Index) Staff(org, actorID string) (Staff, bool) {
	s, ok := x.in(org).staff[actorID]
	return s, ok
}

// HasStaff reports whether org has any staff row: only then can an actor
// be told to be unknown to it.
func (x *Index) HasStaff(org string) bool { return len(x.in(org).staff) > 0 }

// Device returns the device id of org.
func (x *Index) Device(org, id string) (Device, bool) {
	d, ok := x.in(org).devices[id]
	return d, ok
}

// HasShifts reports whether actorID has any rostered shift in org; staff
// without shifts are judged against default working hours.
func (x *Index) HasShifts(org, actorID string) bool {
	own, every := x.in(org).shifts[actorID], x.every.shifts[actorID]
	return len(own.shifts) > 0 || len(every.shifts) > 0
}

// ShiftAt returns a shift of actorID in org with Start-grace ≤ t ≤ End+grace
// (the latest-starting one if several match).
func (x *Index) ShiftAt(org, actorID string, t time.Time, grace time.Duration) (Shift, bool) {
	own, every := x.in(org).shifts[actorID], x.every.shifts[actorID]
	a, aok := own.at(t, grace)
	b, bok := every.at(t, grace)
	if aok && (!bok || !b.Start.After(a.Start)) {
		return a, true
	}
	return b, bok
}

func (l shiftList) at(t time.Time, grace time.Duration) (Shift, bool) {
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

// NearestShift returns the shift of actorID in org closest to t: one
// containing t, else the one whose start or end lies nearest (the earlier
// on a tie).
func (x *Index) NearestShift(org, actorID string, t time.Time) (Shift, bool) {
	own, every := x.in(org).shifts[actorID], x.every.shifts[actorID]
	a, da, aok := own.nearest(t)
	b, db, bok := every.nearest(t)
	switch {
	case !aok:
		return b, bok
	case !bok || da < db || (da == db && !b.Start.Before(a.Start)):
		return a, true
	}
	return b, true
}

// nearest returns the shift of l closest to t and its distance from t.
func (l shiftList) nearest(t time.Time) (Shift, int64, bool) {
	if len(l.shifts) == 0 {
		return Shift{}, 0, false
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
			best, bestDist = i, d
		}
	}
	return l.shifts[best], bestDist, true
}

// AbsentAt returns an absence of actorID in org with Start ≤ t < End (or
// open): the earliest-starting one when several cover t.
func (x *Index) AbsentAt(org, actorID string, t time.Time) (Absence, bool) {
	own, every := x.in(org).absences[actorID], x.every.absences[actorID]
	a, aok := absentAt(own, t)
	b, bok := absentAt(every, t)
	if aok && (!bok || !b.Start.Before(a.Start)) {
		return a, true
	}
	return b, bok
}

func absentAt(l []Absence, t time.Time) (Absence, bool) {
	for _, a := range l {
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
// relationship row with subjectID that applies in org and is valid at t
// (ValidFrom ≤ t < ValidTo, or open-ended).
func (x *Index) HasRelationship(org, actorID, team, subjectID string, t time.Time) bool {
	tn := t.UnixNano()
	own, every := x.in(org).actorRel[actorID], x.every.actorRel[actorID]
	if validAt(own, subjectID, tn) || validAt(every, subjectID, tn) {
		return true
	}
	if team == "" {
		return false
	}
	own, every = x.in(org).teamRel[team], x.every.teamRel[team]
	return validAt(own, subjectID, tn) || validAt(every, subjectID, tn)
}

// HasRelationships reports whether any relationship row applies in org:
// without one, no-business-need has nothing to judge org's access by.
func (x *Index) HasRelationships(org string) bool {
	t := x.in(org)
	return len(t.actorRel)+len(t.teamRel)+len(x.every.actorRel)+len(x.every.teamRel) > 0
}

// NearestRelationship returns, among the relationships of actorID, or of
// team when not empty, with subjectID that apply in org and are not valid
// at t, the latest to have ended at or before t (ValidTo ≤ t), else the
// earliest to start after t. The row has ActorID or Team set as it was
// loaded, and Org when the row had one. It does not look at rows valid at
// t: ask HasRelationship first.
func (x *Index) NearestRelationship(org, actorID, team, subjectID string, t time.Time) (Relationship, bool) {
	tn := t.UnixNano()
	var best relEntry
	var bestOrg string
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
	scan := func(rows relRows, isTeam bool, rowOrg string) {
		for _, e := range rows.of(subjectID) {
			if e.from <= tn && tn < e.to {
				continue
			}
			if better(e) {
				best, bestTeam, bestOrg, found = e, isTeam, rowOrg, true
			}
		}
	}
	own, every := x.in(org).actorRel[actorID], x.every.actorRel[actorID]
	scan(own, false, org)
	scan(every, false, "")
	if team != "" {
		own, every = x.in(org).teamRel[team], x.every.teamRel[team]
		scan(own, true, org)
		scan(every, true, "")
	}
	if !found {
		return Relationship{}, false
	}
	return x.relationship(best, bestOrg, actorID, team, subjectID, bestTeam), true
}

// relationship is the row e as loaded: the actor's own (ActorID set) or,
// when isTeam, the team's (Team set), with its kind, org and validity.
func (x *Index) relationship(e relEntry, org, actorID, team, subjectID string, isTeam bool) Relationship {
	r := Relationship{Org: org, SubjectID: subjectID, Relation: x.relKinds[e.kind]}
	if isTeam {
		r.Team = team
	} else {
		r.ActorID = actorID
	}
	if e.from != math.MinInt64 {
		r.ValidFrom = time.Unix(0, e.from).UTC()
	}
	if e.to != openEnd {
		r.ValidTo = time.Unix(0, e.to).UTC()
	}
	return r
}

// RelationshipAt returns a relationship of actorID with subjectID that
// applies in org and is valid at t, else one of team's (when team is not
// empty): the worker's own allocation before their team's caseload. The
// row has ActorID or Team set as it was loaded, and its Relation, Org and
// validity.
func (x *Index) RelationshipAt(org, actorID, team, subjectID string, t time.Time) (Relationship, bool) {
	tn := t.UnixNano()
	type owner struct {
		rows   relRows
		isTeam bool
		org    string
	}
	owners := []owner{{x.in(org).actorRel[actorID], false, org}, {x.every.actorRel[actorID], false, ""}}
	if team != "" {
		owners = append(owners, owner{x.in(org).teamRel[team], true, org}, owner{x.every.teamRel[team], true, ""})
	}
	for _, o := range owners {
		for _, e := range o.rows.of(subjectID) {
			if e.from > tn || tn >= e.to {
				continue
			}
			return x.relationship(e, o.org, actorID, team, subjectID, o.isTeam), true
		}
	}
	return Relationship{}, false
}

// SubjectRef returns the display reference subjects.csv gives subjectID in
// org. Only an org's own rows answer: one org's name for a person is never
// shown for another's.
func (x *Index) SubjectRef(org, subjectID string) (string, bool) {
	v, ok := x.in(org).subjects[subjectID]
	return v, ok
}

func validAt(rows relRows, subject string, tn int64) bool {
	for _, e := range rows.of(subject) {
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
