package simulate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// Patterns per check. Each injected episode is that misuse under CONTRACT
// §4 and, by construction, no other:
//
//   - out-of-hours/outside-shift: a rostered worker (carer, emergency duty)
//     acts at least 2 hours from every shift of theirs, not while absent.
//   - out-of-hours/outside-working-hours: an office worker (no shifts) acts
//     at night (20:30–05:30) or at a weekend daytime, not on a bank holiday.
//   - out-of-hours/bank-holiday: an office worker acts 10:00–15:00 on a
//     weekday bank holiday (only when the period holds one).
//   - no-business-need/no-relationship: a record no row of the actor or
//     their team covers (St Martins: a partner worker, since the team row
//     covers every resident for staff).
//   - no-business-need/relationship-ended: a former resident or closed case
//     whose rows (team and actor) ended before the period.
//   - no-business-need/outside-sharing-agreement: a portal user, on a
//     subject they are linked to, does an action or opens a record type
//     their agreement does not allow.
//   - shared-credential/concurrent-sessions: a second device at the same
//     site logs in while the first session is open (same site, so not
//     travel).
//   - shared-credential/impossible-travel: minutes after a logout at the
//     site, a login from 203.0.113.0/24 (outside every org network).
//   - shared-credential/used-while-absent: an office worker's account in
//     office hours on a day of their absence. (A rostered worker has no
//     shift while absent, so it would also be out-of-hours: not used.)
//   - shared-credential/used-after-leaving: a leaver's account in office
//     hours, on team cases (the team row still covers them). Leavers are
//     office workers for the same reason.
//   - shared-credential/failed-login-burst: 5–8 failures in under 7
//     minutes, no success.
//   - shared-credential/external-without-mfa (Wiltshire only: see injects): a portal user logs in
//     without a second factor, then works within the agreement.
//   - unlocked-session/unlocked-gap: 14–25 minutes idle on a shared tablet
//     (36–55 elsewhere) with no lock between two actions.
//   - unlocked-session/device-handover: a second worker acts on a shared
//     device while the first's session is still open; the first session
//     times out under the gap limit afterwards.
//   - bulk-access/bulk-access: one worker opens every resident (St Martins)
//     or up to 120 team cases within minutes, gaps of seconds.
var checkPatterns = []struct {
	check    string
	rate     func(InjectionRates) float64
	patterns []string
}{
	{CheckOutOfHours, func(r InjectionRates) float64 { return r.OutOfHours }, []string{"outside-shift", "outside-working-hours", "bank-holiday"}},
	{CheckNoBusinessNeed, func(r InjectionRates) float64 { return r.NoBusinessNeed }, []string{"no-relationship", "relationship-ended", "outside-sharing-agreement"}},
	{CheckSharedCredential, func(r InjectionRates) float64 { return r.SharedCredential }, []string{"concurrent-sessions", "impossible-travel", "used-while-absent", "used-after-leaving", "failed-login-burst", "external-without-mfa"}},
	{CheckUnlockedSession, func(r InjectionRates) float64 { return r.UnlockedSession }, []string{"unlocked-gap", "device-handover"}},
	{CheckBulkAccess, func(r InjectionRates) float64 { return r.BulkAccess }, []string{"bulk-access"}},
}

// Patterns lists every check/pattern the simulator can inject.
func Patterns() map[string][]string {
	m := map[string][]string{}
	for _, c := range checkPatterns {
		m[c.check] = slices.Clone(c.patterns)
	}
	return m
}

// injects reports whether pattern is misuse in w's org: external users
// without a second factor only where the DPIA requires one (Wiltshire's
// "2 Factor authentications in place for external users"; St Martins'
// DPIA promises none).
func (w *world) injects(pattern string) bool {
	return pattern != "external-without-mfa" || w.org == OrgWiltshire
}

const epMargin = 45 * time.Minute // background keeps this far from an episode

// episode is one planned injection; gen fills the stream's buffer at the
// episode's start (when devices can be allocated in time order).
type episode struct {
	label *Label
	start time.Time
	gen   func(w *world, st *stream) bool
}

func (w *world) runEpisode(st *stream) {
	if !st.ep.gen(w, st) {
		st.buf = st.buf[:0]
		return
	}
	slices.SortStableFunc(st.buf, func(a, b pending) int { return a.t.Compare(b.t) })
	for i := range st.buf {
		st.buf[i].label = st.ep.label
	}
}

