package rulestest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// The shared fixtures: the roster the judgement cases run against, and
// streams of events that exercise every check.

// Sat is a time on Saturday 7 March 2026, out of hours for u-40
// (no shifts) and u-41.
func Sat(clock string) time.Time { return LT("2026-03-07 " + clock + ":00") }

// Stream is a realistic, seeded mix of events over several days: shift
// workers and office staff, in and out of hours, some late, some sensitive.
func Stream(seed uint64, n int) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	actors := []string{"u-17", "u-21", "u-40", "u-41", "u-42", "u-50", "u-51", "u-99"}
	actions := []event.Action{event.ActionLogin, event.ActionView, event.ActionView, event.ActionView, event.ActionSearch,
		event.ActionUpdate, event.ActionLogout, event.ActionLock, event.ActionUnlock, event.ActionLoginFailed, event.ActionExport}
	t := LT("2026-03-06 06:00:00")
	out := make([]event.Event, 0, n)
	for i := range n {
		t = t.Add(time.Duration(rng.IntN(12)) * time.Minute)
		at := t
		if rng.IntN(10) == 0 { // late by up to 2h
			at = t.Add(-time.Duration(rng.IntN(120)) * time.Minute)
		}
		var opts []EvOpt
		if rng.IntN(8) == 0 {
			opts = append(opts, Subject(fmt.Sprintf("c-%d", rng.IntN(40)), "safeguarding"))
		} else {
			opts = append(opts, Subject(fmt.Sprintf("c-%d", rng.IntN(40))))
		}
		a := actions[rng.IntN(len(actions))]
		ev := Event(fmt.Sprintf("e%05d", i), actors[rng.IntN(len(actors))], at, a, opts...)
		if !a.IsRecordAction() {
			ev.Subject = event.Subject{}
		}
		out = append(out, ev)
	}
	return out
}

// Shuffled returns events 30s apart in event time, in an arrival order
// where none comes more than spread after a later one.
func Shuffled(n int, spread time.Duration, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]event.Event, n)
	arrive := make(map[string]time.Time, n)
	base := LT("2026-03-10 09:00:00")
	for i := range out {
		out[i] = Event(fmt.Sprintf("e%04d", i), "u-40", base.Add(time.Duration(i)*30*time.Second), event.ActionView)
		arrive[out[i].ID] = out[i].Time.Add(time.Duration(rng.Int64N(int64(spread))))
	}
	slices.SortFunc(out, func(a, b event.Event) int { return arrive[a.ID].Compare(arrive[b.ID]) })
	return out
}

// The devices the unlocked-session cases run on.
var ULSDevices = []reference.Device{
	{DeviceID: "tab-01", Org: Org, Kind: reference.DeviceSharedTablet, AssignedTo: "webster-court"},
	{DeviceID: "tab-02", Org: Org, Kind: reference.DeviceSharedTablet, AssignedTo: "webster-court"},
	{DeviceID: "pc-01", Org: Org, Kind: reference.DeviceDesktop},
	{DeviceID: "lap-17", Org: Org, Kind: reference.DeviceLaptop, AssignedTo: "u-17"},
	{DeviceID: "mob-40", Org: Org, Kind: reference.DeviceMobile, AssignedTo: "u-40"},
}

// ULSRoster is the judgement roster with ULSDevices, NBNRelations and
// NBNAgreements.
func ULSRoster() *FakeRoster {
	r := NewFakeRoster(JudgeStaff, JudgeShifts)
	r.Index = reference.NewIndex(&reference.Data{Devices: ULSDevices, Relationships: NBNRelations, SharingAgreements: NBNAgreements})
	return r
}

// WithSessions gives a stream's events sessions on devices: each actor
// works on one device at a time and sometimes moves on, so that gaps,
// handovers, locks and logouts of the stream exercise unlocked-session.
func WithSessions(events []event.Event, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 9))
	devs := []string{"tab-01", "tab-02", "pc-01", "x-9"}
	cur := map[string]int{}
	for i := range events {
		ev := &events[i]
		a := ev.Actor.ID
		if _, ok := cur[a]; !ok || rng.IntN(12) == 0 {
			cur[a] = rng.IntN(len(devs) * 3)
		}
		n := cur[a]
		ev.Session = event.Session{ID: fmt.Sprintf("%s-s%d", a, n), Device: devs[n%len(devs)]}
		if rng.IntN(20) == 0 {
			ev.Session.ID = ""
		}
	}
	return events
}

