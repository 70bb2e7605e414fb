package reference

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRelationshipLookupsMatchScan checks the relationship lookups of owners
// with many rows (a hash table of subjects) and with few (a binary search)
// against a scan of every row, with subjects whose 32-bit hashes collide,
// rows reopened and ended, and subjects without rows.
func TestRelationshipLookupsMatchScan(t *testing.T) {
	// Subjects whose hashes collide, found among many: the lookups must
	// tell them apart by their ids.
	byHash := map[uint32][]string{}
	var colliding []string
	for i := 0; len(colliding) < 40; i++ {
		s := fmt.Sprintf("c-%07d", i)
		h := subjectHash(s)
		byHash[h] = append(byHash[h], s)
		if n := len(byHash[h]); n == 2 {
			colliding = append(colliding, byHash[h]...)
		} else if n > 2 {
			colliding = append(colliding, s)
		}
	}
	rng := rand.New(rand.NewPCG(7, 14))
	d := &Data{}
	var subjects []string
	add := func(owner func(*Relationship), subject string) {
		r := Relationship{SubjectID: subject, Relation: []string{"case", "key-worker"}[rng.IntN(2)]}
		owner(&r)
		if rng.IntN(3) > 0 {
			r.ValidFrom = at(float64(rng.IntN(100)))
		}
		if rng.IntN(3) == 0 {
			r.ValidTo = r.ValidFrom.Add(time.Duration(1+rng.IntN(50)) * time.Hour)
			if r.ValidFrom.IsZero() {
				r.ValidTo = at(float64(rng.IntN(100)))
			}
		}
		d.Relationships = append(d.Relationships, r)
	}
	team := func(r *Relationship) { r.Team = "big-team" }
	for i := range 3000 {
		s := fmt.Sprintf("t-%05d", i)
		subjects = append(subjects, s)
		for range 1 + rng.IntN(3) {
			add(team, s)
		}
	}
	for i, s := range colliding {
		subjects = append(subjects, s)
		if i%3 != 2 { // some colliding subjects without rows of their own
			add(team, s)
		}
		add(func(r *Relationship) { r.ActorID = "u-1" }, s)
	}
	for i := range 30 {
		s := fmt.Sprintf("a-%02d", i)
		subjects = append(subjects, s)
		add(func(r *Relationship) { r.ActorID = "u-1"; r.Org = "o" }, s)
	}
	subjects = append(subjects, "nobody", "")
	x := NewIndex(d)
	if x.in("").teamRel["big-team"].slots != nil || x.every.teamRel["big-team"].slots == nil {
		t.Fatal("the big team has no table: the test would not cover it")
	}
	if x.every.actorRel["u-1"].slots != nil {
		t.Fatal("the actor's few rows have a table: the test would not cover the binary search")
	}

	// scan is RelationshipAt by reading every row: the actor's own first.
	scan := func(org, actor, team, subject string, tm time.Time) (Relationship, bool) {
		for _, own := range []bool{true, false} {
			for _, r := range d.Relationships {
				if r.SubjectID != subject || (r.Org != "" && r.Org != org) {
					continue
				}
				if (own && (r.ActorID != actor || actor == "")) || (!own && (r.Team != team || team == "")) {
					continue
				}
				if !r.ValidFrom.After(tm) && (r.ValidTo.IsZero() || tm.Before(r.ValidTo)) {
					return r, true
				}
			}
		}
		return Relationship{}, false
	}
	checked := 0
	for _, s := range subjects {
		for _, h := range []float64{-1, 0, 5, 37.5, 60, 99, 200} {
			tm := at(h)
			want, wantOK := scan("o", "u-1", "big-team", s, tm)
			if got := x.HasRelationship("o", "u-1", "big-team", s, tm); got != wantOK {
				t.Fatalf("HasRelationship(%q, %v) = %v, want %v", s, h, got, wantOK)
			}
			got, ok := x.RelationshipAt("o", "u-1", "big-team", s, tm)
			if ok != wantOK || (ok && (got.SubjectID != s || got.ActorID != want.ActorID || got.Team != want.Team)) {
				t.Fatalf("RelationshipAt(%q, %v) = %+v %v, want %+v %v", s, h, got, ok, want, wantOK)
			}
			if near, ok := x.NearestRelationship("o", "u-1", "big-team", s, tm); ok && near.SubjectID != s {
				t.Fatalf("NearestRelationship(%q) gave subject %q", s, near.SubjectID)
			}
			checked++
		}
	}
	if checked < 20000 {
		t.Fatalf("only %d lookups checked", checked)
	}
}
