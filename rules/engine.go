// Package rules runs the DPIA mitigation checks over access events in event
// time and turns what they find into alerts (CONTRACT §3). The Engine is the
// store's EvaluateFunc: it sees each event once, inside the same durable unit
// as the event itself, and returns the alerts and check state to save with
// it, so that a restart or a replay resumes exactly where it stopped.
//
// Each check judges one event at a time and reports findings to an episode
// tracker shared by all checks; the tracker groups findings of one (org,
// actor, check, pattern) that lie close in time into one growing alert,
// evicts episodes the org's event-time watermark has left behind, and
// checkpoints what changed.
package rules

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// The default timezone must be DST-correct whatever the host ships.
	_ "time/tzdata"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/gb"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
)

// StatePrefix is the key prefix of every state entry the Engine saves; load
// it with store.Reader.LoadState(ctx, StatePrefix) and hand it to Restore.
const StatePrefix = "rules/"

// Roster is the reference data the checks need. *reference.Index satisfies
// it; tests use an in-memory fake.
type Roster interface {
	// Staff returns the staff record of actorID.
	Staff(actorID string) (reference.Staff, bool)
	// HasShifts reports whether actorID has any rostered shift.
	HasShifts(actorID string) bool
	// ShiftAt returns a shift of actorID with start-grace ≤ t ≤ end+grace.
	ShiftAt(actorID string, t time.Time, grace time.Duration) (reference.Shift, bool)
	// NearestShift returns the shift of actorID closest to t.
	NearestShift(actorID string, t time.Time) (reference.Shift, bool)
}

// RiskRef is one risk of a DPIA that a check evidences.
type RiskRef struct {
	ID         string // as numbered in the DPIA, e.g. "R2"
	Title      string // in the DPIA's own words
	Mitigation string // the mitigation the alert evidences
}

// OrgPolicy is how the checks judge one organisation's events.
type OrgPolicy struct {
	DPIA     string         // the DPIA id alerts point to
	Timezone *time.Location // nil: Europe/London
	// OutOfHoursRoles are roles (e.g. an emergency duty team) judged against
	// their rostered shifts only (CONTRACT §2).
	OutOfHoursRoles []string
	OutOfHours      OutOfHoursPolicy
	// Risks maps a check name to the risks of the DPIA it evidences.
	Risks map[string][]RiskRef
}

// Options configure an Engine. The zero value is usable: no orgs (every
// event ignored) and an empty roster.
type Options struct {
	Orgs       map[string]OrgPolicy // by org id; events of other orgs are ignored and counted
	Roster     Roster               // nil: nobody has shifts or a staff record
	Logger     *slog.Logger         // nil: discard
	Registerer prometheus.Registerer
}

// Engine runs the checks. Its methods are safe for concurrent use, though the
// store calls Process from one goroutine at a time.
type Engine struct {
	logger  *slog.Logger
	metrics *metrics
	orgs    map[string]*orgRuntime
	roster  atomic.Pointer[rosterBox]

	mu       sync.Mutex
	checks   []*checkRun
	holidays *cal.Calendar        // guarded by mu: its cache is a plain map
	marks    map[string]time.Time // org → newest event time seen (watermark)
	dirtyWM  []string             // orgs whose watermark moved in this batch
}

// rosterBox lets an interface value live in an atomic.Pointer.
type rosterBox struct{ Roster }

// checkRun is one check and its episodes.
type checkRun struct {
	check     check
	eps       *episodes
	evaluated prometheus.Counter
}

// orgRuntime is an OrgPolicy made ready for the hot path.
type orgRuntime struct {
	id      string
	dpia    string
	loc     *time.Location
	ohRoles map[string]bool
	ooh     *oohResolver
	risks   map[string]riskSet // by check name
}

// riskSet is the alert fields a check's risks fill.
type riskSet struct {
	ids, titles []string
	mitigation  string
}

