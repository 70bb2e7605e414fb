package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
)

// TestAlertPageJudgedReference: the alert page shows the reference data the
// alert was judged against even when every snapshot was loaded after the
// alert's events (a catch-up, the demo), with the worker's shift and
// absence of the episode's time; not newer data loaded since. An alert that
// names no data, or data the store does not have, falls back to the
// snapshot in force at its first event: here none.
func TestAlertPageJudgedReference(t *testing.T) {
	day := func(d int, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	judged := &reference.Data{
		Staff: []reference.Staff{{ActorID: actorB, Org: org, Role: "support-worker", Team: teamB}},
		Relationships: []reference.Relationship{
			{Team: teamA, SubjectID: subjectB, Relation: "key-worker", ValidFrom: day(1, 0).AddDate(0, -2, 0), ValidTo: day(1, 0)},
		},
		Shifts: []reference.Shift{
			{ActorID: actorB, Start: day(2, 14), End: day(2, 22)}, // covers t0 (21:14)
			{ActorID: actorB, Start: day(3, 14), End: day(3, 22)},
		},
		Absences: []reference.Absence{
			{ActorID: actorB, Start: day(2, 0), End: day(4, 0), Kind: "training"},
			{ActorID: actorB, Start: day(9, 0), Kind: "leave"},
		},
	}
	newer := &reference.Data{
		Staff:         []reference.Staff{{ActorID: actorB, Org: org, Role: "team-leader", Team: teamB}},
		Relationships: []reference.Relationship{{ActorID: actorB, SubjectID: subjectB, Relation: "allocated-later", ValidFrom: day(1, 0)}},
	}
	judgedID, err := store.ReferenceID(judged)
	if err != nil {
		t.Fatal(err)
	}
	const heading = "What the reference data said"
	for _, c := range []struct {
		name        string
		referenceID string
		want        []string
		absent      []string
	}{
		{
			name: "judged against data loaded after its events", referenceID: judgedID,
			want: []string{heading, "judged against", "support-worker in team " + teamB, "key-worker of team " + teamA, "not in force",
				"Mon 2 Mar 2026 14:00 to Mon 2 Mar 2026 22:00", "training from 2 Mar 2026 until 4 Mar 2026"},
			absent: []string{"team-leader", "allocated-later", "3 Mar 2026 14:00", "leave from"},
		},
		{name: "names no data", absent: []string{heading}},
		{name: "names data the store lacks", referenceID: "ffffffffffffffffffffffffffffffff", absent: []string{heading}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			ctx := t.Context()
			// Both loads come after the alert's events (t0): as in the demo
			// and any catch-up, the checks ran after the events happened.
			for _, l := range []struct {
				at time.Time
				d  *reference.Data
			}{{t0.Add(time.Hour), judged}, {t0.Add(24 * time.Hour), newer}} {
				if err := f.sq.SaveReference(ctx, l.at, l.d); err != nil {
					t.Fatal(err)
				}
			}
			a, err := f.sq.Alert(ctx, alertB)
			if err != nil {
				t.Fatal(err)
			}
			a.ReferenceID = c.referenceID
			if _, err := f.sq.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) {
				return store.Effects{Alerts: []alert.Alert{a}}, nil
			}); err != nil {
				t.Fatal(err)
			}
			ig, _ := f.login(t, "ig")
			_, body := get(t, ig, f.srv.URL+"/alerts/"+alertB)
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("alert page lacks %q", w)
				}
			}
			assertAbsent(t, "alert page", body, c.absent...)
		})
	}
}
