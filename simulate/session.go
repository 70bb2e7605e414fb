package simulate

import (
	"math/rand/v2"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// Background session limits, kept well inside CONTRACT §4.
const (
	tabletMaxGap   = 6 * time.Minute  // < 10 min unlocked-session limit on shared tablets
	otherMaxGap    = 12 * time.Minute // < 30 min elsewhere
	tabletAutoLock = 5 * time.Minute  // system timeout after inactivity
	otherAutoLock  = 15 * time.Minute
	maxDistinct    = 4 // distinct subjects per background session: far from bulk access
)

// bgState walks one actor through their working windows, one session at a
// time.
type bgState struct {
	a      *actor
	wi     int
	cursor time.Time
}

func (b *bgState) init(*world) { b.wi, b.cursor = 0, time.Time{} }

// plan either generates the session that starts at now into st.buf, or
// sets st.next to the start of the next session, or ends the stream.
func (b *bgState) plan(w *world, st *stream, now time.Time) {
	a := b.a
	if len(a.own) == 0 && len(a.teamSubjects) == 0 {
		st.done = true
		return
	}
	for b.wi < len(a.windows) {
		win := a.windows[b.wi]
		t := maxTime(maxTime(b.cursor, win.start), w.from)
		limit := win.end
		for _, bl := range a.blocked {
			if !bl.end.After(t) {
				continue
			}
			if !bl.start.After(t) {
				t = bl.end
				continue
			}
			limit = minTime(limit, bl.start)
			break
		}
		if !t.Before(w.end) {
			break
		}
		if limit.Sub(t) < 10*time.Minute {
			if limit.Before(win.end) {
				b.cursor = limit.Add(time.Second) // inside the block: the loop moves past it
			} else {
				b.wi++
			}
			continue
		}
		if now.Before(t) {
			st.next = t
			return
		}
		t = maxTime(t, now)
		dev := b.device(w, t)
		if dev == nil && a.ip == "" {
			b.cursor = t.Add(5 * time.Minute)
			continue
		}
		end := w.genSession(st, a, dev, t, limit)
		if dev != nil {
			dev.busyUntil = end
		}
		gap := time.Duration(10+st.rng.IntN(80)) * time.Minute
		if a.office && !a.external {
			gap = time.Duration(5+st.rng.IntN(40)) * time.Minute
		}
		b.cursor = end.Add(gap)
		st.next = st.buf[0].t
		return
	}
	st.done = true
}

// device picks the actor's own device, else a free shared one at their
// site (tablets first).
func (b *bgState) device(w *world, t time.Time) *device {
	a := b.a
	if a.dev != nil {
		return a.dev
	}
	if a.ip != "" {
		return nil
	}
	return w.freeShared(a.loc, t, nil)
}

// freeShared returns a free shared device at loc, tablets before desktops,
// never except.
func (w *world) freeShared(loc string, t time.Time, except *device) *device {
	var alt *device
	for _, d := range w.devices {
		if !d.shared || d.loc != loc || d == except || !d.freeAt(t) {
			continue
		}
		if d.kind == reference.DeviceSharedTablet {
			return d
		}
		if alt == nil {
			alt = d
		}
	}
	return alt
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func secs(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Second
}

// pickSubject chooses a subject the actor has a relationship with: their
// own rows first, then their team's.
func pickSubject(a *actor, rng *rand.Rand) int32 {
	if len(a.own) > 0 && (len(a.teamSubjects) == 0 || rng.IntN(2) == 0) {
		return a.own[rng.IntN(len(a.own))]
	}
	return a.teamSubjects[rng.IntN(len(a.teamSubjects))]
}

func (w *world) push(st *stream, t time.Time, a *actor, s *session, act event.Action, subj int32, rtype string, l *Label) {
	st.buf = append(st.buf, pending{t: t, action: act, fail: act == event.ActionLoginFailed, subj: subj, rtype: rtype, a: a, sess: s, label: l})
}

// genSession appends one innocent session from start, every event before
// limit, and returns the time of its last event.
func (w *world) genSession(st *stream, a *actor, dev *device, start, limit time.Time) time.Time {
	rng := st.rng
	tablet := dev != nil && dev.kind == reference.DeviceSharedTablet
	maxGap, autoLock, length := otherMaxGap, otherAutoLock, time.Duration(10+rng.IntN(80))*time.Minute
	if tablet {
		maxGap, autoLock, length = tabletMaxGap, tabletAutoLock, time.Duration(5+rng.IntN(30))*time.Minute
	}
	mfa := &mfaFalse
	if a.external || rng.IntN(10) == 0 {
		mfa = &mfaTrue
	}
	s := w.newSession(dev, a.ip, mfa)
	t := start
	if rng.IntN(30) == 0 { // a mistyped PIN or password
		w.push(st, t, a, s, event.ActionLoginFailed, -1, "", nil)
		t = t.Add(secs(rng, 10, 40))
	}
	w.push(st, t, a, s, event.ActionLogin, -1, "", nil)
	endTarget := minTime(start.Add(length), limit.Add(-2*time.Minute))
	var seen [maxDistinct]int32
	nSeen := 0
	cur := int32(-1)
	for {
		gap := secs(rng, 15, int(maxGap/time.Second))
		if rng.IntN(25) == 0 { // steps away and locks the screen
			lock := t.Add(secs(rng, 20, 180))
			unlock := lock.Add(time.Duration(5+rng.IntN(35)) * time.Minute)
			if unlock.Add(3 * time.Minute).Before(endTarget) {
				w.push(st, lock, a, s, event.ActionLock, -1, "", nil)
				w.push(st, unlock, a, s, event.ActionUnlock, -1, "", nil)
				t = unlock
				continue
			}
		}
		nt := t.Add(gap)
		if nt.After(endTarget) {
			break
		}
		t = nt
		if cur < 0 || rng.IntN(3) == 0 {
			if nSeen < maxDistinct {
				cur = pickSubject(a, rng)
				seen[nSeen] = cur
				nSeen++
			} else {
				cur = seen[rng.IntN(nSeen)]
			}
		}
		act := a.actions[rng.IntN(len(a.actions))]
		if !a.external && rng.IntN(100) == 0 {
			act = rareActions[rng.IntN(len(rareActions))]
		}
		w.push(st, t, a, s, act, cur, a.recordTypes[rng.IntN(len(a.recordTypes))], nil)
	}
	if rng.IntN(6) == 0 && !t.Add(autoLock).After(limit) {
		t = t.Add(autoLock)
		w.push(st, t, a, s, event.ActionTimeout, -1, "", nil)
	} else {
		t = t.Add(secs(rng, 5, 60))
		w.push(st, t, a, s, event.ActionLogout, -1, "", nil)
	}
	return t
}