// New validates o and builds an Engine.
func New(o Options) (*Engine, error) {
	e := &Engine{
		logger:   o.Logger,
		orgs:     make(map[string]*orgRuntime, len(o.Orgs)),
		holidays: &cal.Calendar{Name: "England and Wales", Cacheable: true},
		marks:    make(map[string]time.Time),
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	e.holidays.AddHoliday(gb.Holidays...)
	e.SetRoster(o.Roster)

	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		return nil, fmt.Errorf("load default timezone: %w", err)
	}
	checks := []check{outOfHours{}}
	for id, p := range o.Orgs {
		if id == "" {
			return nil, fmt.Errorf("org with an empty id")
		}
		rt := &orgRuntime{id: id, dpia: p.DPIA, loc: p.Timezone, ohRoles: make(map[string]bool), risks: make(map[string]riskSet)}
		if rt.loc == nil {
			rt.loc = london
		}
		for _, r := range p.OutOfHoursRoles {
			rt.ohRoles[r] = true
		}
		if rt.ooh, err = newOOHResolver(p.OutOfHours); err != nil {
			return nil, fmt.Errorf("org %s: out-of-hours policy: %w", id, err)
		}
		for name, refs := range p.Risks {
			var rs riskSet
			var mits []string
			for _, r := range refs {
				if r.ID == "" {
					return nil, fmt.Errorf("org %s: check %s: risk with an empty id", id, name)
				}
				rs.ids = append(rs.ids, r.ID)
				rs.titles = append(rs.titles, r.Title)
				if r.Mitigation != "" && !contains(mits, r.Mitigation) {
					mits = append(mits, r.Mitigation)
				}
			}
			rs.mitigation = strings.Join(mits, "; ")
			rt.risks[name] = rs
		}
		e.orgs[id] = rt
	}
	for _, c := range checks {
		e.checks = append(e.checks, &checkRun{check: c, eps: newEpisodes(c.Name())})
	}
	if e.metrics, err = newMetrics(o.Registerer, checks, e.orgs); err != nil {
		return nil, err
	}
	for _, c := range e.checks {
		c.evaluated = e.metrics.evaluations.WithLabelValues(c.check.Name())
	}
	return e, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// SetRoster swaps the reference data, e.g. after a reload; the next batch
// sees the new roster, a batch in progress keeps the one it started with.
func (e *Engine) SetRoster(r Roster) {
	if r == nil {
		r = emptyRoster{}
	}
	e.roster.Store(&rosterBox{r})
}

// Process runs every check over fresh, in the order given, and returns the
// alerts opened or grown and the state entries changed. It is a
// store.EvaluateFunc. If the store then fails to apply the batch, the caller
// must Reset and Restore from the store before retrying.
func (e *Engine) Process(fresh []event.Event) (store.Effects, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	env := &env{roster: e.roster.Load().Roster, holidays: e.holidays}
	for i := range fresh {
		ev := &fresh[i]
		org, ok := e.orgs[ev.Org]
		if !ok {
			e.metrics.ignored.WithLabelValues(ignoredUnknownOrg).Inc()
			continue
		}
		e.advance(org.id, ev.Time)
		env.org = org
		env.watermark = e.marks[org.id]
		for _, c := range e.checks {
			if c.check.Evaluate(ev, env, c.eps) {
				c.evaluated.Inc()
			}
		}
	}
	var fx store.Effects
	for _, org := range e.dirtyWM {
		v, err := encodeWatermark(e.marks[org])
		if err != nil {
			return store.Effects{}, err
		}
		fx.State = append(fx.State, store.StateEntry{Key: watermarkKey(org), Value: v})
	}
	e.dirtyWM = e.dirtyWM[:0]
	for _, c := range e.checks {
		c.eps.evict(e.marks)
		alerts, opened, state, err := c.eps.drain()
		if err != nil {
			return store.Effects{}, err
		}
		for i := range alerts {
			if opened[i] {
				a := &alerts[i]
				e.countAlert(a)
				e.logger.Debug("alert opened", "check", a.Check, "pattern", a.Pattern, "org", a.Org, "alert", a.ID)
			}
		}
		fx.Alerts = append(fx.Alerts, alerts...)
		fx.State = append(fx.State, state...)
	}
	e.updateGauges()
	return fx, nil
}

// advance moves org's watermark to t if t is newer.
func (e *Engine) advance(org string, t time.Time) {
	old, ok := e.marks[org]
	if ok && !t.After(old) {
		return
	}
	if !contains(e.dirtyWM, org) {
		e.dirtyWM = append(e.dirtyWM, org)
	}
	e.marks[org] = t.UTC()
}

func (e *Engine) countAlert(a *alert.Alert) {
	if len(a.Risks) == 0 {
		e.metrics.alerts.WithLabelValues(a.Check, a.DPIA, noRisk).Inc()
		return
	}
	for _, r := range a.Risks {
		e.metrics.alerts.WithLabelValues(a.Check, a.DPIA, r).Inc()
	}
}

func (e *Engine) updateGauges() {
	for _, c := range e.checks {
		e.metrics.open.WithLabelValues(c.check.Name()).Set(float64(c.eps.len()))
	}
}

// Restore loads checkpointed state (keys under StatePrefix) into the Engine:
// after New, or after Reset when a batch failed to apply. Entries of checks
// this Engine does not run are skipped.
func (e *Engine) Restore(entries []store.StateEntry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range entries {
		if s.Value == nil {
			continue
		}
		if org, ok := strings.CutPrefix(s.Key, watermarkPrefix); ok {
			t, err := decodeWatermark(s.Value)
			if err != nil {
				return fmt.Errorf("restore %s: %w", s.Key, err)
			}
			org = unescapeKey(org)
			if old, seen := e.marks[org]; !seen || t.After(old) {
				e.marks[org] = t
			}
			continue
		}
		for _, c := range e.checks {
			if !strings.HasPrefix(s.Key, c.eps.prefix) {
				continue
			}
			if err := c.eps.restore(s.Key, s.Value); err != nil {
				return fmt.Errorf("restore %s: %w", s.Key, err)
			}
			n++
		}
	}
	e.updateGauges()
	e.logger.Info("rules state restored", "entries", len(entries), "episodes", n)
	return nil
}

// Reset forgets all state: episodes and watermarks.
func (e *Engine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.marks)
	e.dirtyWM = e.dirtyWM[:0]
	for _, c := range e.checks {
		c.eps.reset()
	}
	e.updateGauges()
}

