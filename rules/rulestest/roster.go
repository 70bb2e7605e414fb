package rulestest

import (
	"sort"
	"time"

	"github.com/dpiawatch/dpiawatch/reference"
)

// FakeRoster is an in-memory Roster for tests of one org: staff by actor
// id and each actor's shifts sorted by start, searched by binary search as a
// real index would; it ignores the org it is asked for (the tenant tests use
// a real reference.Index).
// Relationships and sharing agreements are answered by a real
// reference.Index over the rows given to WithRelations.
type FakeRoster struct {
	staff  map[string]reference.Staff
	shifts map[string][]reference.Shift
	*reference.Index
}

// WithRelations adds relationship rows and sharing agreements.
func (r *FakeRoster) WithRelations(rels []reference.Relationship, agreements []reference.SharingAgreement) *FakeRoster {
	r.Index = reference.NewIndex(&reference.Data{Relationships: rels, SharingAgreements: agreements})
	return r
}

// NewFakeRoster is a FakeRoster of staff and their shifts.
func NewFakeRoster(staff []reference.Staff, shifts []reference.Shift) *FakeRoster {
	r := &FakeRoster{staff: map[string]reference.Staff{}, shifts: map[string][]reference.Shift{}, Index: reference.NewIndex(&reference.Data{})}
	for _, s := range staff {
		r.staff[s.ActorID] = s
	}
	for _, s := range shifts {
		r.shifts[s.ActorID] = append(r.shifts[s.ActorID], s)
	}
	for _, l := range r.shifts {
		sort.Slice(l, func(i, j int) bool { return l[i].Start.Before(l[j].Start) })
	}
	return r
}

func (r *FakeRoster) Staff(_, id string) (reference.Staff, bool) { s, ok := r.staff[id]; return s, ok }

// HasStaff reports whether a staff row of org was given.
func (r *FakeRoster) HasStaff(org string) bool {
	for _, s := range r.staff {
		if s.Org == org {
			return true
		}
	}
	return false
}

func (r *FakeRoster) HasShifts(_, id string) bool { return len(r.shifts[id]) > 0 }

func (r *FakeRoster) ShiftAt(_, id string, t time.Time, grace time.Duration) (reference.Shift, bool) {
	l := r.shifts[id]
	// First shift starting after t+grace; every candidate lies before it.
	i := sort.Search(len(l), func(i int) bool { return l[i].Start.Add(-grace).After(t) })
	for j := i - 1; j >= 0 && j >= i-4; j-- { // shifts overlap little
		if !t.After(l[j].End.Add(grace)) {
			return l[j], true
		}
	}
	return reference.Shift{}, false
}

func (r *FakeRoster) NearestShift(_, id string, t time.Time) (reference.Shift, bool) {
	l := r.shifts[id]
	if len(l) == 0 {
		return reference.Shift{}, false
	}
	i := sort.Search(len(l), func(i int) bool { return l[i].Start.After(t) })
	best, bestD := reference.Shift{}, time.Duration(-1)
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(l) {
			continue
		}
		d := distance(l[j], t)
		if bestD < 0 || d < bestD {
			best, bestD = l[j], d
		}
	}
	return best, true
}

func distance(s reference.Shift, t time.Time) time.Duration {
	switch {
	case t.Before(s.Start):
		return s.Start.Sub(t)
	case t.After(s.End):
		return t.Sub(s.End)
	}
	return 0
}