// WithBulkSweeps inserts into a stream two sweeps of 40 distinct subjects
// (20s apart, from the time of the event they follow) by u-41, at
// positions 1480 and 2480 of the arrival order: the generic restart test
// cuts inside the first. Record actions are then judged by every check.
func WithBulkSweeps(events []event.Event) []event.Event {
	out := slices.Clone(events)
	for s, at := range []int{2480, 1480} { // the later first, so that 1480 stays put
		if at >= len(out) {
			continue
		}
		base := out[at-1].Time
		var sweep []event.Event
		for i := range 40 {
			sweep = append(sweep, Event(fmt.Sprintf("sweep%d-%02d", s, i), "u-41", base.Add(time.Duration(i)*20*time.Second),
				event.ActionView, Subject(fmt.Sprintf("c-%d", 500+100*s+i))))
		}
		out = slices.Insert(out, at, sweep...)
	}
	return out
}

// The roster the judgement cases run against.
var (
	JudgeStaff = []reference.Staff{
		Staff("u-17", "support-worker", "webster-court"),
		Staff("u-21", "night-carer", "webster-court"),
		Staff("u-40", "manager", "office"),
		Staff("u-41", "manager", "finance"),
		Staff("u-42", "waking-night", "nights"),
		Staff("u-50", "edt-worker", "edt"),
		Staff("u-51", "edt-worker", "edt"),
	}
	JudgeShifts = []reference.Shift{
		Shift("u-17", LT("2026-03-07 14:00:00"), LT("2026-03-07 22:00:00")),
		Shift("u-17", LT("2026-04-03 09:00:00"), LT("2026-04-03 17:00:00")), // Good Friday
		Shift("u-21", LT("2026-03-06 22:00:00"), LT("2026-03-07 08:00:00")),
		// Across spring-forward: 10 wall-clock hours, 9 real ones.
		Shift("u-21", LT("2026-03-28 22:00:00"), LT("2026-03-29 08:00:00")),
		// Across fall-back: 10 wall-clock hours, 11 real ones.
		Shift("u-21", At("2026-10-24T21:00:00Z"), At("2026-10-25T08:00:00Z")),
		Shift("u-51", LT("2026-03-10 17:00:00"), LT("2026-03-11 09:00:00")),
	}
)

// The relationships and agreements the no-business-need cases, and the
// streams of the engine tests, run against.
var (
	NBNRelations = func() []reference.Relationship {
		rels := []reference.Relationship{
			{Team: "webster-court", SubjectID: "c-1", Relation: "allocation", ValidFrom: LT("2026-01-01 00:00:00")},
			{ActorID: "u-30", SubjectID: "c-2", Relation: "caseload", ValidFrom: LT("2026-03-01 00:00:00"), ValidTo: LT("2026-03-10 00:00:00")},
			{Team: "team-a", SubjectID: "c-3", Relation: "referral", ValidFrom: LT("2026-04-01 00:00:00")},
			{Team: "team-a", SubjectID: "c-2", Relation: "allocation", ValidFrom: LT("2026-01-01 00:00:00"), ValidTo: LT("2026-02-02 14:30:00")},
			{ActorID: "u-90", SubjectID: "c-4", Relation: "referral"},
			{ActorID: "u-91", SubjectID: "c-4", Relation: "referral"},
			{ActorID: "u-92", SubjectID: "c-1", Relation: "delegated"},
		}
		// For the streams of the engine tests: the first 20 subjects are
		// webster-court's, u-40 had five until the stream began.
		for i := range 20 {
			rels = append(rels, reference.Relationship{Team: "webster-court", SubjectID: fmt.Sprintf("c-%d", i), Relation: "allocation"})
		}
		for i := 20; i < 25; i++ {
			rels = append(rels, reference.Relationship{ActorID: "u-40", SubjectID: fmt.Sprintf("c-%d", i), Relation: "caseload", ValidTo: LT("2026-03-07 00:00:00")})
		}
		return rels
	}()
	NBNAgreements = []reference.SharingAgreement{{
		PartnerOrg: "nhs-trust", Org: Org, RecordTypes: []string{"care-plan", "assessment"}, Actions: []string{"view", "search"},
		ValidFrom: LT("2026-01-01 00:00:00"), ValidTo: LT("2026-06-01 00:00:00"),
	}}
)