// planEpisodes draws the episodes of every enabled check, cycling through
// its patterns so that each appears once the rate allows.
func planEpisodes(w *world, rates InjectionRates, seed int64) []*episode {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	var eps []*episode
	for _, c := range checkPatterns {
		rate := c.rate(rates)
		if rate <= 0 {
			continue
		}
		count := int(rate*float64(w.days) + rng.Float64())
		off := rng.IntN(len(c.patterns))
		pats := slices.DeleteFunc(slices.Clone(c.patterns), func(p string) bool { return !w.injects(p) })
		for i := range count {
			pat := pats[(off+i)%len(pats)]
			for try := 0; try < 50; try++ {
				if e := w.planOne(rng, pat); e != nil {
					e.label = &Label{Check: c.check, Pattern: pat}
					eps = append(eps, e)
					break
				}
			}
		}
	}
	slices.SortStableFunc(eps, func(a, b *episode) int { return a.start.Compare(b.start) })
	for i, e := range eps {
		e.label.Episode = fmt.Sprintf("%s-ep-%04d", w.org, i+1)
	}
	return eps
}

func (w *world) pickActor(rng *rand.Rand, ok func(*actor) bool) *actor {
	var c []*actor
	for _, a := range w.actors {
		if ok(a) {
			c = append(c, a)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[rng.IntN(len(c))]
}

func internalWorker(a *actor) bool {
	return !a.external && !a.leaver && len(a.windows) > 0 && (len(a.own) > 0 || len(a.teamSubjects) > 0)
}

// workSlot finds a start inside one of a's working windows, 30 minutes
// from its edges, with dur free of other episodes.
func (w *world) workSlot(rng *rand.Rand, a *actor, dur time.Duration) (time.Time, bool) {
	if len(a.windows) == 0 {
		return time.Time{}, false
	}
	win := a.windows[rng.IntN(len(a.windows))]
	lo := maxTime(win.start, w.from).Add(30 * time.Minute)
	hi := win.end.Add(-dur - 30*time.Minute)
	if !hi.After(lo) {
		return time.Time{}, false
	}
	t := lo.Add(time.Duration(rng.Int64N(int64(hi.Sub(lo)/time.Second))) * time.Second)
	if t.Add(dur + time.Hour).After(w.end) {
		return time.Time{}, false
	}
	return t, w.free(a, t, dur)
}

func (w *world) free(a *actor, t time.Time, dur time.Duration) bool {
	return !a.isBlocked(window{t.Add(-epMargin), t.Add(dur + epMargin)})
}

func (w *world) reserve(t time.Time, dur time.Duration, as ...*actor) {
	for _, a := range as {
		a.blocked = append(a.blocked, window{t.Add(-epMargin), t.Add(dur + epMargin)})
	}
}

// anyTime is a uniformly random second of the period, leaving room for dur.
func (w *world) anyTime(rng *rand.Rand, dur time.Duration) (time.Time, bool) {
	span := w.end.Sub(w.from) - dur - 2*time.Hour
	if span <= 0 {
		return time.Time{}, false
	}
	return w.from.Add(time.Hour + time.Duration(rng.Int64N(int64(span/time.Second)))*time.Second), true
}

// officeHours reports whether t lies in default working hours (with the
// 30-minute grace, so "outside" means clearly outside).
func (w *world) nearOfficeHours(t time.Time) bool {
	l := t.In(w.loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, w.loc)
	if !w.isWorkday(day) {
		return false
	}
	mins := l.Hour()*60 + l.Minute()
	return mins >= 7*60 && mins < 19*60
}

func (w *world) planOne(rng *rand.Rand, pattern string) *episode {
	const short = 25 * time.Minute
	switch pattern {
	case "outside-shift":
		a := w.pickActor(rng, func(a *actor) bool { return a.rostered && internalWorker(a) })
		if a == nil {
			return nil
		}
		t, ok := w.anyTime(rng, short)
		if !ok || !w.offShift(a, t, short) || !w.free(a, t, short) {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{})
	case "outside-working-hours":
		a := w.pickActor(rng, func(a *actor) bool { return a.office && internalWorker(a) })
		if a == nil {
			return nil
		}
		t, ok := w.anyTime(rng, short)
		if !ok {
			return nil
		}
		l := t.In(w.loc)
		day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, w.loc)
		mins := l.Hour()*60 + l.Minute()
		weekend := day.Weekday() == time.Saturday || day.Weekday() == time.Sunday
		night := mins >= 20*60+30 || mins < 5*60+30-25
		if w.isBankHoliday(day) || !(night || (weekend && mins >= 9*60 && mins < 16*60)) ||
			w.nearOfficeHours(t) || w.nearOfficeHours(t.Add(short)) || !w.present(a, t, short) || !w.free(a, t, short) {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{})
	case "bank-holiday":
		var hols []int
		for d := 0; d < w.days; d++ {
			if w.isBankHoliday(w.day(d)) {
				hols = append(hols, d)
			}
		}
		a := w.pickActor(rng, func(a *actor) bool { return a.office && internalWorker(a) })
		if len(hols) == 0 || a == nil {
			return nil
		}
		d := hols[rng.IntN(len(hols))]
		t := w.at(d, 10, rng.IntN(300))
		if !w.present(a, t, short) || !w.free(a, t, short) || !w.inWindow(t) {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{})
	case "no-relationship":
		a := w.pickActor(rng, func(a *actor) bool {
			if w.org == OrgStMartins {
				return a.external && len(a.windows) > 0
			}
			return internalWorker(a) && a.office
		})
		if a == nil {
			return nil
		}
		t, ok := w.workSlot(rng, a, short)
		if !ok {
			return nil
		}
		var subs []int32
		want := 1 + rng.IntN(3)
		for range 40 {
			s := int32(rng.IntN(len(w.subjects)))
			if _, former := w.formerOf[s]; !former && !w.idx.HasRelationship(w.org, a.id, a.team, w.subjects[s], t) && !w.idx.HasRelationship(w.org, a.id, a.team, w.subjects[s], t.Add(short)) {
				subs = append(subs, s)
				if len(subs) == want {
					break
				}
			}
		}
		if len(subs) == 0 {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{subjects: subs, views: true})
	case "relationship-ended":
		s := w.former[rng.IntN(len(w.former))]
		team := w.formerOf[s]
		a := w.pickActor(rng, func(a *actor) bool { return a.team == team && internalWorker(a) })
		if a == nil {
			return nil
		}
		t, ok := w.workSlot(rng, a, short)
		if !ok || w.idx.HasRelationship(w.org, a.id, a.team, w.subjects[s], t) {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{subjects: []int32{s}, views: true})
	case "outside-sharing-agreement":
		a := w.pickActor(rng, func(a *actor) bool { return a.external && len(a.windows) > 0 && len(a.own) > 0 })
		if a == nil {
			return nil
		}
		t, ok := w.workSlot(rng, a, short)
		if !ok {
			return nil
		}
		rt, act := a.recordTypes[0], event.ActionExport
		if rng.IntN(2) == 0 {
			var others []string
			for k := range w.recordPrefix {
				if !slices.Contains(a.recordTypes, k) {
					others = append(others, k)
				}
			}
			slices.Sort(others)
			rt, act = others[rng.IntN(len(others))], event.ActionView
		}
		if _, ok := w.idx.SharingAgreementFor(a.partnerOrg, w.org, rt, string(act), t); ok {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{subjects: []int32{a.own[rng.IntN(len(a.own))]}, rtype: rt, action: act})
	case "external-without-mfa":
		a := w.pickActor(rng, func(a *actor) bool { return a.external && len(a.windows) > 0 && len(a.own) > 0 })
		if a == nil {
			return nil
		}
		t, ok := w.workSlot(rng, a, short)
		if !ok {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{mfa: &mfaFalse})
	case "used-while-absent":
		a := w.pickActor(rng, func(a *actor) bool {
			return a.office && !a.external && !a.leaver && len(a.absences) > 0 && len(a.teamSubjects)+len(a.own) > 0
		})
		if a == nil {
			return nil
		}
		ab := a.absences[rng.IntN(len(a.absences))]
		var days []int
		for d := 0; d < w.days; d++ {
			if w.isWorkday(w.day(d)) && (window{w.at(d, 10, 0), w.at(d, 15, 30)}).overlaps(ab) && !w.at(d, 10, 0).Before(ab.start) && !w.at(d, 15, 30).After(ab.end) {
				days = append(days, d)
			}
		}
		if len(days) == 0 {
			return nil
		}
		t := w.at(days[rng.IntN(len(days))], 10, rng.IntN(300))
		if !w.inWindow(t) || !w.free(a, t, short) || !a.activeDuring(window{t, t.Add(short)}) {
			return nil
		}
		return w.simpleEpisode(a, t, short, sessionOpts{})
	case "used-after-leaving":
		a := w.pickActor(rng, func(a *actor) bool { return a.leaver && len(a.teamSubjects) > 0 })
		if a == nil {
			return nil
		}
		d := rng.IntN(w.days)
		t := w.at(d, 10, rng.IntN(300))
		if !w.isWorkday(w.day(d)) || !w.inWindow(t) || !w.free(a, t, short) {
			return nil
		}
		// The team row, not the ended allocation, covers these.
		subs := []int32{a.teamSubjects[rng.IntN(len(a.teamSubjects))], a.teamSubjects[rng.IntN(len(a.teamSubjects))]}
		for _, s := range subs {
			if !w.idx.HasRelationship(w.org, a.id, a.team, w.subjects[s], t) {
				return nil
			}
		}
		return w.simpleEpisode(a, t, short, sessionOpts{subjects: subs, sharedDevice: true})
	case "failed-login-burst":
		a := w.pickActor(rng, internalWorker)
		if a == nil {
			return nil
		}
		t, ok := w.workSlot(rng, a, 10*time.Minute)
		if !ok {
			return nil
		}
		return w.simpleEpisode(a, t, 10*time.Minute, sessionOpts{failures: 5 + rng.IntN(4)})
	case "concurrent-sessions", "impossible-travel", "unlocked-gap", "bulk-access":
		a := w.pickActor(rng, internalWorker)
		if a == nil {
			return nil
		}
		dur := 40 * time.Minute
		if pattern == "unlocked-gap" {
			dur = 80 * time.Minute
		}
		t, ok := w.workSlot(rng, a, dur)
		if !ok {
			return nil
		}
		return w.reserveEpisode(t, dur, []*actor{a}, func(w *world, st *stream) bool {
			switch pattern {
			case "concurrent-sessions":
				return w.genConcurrent(st, a, t)
			case "impossible-travel":
				return w.genTravel(st, a, t)
			case "unlocked-gap":
				return w.genUnlockedGap(st, a, t)
			}
			return w.genBulk(st, a, t)
		})
	case "device-handover":
		a := w.pickActor(rng, internalWorker)
		if a == nil {
			return nil
		}
		dur := 20 * time.Minute
		t, ok := w.workSlot(rng, a, dur)
		if !ok {
			return nil
		}
		b := w.pickActor(rng, func(b *actor) bool {
			return b != a && internalWorker(b) && b.loc == a.loc && b.team == a.team && w.working(b, t, dur) && w.free(b, t, dur)
		})
		if b == nil {
			return nil
		}
		return w.reserveEpisode(t, dur, []*actor{a, b}, func(w *world, st *stream) bool { return w.genHandover(st, a, b, t) })
	}
	return nil
}

// offShift: no shift of a within 2 hours of [t, t+dur], not absent, active.
func (w *world) offShift(a *actor, t time.Time, dur time.Duration) bool {
	for _, s := range a.shifts {
		if (window{s.start.Add(-2 * time.Hour), s.end.Add(2 * time.Hour)}).overlaps(window{t, t.Add(dur)}) {
			return false
		}
	}
	return w.present(a, t, dur)
}

// present: active and not absent over [t, t+dur].
func (w *world) present(a *actor, t time.Time, dur time.Duration) bool {
	x := window{t, t.Add(dur)}
	return a.activeDuring(x) && !a.absentDuring(x)
}

// working: [t-30m, t+dur+30m] lies inside one of a's working windows.
func (w *world) working(a *actor, t time.Time, dur time.Duration) bool {
	for _, win := range a.windows {
		if !win.start.After(t.Add(-30*time.Minute)) && !win.end.Before(t.Add(dur+30*time.Minute)) {
			return true
		}
	}
	return false
}

func (w *world) reserveEpisode(t time.Time, dur time.Duration, as []*actor, gen func(*world, *stream) bool) *episode {
	w.reserve(t, dur, as...)
	return &episode{start: t, gen: gen}
}

type sessionOpts struct {
	subjects     []int32
	views        bool // only views
	rtype        string
	action       event.Action
	mfa          *bool
	failures     int
	sharedDevice bool
}

// simpleEpisode is one session (or failure burst) by a: login, a few
// actions a minute or three apart, logout.
func (w *world) simpleEpisode(a *actor, t time.Time, dur time.Duration, o sessionOpts) *episode {
	return w.reserveEpisode(t, dur, []*actor{a}, func(w *world, st *stream) bool {
		rng := st.rng
		dev := a.dev
		if o.sharedDevice || (dev == nil && a.ip == "") {
			if dev = w.freeShared(a.loc, t, nil); dev == nil {
				return false
			}
		}
		mfa := o.mfa
		if mfa == nil {
			mfa = &mfaFalse
			if a.external {
				mfa = &mfaTrue
			}
		}
		s := w.newSession(dev, a.ip, mfa)
		tt := t
		if o.failures > 0 {
			for range o.failures {
				w.push(st, tt, a, s, event.ActionLoginFailed, -1, "", nil)
				tt = tt.Add(secs(rng, 20, 75))
			}
			w.hold(dev, tt)
			return true
		}
		w.push(st, tt, a, s, event.ActionLogin, -1, "", nil)
		n := 3 + rng.IntN(4)
		if len(o.subjects) > 0 {
			n = len(o.subjects) + rng.IntN(2)
		}
		for i := range n {
			tt = tt.Add(secs(rng, 40, 180))
			subj := pickSubject(a, rng)
			if len(o.subjects) > 0 {
				subj = o.subjects[i%len(o.subjects)]
			}
			act := a.actions[rng.IntN(len(a.actions))]
			if o.views {
				act = event.ActionView
			}
			if o.action != "" {
				act = o.action
			}
			rt := a.recordTypes[rng.IntN(len(a.recordTypes))]
			if o.rtype != "" {
				rt = o.rtype
			}
			w.push(st, tt, a, s, act, subj, rt, nil)
		}
		tt = tt.Add(secs(rng, 10, 60))
		w.push(st, tt, a, s, event.ActionLogout, -1, "", nil)
		w.hold(dev, tt)
		return true
	})
}

func (w *world) hold(d *device, until time.Time) {
	if d != nil {
		d.busyUntil = maxTime(d.busyUntil, until)
	}
}

// ownOrShared is the device a's session at t would use.
func (w *world) ownOrShared(a *actor, t time.Time, except *device) *device {
	if a.dev != nil && a.dev != except {
		return a.dev
	}
	return w.freeShared(a.loc, t, except)
}

// actions appends n innocent record actions from t, gaps lo–hi seconds.
func (w *world) actions(st *stream, a *actor, s *session, t time.Time, n, lo, hi int) time.Time {
	for range n {
		t = t.Add(secs(st.rng, lo, hi))
		w.push(st, t, a, s, event.ActionView, pickSubject(a, st.rng), a.recordTypes[st.rng.IntN(len(a.recordTypes))], nil)
	}
	return t
}

func (w *world) genConcurrent(st *stream, a *actor, t time.Time) bool {
	d1 := w.ownOrShared(a, t, nil)
	if d1 == nil {
		return false
	}
	d2 := w.freeShared(a.loc, t, d1)
	if d2 == nil {
		return false
	}
	s1 := w.newSession(d1, "", &mfaFalse)
	s2 := w.newSession(d2, "", &mfaFalse)
	w.push(st, t, a, s1, event.ActionLogin, -1, "", nil)
	e1 := w.actions(st, a, s1, t, 10, 90, 170)
	w.push(st, e1.Add(30*time.Second), a, s1, event.ActionLogout, -1, "", nil)
	t2 := t.Add(secs(st.rng, 240, 420))
	w.push(st, t2, a, s2, event.ActionLogin, -1, "", nil)
	e2 := w.actions(st, a, s2, t2, 3, 40, 120)
	w.push(st, e2.Add(20*time.Second), a, s2, event.ActionLogout, -1, "", nil)
	w.hold(d1, e1.Add(30*time.Second))
	w.hold(d2, e2.Add(20*time.Second))
	return e2.Before(e1) // the second session closes while the first is open
}

func (w *world) genTravel(st *stream, a *actor, t time.Time) bool {
	d1 := w.ownOrShared(a, t, nil)
	if d1 == nil {
		return false
	}
	s1 := w.newSession(d1, "", &mfaFalse)
	w.push(st, t, a, s1, event.ActionLogin, -1, "", nil)
	e1 := w.actions(st, a, s1, t, 4, 60, 150).Add(20 * time.Second)
	w.push(st, e1, a, s1, event.ActionLogout, -1, "", nil)
	w.hold(d1, e1)
	// TEST-NET-3: outside every network the organisations use.
	s2 := w.newSession(nil, fmt.Sprintf("203.0.113.%d", 10+st.rng.IntN(200)), &mfaFalse)
	t2 := e1.Add(secs(st.rng, 240, 720))
	w.push(st, t2, a, s2, event.ActionLogin, -1, "", nil)
	e2 := w.actions(st, a, s2, t2, 3, 30, 120)
	w.push(st, e2.Add(15*time.Second), a, s2, event.ActionLogout, -1, "", nil)
	return true
}

func (w *world) genUnlockedGap(st *stream, a *actor, t time.Time) bool {
	d := w.ownOrShared(a, t, nil)
	if d == nil {
		return false
	}
	gap := time.Duration(36+st.rng.IntN(20)) * time.Minute
	if d.kind == reference.DeviceSharedTablet {
		gap = time.Duration(14+st.rng.IntN(12)) * time.Minute
	}
	s := w.newSession(d, "", &mfaFalse)
	w.push(st, t, a, s, event.ActionLogin, -1, "", nil)
	e := w.actions(st, a, s, t, 2+st.rng.IntN(2), 40, 150)
	e = w.actions(st, a, s, e.Add(gap), 1+st.rng.IntN(2), 30, 120)
	e = e.Add(20 * time.Second)
	w.push(st, e, a, s, event.ActionLogout, -1, "", nil)
	w.hold(d, e)
	return true
}

func (w *world) genBulk(st *stream, a *actor, t time.Time) bool {
	d := w.ownOrShared(a, t, nil)
	if d == nil {
		return false
	}
	pool := a.teamSubjects
	if len(pool) == 0 {
		pool = a.own
	}
	n := min(len(pool), 120)
	s := w.newSession(d, "", &mfaFalse)
	w.push(st, t, a, s, event.ActionLogin, -1, "", nil)
	e := t
	for _, i := range st.rng.Perm(len(pool))[:n] {
		e = e.Add(secs(st.rng, 4, 15))
		w.push(st, e, a, s, event.ActionView, pool[i], a.recordTypes[st.rng.IntN(len(a.recordTypes))], nil)
	}
	e = e.Add(20 * time.Second)
	w.push(st, e, a, s, event.ActionLogout, -1, "", nil)
	w.hold(d, e)
	return true
}

func (w *world) genHandover(st *stream, a, b *actor, t time.Time) bool {
	d := w.freeShared(a.loc, t, nil)
	if d == nil {
		return false
	}
	sa := w.newSession(d, "", &mfaFalse)
	w.push(st, t, a, sa, event.ActionLogin, -1, "", nil)
	ea := w.actions(st, a, sa, t, 2+st.rng.IntN(3), 40, 120)
	sb := w.newSession(d, "", &mfaFalse)
	tb := ea.Add(secs(st.rng, 60, 150))
	w.push(st, tb, b, sb, event.ActionLogin, -1, "", nil)
	eb := w.actions(st, b, sb, tb, 2+st.rng.IntN(2), 30, 70).Add(15 * time.Second)
	w.push(st, eb, b, sb, event.ActionLogout, -1, "", nil)
	// a's session is still open under b's actions and only then times out,
	// within the idle limit.
	to := ea.Add(9*time.Minute + 30*time.Second)
	if !to.After(eb) {
		return false
	}
	w.push(st, to, a, sa, event.ActionTimeout, -1, "", nil)
	w.hold(d, to)
	return true
}
