package simulate

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/gb"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// world is one organisation: its people, subjects, devices and calendar,
// and the reference data describing them.
type world struct {
	org, system, idPrefix string
	loc                   *time.Location
	from, end             time.Time
	days                  int
	cal                   *cal.BusinessCalendar

	actors   []*actor
	devices  []*device
	subjects []string
	sens     [][]string
	// recordTypes maps a record type to its record id prefix.
	recordPrefix map[string]string

	// For injections.
	former   []int32 // subjects whose every relationship ended before from
	formerOf map[int32]string
	partners []*actor
	ref      *reference.Data
	idx      *reference.Index

	sessions int64
	rng      *rand.Rand
}

type window struct{ start, end time.Time }

func (w window) overlaps(o window) bool { return w.start.Before(o.end) && o.start.Before(w.end) }

// actor is one account.
type actor struct {
	n                   int
	id, role, team, org string
	external, rostered  bool
	office              bool // no shifts: judged against default working hours
	leaver              bool
	activeFrom          time.Time
	activeTo            time.Time
	loc                 string // site
	dev                 *device
	ip                  string  // when there is no device (portal users)
	own                 []int32 // subjects of the actor's own open rows
	teamSubjects        []int32 // subjects of the team's open rows
	recordTypes         []string
	actions             []event.Action
	partnerOrg          string // for portal users: their agreement's partner_org

	shifts   []window // rostered time
	absences []window
	windows  []window // where background sessions may lie
	blocked  []window // reserved by injected episodes (with margin)
	perDay   float64  // office sessions per working day
}

func (a *actor) absentDuring(x window) bool {
	for _, b := range a.absences {
		if b.overlaps(x) {
			return true
		}
	}
	return false
}

func (a *actor) activeDuring(x window) bool {
	return !x.start.Before(a.activeFrom) && (a.activeTo.IsZero() || !x.end.After(a.activeTo))
}

func (a *actor) isBlocked(x window) bool {
	for _, b := range a.blocked {
		if b.overlaps(x) {
			return true
		}
	}
	return false
}

// device is a terminal; busyUntil keeps shared devices to one session at
// a time during a run.
type device struct {
	id, kind, ip, loc, assigned string
	shared                      bool
	busyUntil                   time.Time
}

func (d *device) freeAt(t time.Time) bool { return !d.busyUntil.After(t) }

// pending is one event waiting in a stream's buffer.
type pending struct {
	t      time.Time
	action event.Action
	fail   bool
	subj   int32 // -1: none
	rtype  string
	a      *actor
	sess   *session
	label  *Label
}

type session struct {
	id, device, ip string
	mfa            *bool
}

var (
	mfaTrue  = true
	mfaFalse = false
)

func newWorld(o Options, org, system, prefix string) *world {
	c := cal.NewBusinessCalendar()
	c.AddHoliday(gb.Holidays...)
	from := o.From.In(o.Timezone)
	y, m, d := from.Date()
	h, mi, s := from.Clock()
	end := time.Date(y, m, d+o.Days, h, mi, s, from.Nanosecond(), o.Timezone)
	return &world{
		org: org, system: system, idPrefix: prefix, loc: o.Timezone, from: o.From, end: end, days: o.Days, cal: c,
		recordPrefix: map[string]string{}, formerOf: map[int32]string{},
		rng: rand.New(rand.NewPCG(uint64(o.Seed), 0)),
	}
}

// day returns local midnight of day d of the period (d may be negative).
func (w *world) day(d int) time.Time {
	y, m, dd := w.from.In(w.loc).Date()
	return time.Date(y, m, dd+d, 0, 0, 0, 0, w.loc)
}

// at returns local clock time h:mi on day d (DST-correct).
func (w *world) at(d, h, mi int) time.Time {
	y, m, dd := w.from.In(w.loc).Date()
	return time.Date(y, m, dd+d, h, mi, 0, 0, w.loc)
}

// isBankHoliday reports whether local day t is an England and Wales bank
// holiday (observed) falling on a weekday.
func (w *world) isBankHoliday(t time.Time) bool {
	wd := t.Weekday()
	return wd != time.Saturday && wd != time.Sunday && !w.cal.IsWorkday(t)
}

func (w *world) isWorkday(t time.Time) bool { return w.cal.IsWorkday(t) }

func (w *world) addSubjects(n int, prefix string, width int, sens func(i int) []string) (first int32) {
	first = int32(len(w.subjects))
	for i := range n {
		k := len(w.subjects) + 1
		w.subjects = append(w.subjects, prefix+pad(k, width))
		w.sens = append(w.sens, sens(i))
	}
	return first
}

// displayRefs gives every person of the world a local reference
// (subjects.csv) of the kind an org's own system numbers people by —
// "WC-014" at St Martins, "LCS-104729" at Wiltshire — never a name. The
// number is not the subject id's, as a real system's is not.
func (w *world) displayRefs() []reference.Subject {
	prefix, width, base := "WC-", 3, 0
	if w.org == OrgWiltshire {
		prefix, width, base = "LCS-", 6, 100000
	}
	n := len(w.subjects)
	out := make([]reference.Subject, n)
	for i, id := range w.subjects {
		// A stride coprime with n shuffles the numbers without the RNG,
		// whose sequence the simulation's events depend on.
		k := (i*stride(n) + 7) % n
		out[i] = reference.Subject{Org: w.org, SubjectID: id, DisplayRef: prefix + pad(base+k+1, width)}
	}
	return out
}

