// Package simulate generates a realistic organisation — its reference data
// and a stream of access events — from the two DPIAs, with labelled misuse
// injected, so that the checks can be demonstrated and measured against a
// known truth.
//
// Background activity is built to be innocent under CONTRACT §4: work only
// inside shifts (±20 minutes, inside the 30-minute grace) or Mon–Fri
// 08:00–18:00 off bank holidays, never while absent or after leaving, only on
// subjects the actor or their team has a relationship with, partners only
// within their sharing agreement and always with MFA, one session at a time
// per account, shared devices one session at a time, gaps between actions
// under the unlocked-session limits, at most one failed login before a
// success, and at most a handful of distinct subjects per session. Injected
// episodes break exactly one of those rules (see inject.go).
package simulate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
)

// Organisations the simulator knows.
const (
	OrgStMartins = "st-martins"
	OrgWiltshire = "wiltshire-council"
)

// Options configures a simulation. The zero value of every field but Org
// and From is usable.
type Options struct {
	Org        string    // OrgStMartins or OrgWiltshire
	From       time.Time // first instant simulated
	Days       int       // length of the period in local days; 0 means 7
	Seed       int64     // the same options and seed yield the same output
	Scale      float64   // 1 (or 0) is the DPIA's size; staff and subjects scale with it
	Injections InjectionRates
	Timezone   *time.Location // nil: Europe/London
}

// InjectionRates is the mean number of injected episodes per simulated day
// for each check. The zero value means DefaultInjectionRates for the org;
// once any field is set, unset fields mean none of that kind. Disabled
// turns every injection off.
type InjectionRates struct {
	Disabled         bool
	OutOfHours       float64
	NoBusinessNeed   float64
	SharedCredential float64
	UnlockedSession  float64
	BulkAccess       float64
}

// DefaultInjectionRates returns the rates used when Options.Injections is
// zero: a few episodes a week in a small service, a few a day in a county.
func DefaultInjectionRates(org string) InjectionRates {
	if org == OrgWiltshire {
		return InjectionRates{OutOfHours: 1.5, NoBusinessNeed: 2, SharedCredential: 2, UnlockedSession: 1, BulkAccess: 0.3}
	}
	return InjectionRates{OutOfHours: 0.4, NoBusinessNeed: 0.4, SharedCredential: 0.5, UnlockedSession: 0.3, BulkAccess: 0.1}
}

// Check names of CONTRACT §3 (and bulk-access beside them).
const (
	CheckOutOfHours       = "out-of-hours"
	CheckNoBusinessNeed   = "no-business-need"
	CheckSharedCredential = "shared-credential"
	CheckUnlockedSession  = "unlocked-session"
	CheckBulkAccess       = "bulk-access"
)

// Label marks an injected event: the check that should fire, the pattern
// inside it, and the episode that groups the events of one injection.
type Label struct {
	Check   string `json:"check"`
	Pattern string `json:"pattern"`
	Episode string `json:"episode"`
}

// Simulation is one configured organisation and period. Run may be called
// more than once and yields the same events each time.
type Simulation struct {
	o   Options
	w   *world
	eps []*episode
}