// Flush returns what is pending at the end of a replay. The Engine emits
// every alert change in the Process call that caused it and buffers nothing,
// so Flush has nothing to return; it exists so that a replay stays correct
// if a check ever needs to buffer.
func (e *Engine) Flush() store.Effects { return store.Effects{} }

// Checks returns the names of the checks the Engine runs, in the order it
// runs them (the scoring command scores exactly these).
func (e *Engine) Checks() []string {
	names := make([]string, len(e.checks))
	for i, c := range e.checks {
		names[i] = c.check.Name()
	}
	return names
}

// Open episodes stay in memory after Flush: they are the state a later
// replay or restart continues from.

// env is what a check may read while judging one event.
type env struct {
	org       *orgRuntime
	roster    Roster
	holidays  *cal.Calendar
	watermark time.Time
}

// isHoliday reports whether the local date of t (already in the org's
// timezone) is a bank holiday in England and Wales, actual or substitute.
func (v *env) isHoliday(t time.Time) (string, bool) {
	act, obs, h := v.holidays.IsHoliday(t)
	if (act || obs) && h != nil {
		return h.Name, true
	}
	return "", false
}

// check is one DPIA mitigation check. Evaluate judges one event of a known
// org, reports each finding to eps, and tells whether ev was one the check
// judges (for the evaluations metric). It must depend only on the event,
// the env and the episodes, so that replays are deterministic.
type check interface {
	Name() string
	Evaluate(ev *event.Event, v *env, eps *episodes) bool
}

// emptyRoster knows nobody.
type emptyRoster struct{}

func (emptyRoster) Staff(string) (reference.Staff, bool) { return reference.Staff{}, false }
func (emptyRoster) HasShifts(string) bool                { return false }
func (emptyRoster) ShiftAt(string, time.Time, time.Duration) (reference.Shift, bool) {
	return reference.Shift{}, false
}
func (emptyRoster) NearestShift(string, time.Time) (reference.Shift, bool) {
	return reference.Shift{}, false
}

// sortedKeys returns the keys of m in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