// stride returns a step coprime with n (at least 2 when n allows).
func stride(n int) int {
	for s := 7; s < n; s++ {
		if gcd(s, n) == 1 {
			return s
		}
	}
	return 1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

func (w *world) addDevice(id, kind, ip, loc, assigned string, shared bool) *device {
	d := &device{id: id, kind: kind, ip: ip, loc: loc, assigned: assigned, shared: shared}
	w.devices = append(w.devices, d)
	return d
}

// officeWindows gives an office worker one window per working day inside
// 08:05–17:55 local, never on a day with an absence, before joining or
// after leaving.
func (w *world) officeWindows(a *actor, rng *rand.Rand, share float64) {
	for d := 0; d < w.days; d++ {
		day := w.day(d)
		if !w.isWorkday(day) || rng.Float64() >= share {
			continue
		}
		whole := window{day, w.day(d + 1)}
		if a.absentDuring(whole) || !a.activeDuring(whole) {
			continue
		}
		s := w.at(d, 8, 5).Add(time.Duration(rng.IntN(75)) * time.Minute)
		e := w.at(d, 17, 55).Add(-time.Duration(rng.IntN(90)) * time.Minute)
		a.windows = append(a.windows, window{s, e})
	}
}

// shiftWindows lets a rostered worker start up to 20 minutes early and
// finish up to 20 minutes late: inside the 30-minute grace.
func (w *world) shiftWindows(a *actor, rng *rand.Rand) {
	for _, s := range a.shifts {
		pre := time.Duration(rng.IntN(21)) * time.Minute
		post := time.Duration(rng.IntN(21)) * time.Minute
		if rng.IntN(3) > 0 {
			pre, post = 0, 0
		}
		a.windows = append(a.windows, window{s.start.Add(-pre), s.end.Add(post)})
	}
}

// finish derives the reference data and its index from the world.
func (w *world) finish() {
	d := w.ref
	for _, a := range w.actors {
		d.Staff = append(d.Staff, reference.Staff{ActorID: a.id, Org: a.org, Role: a.role, Team: a.team, External: a.external, ActiveFrom: a.activeFrom, ActiveTo: a.activeTo})
		for _, s := range a.shifts {
			d.Shifts = append(d.Shifts, reference.Shift{ActorID: a.id, Start: s.start, End: s.end})
		}
	}
	for _, v := range w.devices {
		d.Devices = append(d.Devices, reference.Device{DeviceID: v.id, Org: w.org, Kind: v.kind, AssignedTo: v.assigned, Location: v.loc})
	}
	d.Subjects = w.displayRefs()
	w.idx = reference.NewIndex(d)
	for _, a := range w.actors {
		if a.external && a.partnerOrg == "" {
			a.partnerOrg = a.org
		}
		if a.external {
			w.partners = append(w.partners, a)
		}
	}
}

// planBackground fixes each actor's working windows; it runs after the
// episodes are planned so that they can reserve time.
func (w *world) planBackground() {
	for _, a := range w.actors {
		slices.SortFunc(a.blocked, func(x, y window) int { return x.start.Compare(y.start) })
	}
}

// reset clears run-time state so that Run can be repeated.
func (w *world) reset() {
	w.sessions = 0
	for _, d := range w.devices {
		d.busyUntil = time.Time{}
	}
}

func (w *world) newSession(dev *device, ip string, mfa *bool) *session {
	w.sessions++
	s := &session{id: "s-" + strconv.FormatInt(w.sessions, 10), ip: ip, mfa: mfa}
	if dev != nil {
		s.device, s.ip = dev.id, dev.ip
	}
	return s
}

// fill renders a pending event.
func (w *world) fill(ev *event.Event, p *pending, id string, rng *rand.Rand) {
	a := p.a
	*ev = event.Event{
		ID: id, Time: p.t, Org: w.org, System: w.system, Action: p.action,
		Actor:   event.Actor{ID: a.id, Role: a.role, Team: a.team, Org: a.org},
		Session: event.Session{ID: p.sess.id, Device: p.sess.device, IP: p.sess.ip},
		Outcome: event.OutcomeSuccess,
	}
	if p.fail {
		ev.Outcome = event.OutcomeFailure
	}
	if p.action == event.ActionLogin || p.action == event.ActionLoginFailed {
		ev.Session.MFA = p.sess.mfa
	}
	if p.subj >= 0 {
		ev.Subject = event.Subject{ID: w.subjects[p.subj], Sensitivity: w.sens[p.subj]}
		var b [24]byte
		r := append(b[:0], w.recordPrefix[p.rtype]...)
		r = append(r, '-')
		r = strconv.AppendUint(r, uint64(p.subj)*97+uint64(rng.IntN(97)), 10)
		ev.Record = event.Record{Type: p.rtype, ID: string(r)}
	}
}

func (w *world) inWindow(t time.Time) bool { return !t.Before(w.from) && t.Before(w.end) }