// New builds the organisation's reference data and plans the injected
// episodes.
func New(o Options) (*Simulation, error) {
	if o.Days == 0 {
		o.Days = 7
	}
	if o.Days < 0 || o.Days > 3660 {
		return nil, fmt.Errorf("simulate: days %d out of range", o.Days)
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Scale < 0 || math.IsNaN(o.Scale) || o.Scale > 20 {
		return nil, fmt.Errorf("simulate: scale %v out of range", o.Scale)
	}
	if o.From.IsZero() {
		return nil, errors.New("simulate: From is required")
	}
	if o.Timezone == nil {
		loc, err := time.LoadLocation("Europe/London")
		if err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		o.Timezone = loc
	}
	rates := o.Injections
	if rates == (InjectionRates{}) {
		rates = DefaultInjectionRates(o.Org)
	}
	var w *world
	switch o.Org {
	case OrgStMartins:
		w = buildStMartins(o)
	case OrgWiltshire:
		w = buildWiltshire(o)
	default:
		return nil, fmt.Errorf("simulate: unknown org %q (want %s or %s)", o.Org, OrgStMartins, OrgWiltshire)
	}
	w.finish()
	s := &Simulation{o: o, w: w}
	if !rates.Disabled {
		s.eps = planEpisodes(w, rates, o.Seed)
	}
	w.planBackground()
	return s, nil
}

// Reference returns the organisation's reference data. The caller must not
// modify it.
func (s *Simulation) Reference() *reference.Data { return s.w.ref }

// Episodes reports how many episodes were planned per "check/pattern"
// (some may still be dropped at run time if no device is free).
func (s *Simulation) Episodes() map[string]int {
	m := make(map[string]int)
	for _, e := range s.eps {
		m[e.label.Check+"/"+e.label.Pattern]++
	}
	return m
}

// Run streams the period's events to fn in non-decreasing event time; label
// is nil for normal activity. ev and label are only valid during the call
// (ev is reused; its Sensitivity slice is shared and must not be modified).
// It stops at the first error fn returns, or when ctx is done.
func (s *Simulation) Run(ctx context.Context, fn func(ev *event.Event, label *Label) error) error {
	w := s.w
	w.reset()
	var h streamHeap
	for _, a := range w.actors {
		if len(a.windows) > 0 {
			st := &stream{id: len(h), bg: &bgState{a: a}, rng: rand.New(rand.NewPCG(uint64(s.o.Seed), uint64(len(h))+1))}
			st.bg.init(w)
			h = append(h, st)
		}
	}
	for _, e := range s.eps {
		h = append(h, &stream{id: len(h), ep: e, next: e.start, rng: rand.New(rand.NewPCG(uint64(s.o.Seed)^0x9e3779b97f4a7c15, uint64(len(h))+1))})
	}
	for _, st := range h {
		if st.bg != nil {
			st.bg.plan(w, st, time.Time{})
		}
	}
	h.init()

	var ev event.Event
	var seq int64
	idBuf := make([]byte, 0, 32)
	for len(h) > 0 {
		st := h[0]
		if st.done || !st.next.Before(w.end) {
			h.pop()
			continue
		}
		if st.pos < len(st.buf) {
			p := &st.buf[st.pos]
			st.pos++
			seq++
			if seq&0xfff == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			idBuf = append(idBuf[:0], w.idPrefix...)
			idBuf = appendPadded(idBuf, seq, 7)
			w.fill(&ev, p, string(idBuf), st.rng)
			if err := fn(&ev, p.label); err != nil {
				return err
			}
			if st.pos < len(st.buf) {
				st.next = st.buf[st.pos].t
			} else {
				st.buf, st.pos = st.buf[:0], 0
				if st.bg != nil {
					st.bg.plan(w, st, st.next)
				} else {
					st.done = true
				}
			}
		} else if st.bg != nil {
			st.bg.plan(w, st, st.next)
		} else {
			w.runEpisode(st)
			if len(st.buf) == 0 {
				st.done = true
			} else {
				st.next = st.buf[0].t
			}
		}
		h.fix0()
	}
	return ctx.Err()
}

func appendPadded(b []byte, n int64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], n, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// stream is one source of events: an actor's background activity or one
// injected episode. Its buffered events are in time order.
type stream struct {
	id   int
	next time.Time
	key  int64 // next in unix nanoseconds, for cheap heap comparisons
	buf  []pending
	pos  int
	done bool
	rng  *rand.Rand
	bg   *bgState
	ep   *episode
}

// streamHeap is a min-heap on (next, id): id breaks ties so that the output
// is deterministic.
type streamHeap []*stream

func (h streamHeap) less(i, j int) bool {
	if h[i].key != h[j].key {
		return h[i].key < h[j].key
	}
	return h[i].id < h[j].id
}

func (h streamHeap) init() {
	for _, st := range h {
		st.key = st.next.UnixNano()
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h streamHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// fix0 restores the heap after the top stream's next changed.
func (h *streamHeap) fix0() {
	(*h)[0].key = (*h)[0].next.UnixNano()
	h.down(0)
}

func (h *streamHeap) pop() {
	old := *h
	n := len(old) - 1
	old[0] = old[n]
	old[n] = nil
	*h = old[:n]
	h.down(0)
}
