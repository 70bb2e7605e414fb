// Package rules runs the DPIA mitigation checks over access events in event
// time and turns what they find into alerts (CONTRACT §3). The Engine is the
// store's EvaluateFunc: it sees each event once, inside the same durable unit
// as the event itself, and returns the alerts and check state to save with
// it, so that a restart or a replay resumes exactly where it stopped.
//
// Each check judges one event at a time and reports findings to an episode
// tracker shared by all checks; the tracker groups findings of one (org,
// actor, check, pattern) that lie close in time into one growing alert,
// evicts episodes the org's event-time frontier has left behind, and
// checkpoints what changed. Checks that remember more keep it in Keyed
// tables, and events out of order within a lateness bound are judged as if
// in order: see state.go.
//
// The package names no check. Each lives in a package of its own under
// checks/, written against the small SDK exported here — Check (and the
// optional StatefulCheck and Holder), the read-only Env of one event,
// Episodes and Finding, Levels for knobs overridden by role and team,
// Keyed state, PolicyOf, ResolvePolicy and Resolved for its per-org policy,
// and the wording of explanations (wording.go) — and is registered with
// Register (through package checks; docs/checks/adding-a-check.md).
package rules

import (
	"fmt"
	"log/slog"
	"runtime"
	"slices"
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
// Retention ages exactly these entries (store.CheckStateMarker).
const StatePrefix = store.CheckStateMarker

// Roster is the reference data the checks need. *reference.Index satisfies
// it; tests use an in-memory fake.
type Roster interface {
	// Staff returns the staff record of actorID in org: the actor's org
	// (event.ActorOrg), never another's (CONTRACT §2).
	Staff(org, actorID string) (reference.Staff, bool)
	// HasStaff reports whether org has any staff row: only then is an
	// actor missing from it an unknown account.
	HasStaff(org string) bool
	// HasShifts reports whether actorID has any rostered shift in org.
	HasShifts(org, actorID string) bool
	// ShiftAt returns a shift of actorID in org with start-grace ≤ t ≤ end+grace.
	ShiftAt(org, actorID string, t time.Time, grace time.Duration) (reference.Shift, bool)
	// NearestShift returns the shift of actorID in org closest to t.
	NearestShift(org, actorID string, t time.Time) (reference.Shift, bool)
	// HasRelationships reports whether any relationship row applies in
	// org: without them no-business-need has nothing to judge against.
	HasRelationships(org string) bool
	// HasRelationship reports whether actorID, or team when not empty, has
	// a relationship with subjectID that applies in org, valid at t.
	HasRelationship(org, actorID, team, subjectID string, t time.Time) bool
	// NearestRelationship returns, among the relationships of actorID or
	// team with subjectID that apply in org and are not valid at t, the
	// latest to have ended at or before t, else the earliest to start
	// after it.
	NearestRelationship(org, actorID, team, subjectID string, t time.Time) (reference.Relationship, bool)
	// SharingAgreementFor returns an agreement of partnerOrg with org, in
	// force at t, that permits recordType and action.
	SharingAgreementFor(partnerOrg, org, recordType, action string, t time.Time) (reference.SharingAgreement, bool)
	// Device returns the devices.csv row of a device id in org.
	Device(org, id string) (reference.Device, bool)
	// AbsentAt returns an absence of actorID in org covering t.
	AbsentAt(org, actorID string, t time.Time) (reference.Absence, bool)
}

// RiskRef is one risk of a DPIA that a check evidences.
type RiskRef struct {
	ID         string // as numbered in the DPIA, e.g. "R2"
	Title      string // in the DPIA's own words
	Mitigation string // the mitigation the alert evidences
	// Score is the DPIA's overall score of the risk: "low", "medium",
	// "high", or "" when the DPIA left it unscored. The highest score among
	// a check's risks is its alerts' base severity; unscored, the check's
	// configured severity is.
	Score string
}

// OrgPolicy is how the checks judge one organisation's events.
type OrgPolicy struct {
	DPIA     string         // the DPIA id alerts point to
	Timezone *time.Location // nil: Europe/London
	// OutOfHoursRoles are roles (e.g. an emergency duty team) judged against
	// their rostered shifts only (CONTRACT §2).
	OutOfHoursRoles []string
	// Checks holds each check's own policy by check name, of the type the
	// check declares (outofhours.Policy, …) or a pointer to it; a check
	// without one runs with its defaults, a name no check has is refused. The engine never looks inside: each
	// check's registration turns its policy into what its hot path reads.
	Checks map[string]any
	// Risks maps a check name to the risks of the DPIA it evidences.
	Risks map[string][]RiskRef
	// PatternRisks maps a check name, then one of its patterns, to the
	// risks that pattern's alerts evidence instead of the check's Risks
	// (empty: none of the DPIA's risks covers it). A pattern not listed
	// takes its check's.
	PatternRisks map[string]map[string][]RiskRef
}

// Options configure an Engine. The zero value is usable: no orgs (every
// event ignored) and an empty roster.
type Options struct {
	Orgs   map[string]OrgPolicy // by org id; events of other orgs are ignored and counted
	Roster Roster               // nil: nobody has shifts or a staff record
	// Disabled names checks not to run (Checks lists them all); nil runs
	// every check.
	Disabled []string
	// Lateness is how far out of order events may arrive and still be
	// judged as if in order. 0: DefaultLateness; NoLateness: every event
	// is judged on arrival.
	Lateness time.Duration
	// MaxAhead bounds how far ahead of an org's watermark (and of Now) an
	// event may be and still move it. 0: DefaultMaxAhead.
	MaxAhead time.Duration
	// ExternalFrontier hands the evaluation frontier to the caller: events
	// wait until ProcessUntil moves their org's frontier past them, instead
	// of until the watermark less Lateness does. A keyed stream merged from
	// several inputs (the daemon's repartition topics) uses it to wait for
	// its slowest input, whatever the skew between them.
	ExternalFrontier bool
	// LoadEvents, when set, reads stored events back by key: the events
	// waiting for the frontier are then checkpointed as keys only (they are
	// stored in the same durable unit) and read back on Restore. nil: they
	// are checkpointed whole.
	LoadEvents func(keys []event.Key) ([]event.Event, error)
	// DiscardState makes Process and Flush return no state entries: for
	// replays and backtests, which never restore, encoding the checks'
	// state after every batch is a tenth of their CPU. The alerts are the
	// same either way.
	DiscardState bool
	// Now is the wall clock, for the daemon only: replays must not depend
	// on when they run. nil: no wall clock.
	Now        func() time.Time
	Logger     *slog.Logger // nil: discard
	Registerer prometheus.Registerer

	extraChecks []Check // tests add checks here
}

// Engine runs the checks. Its methods are safe for concurrent use, though the
// store calls Process from one goroutine at a time.
type Engine struct {
	logger   *slog.Logger
	metrics  *metrics
	orgs     map[string]*orgRuntime
	orgIDs   []string // sorted, for deterministic output
	roster   atomic.Pointer[rosterBox]
	lateness time.Duration
	maxAhead time.Duration
	now      func() time.Time
	external bool                                     // Options.ExternalFrontier
	load     func([]event.Key) ([]event.Event, error) // Options.LoadEvents
	discard  bool                                     // Options.DiscardState

	mu        sync.Mutex
	checks    []*checkRun
	holidays  *cal.Calendar        // guarded by mu: its cache is a plain map
	clocks    map[string]*orgClock // by org
	frontiers map[string]time.Time // org → evaluation frontier, for eviction
	env       Env                  // reused across events
	queue     []evaluation         // events to judge (judgeQueued)
}

// rosterBox lets an interface value live in an atomic.Pointer.
type rosterBox struct{ Roster }

// checkRun is one check, its episodes and its Keyed tables.
type checkRun struct {
	check     Check
	eps       *Episodes
	tables    []StateTable
	evaluated prometheus.Counter
	holidays  *cal.Calendar // its own: a calendar's cache is a plain map, and checks run side by side
}

// orgRuntime is an OrgPolicy made ready for the hot path.
type orgRuntime struct {
	id      string
	dpia    string
	loc     *time.Location
	ohRoles map[string]bool
	// policies holds each registered check's resolved policy at the slot
	// the check was built with (registration.build), so that the hot path
	// indexes a slice rather than looking a name up.
	policies []any
	risks    map[string]riskSet // by check name
	// patternRisks replace risks for the patterns the DPIA mapping names:
	// check name → pattern → risks.
	patternRisks map[string]map[string]riskSet
}

// risksOf returns the risks an alert of check and pattern evidences: the
// pattern's own where it has some, else the check's.
func (o *orgRuntime) risksOf(check, pattern string) riskSet {
	if rs, ok := o.patternRisks[check][pattern]; ok {
		return rs
	}
	return o.risks[check]
}

// riskSet is the alert fields a check's risks fill.
type riskSet struct {
	ids, titles []string
	mitigation  string
	severity    alert.Severity // from the DPIA's highest score; "" when unscored
}

// New validates o and builds an Engine.
func New(o Options) (*Engine, error) {
	e := &Engine{
		logger:    o.Logger,
		orgs:      make(map[string]*orgRuntime, len(o.Orgs)),
		holidays:  newHolidays(),
		clocks:    make(map[string]*orgClock),
		frontiers: make(map[string]time.Time),
		lateness:  o.Lateness,
		maxAhead:  o.MaxAhead,
		now:       o.Now,
		external:  o.ExternalFrontier,
		load:      o.LoadEvents,
		discard:   o.DiscardState,
	}
	switch {
	case e.lateness == 0:
		e.lateness = DefaultLateness
	case e.lateness < 0:
		e.lateness = 0
	}
	if e.maxAhead <= 0 {
		e.maxAhead = DefaultMaxAhead
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	e.SetRoster(o.Roster)

	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		return nil, fmt.Errorf("load default timezone: %w", err)
	}
	regs := registered()
	checks, err := selectChecks(append(newChecks(regs), o.extraChecks...), o.Disabled)
	if err != nil {
		return nil, err
	}
	for id, p := range o.Orgs {
		if id == "" {
			return nil, fmt.Errorf("org with an empty id")
		}
		rt := &orgRuntime{id: id, dpia: p.DPIA, loc: p.Timezone, ohRoles: make(map[string]bool), risks: make(map[string]riskSet),
			policies: make([]any, len(regs))}
		if rt.loc == nil {
			rt.loc = london
		}
		for _, r := range p.OutOfHoursRoles {
			rt.ohRoles[r] = true
		}
		for name := range p.Checks {
			if !slices.ContainsFunc(regs, func(r Registration) bool { return r.Name == name }) {
				return nil, fmt.Errorf("org %s: policy for unknown check %q", id, name)
			}
		}
		for i, r := range regs {
			if rt.policies[i], err = r.Policy(p.Checks[r.Name]); err != nil {
				return nil, fmt.Errorf("org %s: %s policy: %w", id, r.Name, err)
			}
		}
		for name, refs := range p.Risks {
			if rt.risks[name], err = newRiskSet(refs); err != nil {
				return nil, fmt.Errorf("org %s: check %s: %w", id, name, err)
			}
		}
		rt.patternRisks = make(map[string]map[string]riskSet, len(p.PatternRisks))
		for name, byPattern := range p.PatternRisks {
			rt.patternRisks[name] = make(map[string]riskSet, len(byPattern))
			for pattern, refs := range byPattern {
				if rt.patternRisks[name][pattern], err = newRiskSet(refs); err != nil {
					return nil, fmt.Errorf("org %s: check %s: pattern %s: %w", id, name, pattern, err)
				}
			}
		}
		e.orgs[id] = rt
		e.orgIDs = append(e.orgIDs, id)
	}
	sort.Strings(e.orgIDs)
	for _, c := range checks {
		run := &checkRun{check: c, eps: newEpisodes(c.Name()), holidays: newHolidays()}
		if sc, ok := c.(StatefulCheck); ok {
			seen := map[string]bool{}
			for _, t := range sc.States() {
				if n := t.tableName(); n+"/" == episodeTable || seen[n] {
					return nil, fmt.Errorf("check %s: state table %q is reserved or declared twice", c.Name(), n)
				}
				seen[t.tableName()] = true
				t.bind(StatePrefix + c.Name() + "/")
				run.tables = append(run.tables, t)
			}
		}
		e.checks = append(e.checks, run)
	}
	if e.metrics, err = newMetrics(o.Registerer, checks, e.orgs); err != nil {
		return nil, err
	}
	for _, c := range e.checks {
		c.evaluated = e.metrics.evaluations.WithLabelValues(c.check.Name())
	}
	return e, nil
}

// newHolidays returns a calendar of the bank holidays of England and Wales.
func newHolidays() *cal.Calendar {
	c := &cal.Calendar{Name: "England and Wales", Cacheable: true}
	c.AddHoliday(gb.Holidays...)
	return c
}

// selectChecks drops the disabled checks; naming an unknown one is an error,
// so that a typo cannot leave a check running.
func selectChecks(all []Check, disabled []string) ([]Check, error) {
	off := map[string]bool{}
	for _, n := range disabled {
		if !slices.ContainsFunc(all, func(c Check) bool { return c.Name() == n }) {
			return nil, fmt.Errorf("cannot disable unknown check %q", n)
		}
		off[n] = true
	}
	var on []Check
	for _, c := range all {
		if !off[c.Name()] {
			on = append(on, c)
		}
	}
	return on, nil
}

// newRiskSet makes the alert fields of a list of risks: their ids and
// titles, their mitigations joined, and the severity of the highest score.
func newRiskSet(refs []RiskRef) (riskSet, error) {
	var rs riskSet
	var mits []string
	for _, r := range refs {
		if r.ID == "" {
			return rs, fmt.Errorf("risk with an empty id")
		}
		rs.ids = append(rs.ids, r.ID)
		rs.titles = append(rs.titles, r.Title)
		sev, err := scoreSeverity(r.Score)
		if err != nil {
			return rs, fmt.Errorf("risk %s: %w", r.ID, err)
		}
		if sev.Rank() > rs.severity.Rank() {
			rs.severity = sev
		}
		if r.Mitigation != "" && !contains(mits, r.Mitigation) {
			mits = append(mits, r.Mitigation)
		}
	}
	rs.mitigation = strings.Join(mits, "; ")
	return rs, nil
}

// scoreSeverity maps a DPIA risk score to an alert severity.
func scoreSeverity(score string) (alert.Severity, error) {
	switch strings.ToLower(score) {
	case "":
		return "", nil
	case "low":
		return alert.SeverityLow, nil
	case "medium":
		return alert.SeverityMedium, nil
	case "high":
		return alert.SeverityHigh, nil
	}
	return "", fmt.Errorf("unknown risk score %q", score)
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

// Process judges fresh, in the order given, in event time (see state.go):
// events wait until the org's frontier passes them, unless they are late
// beyond the bound. It returns the alerts opened or grown and the state
// entries changed. It is a store.EvaluateFunc. If the store then fails to
// apply the batch, the caller must Reset and Restore from the store before
// retrying.
func (e *Engine) Process(fresh []event.Event) (store.Effects, error) {
	return e.ProcessUntil(fresh, nil)
}

// ProcessUntil is Process, then, with Options.ExternalFrontier, moves each
// org's frontier to frontiers[org] (never back) and judges, in event time,
// every waiting event it passes. An event arriving at or before its org's
// frontier is late: judged at once and counted, as in Process. Without
// ExternalFrontier, frontiers is ignored.
func (e *Engine) ProcessUntil(fresh []event.Event, frontiers map[string]time.Time) (store.Effects, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.env = Env{roster: e.roster.Load().Roster, holidays: e.holidays}
	for i := range fresh {
		ev := &fresh[i]
		org, ok := e.orgs[ev.Org]
		if !ok {
			e.metrics.ignored.WithLabelValues(ignoredUnknownOrg).Inc()
			continue
		}
		if !ev.Actor.Kind.IsStaff() {
			// A patient, relative or system (a portal, an interface) is
			// stored as such and never judged as staff access (issue 12).
			e.metrics.ignored.WithLabelValues(ignoredNotStaff).Inc()
			continue
		}
		e.accept(org, ev)
	}
	if e.external {
		for _, id := range e.orgIDs {
			f, ok := frontiers[id]
			c := e.clocks[id]
			if !ok || c == nil {
				continue
			}
			if f.After(c.wm) {
				// The other inputs are further on than this stream's own
				// events: everything up to the frontier has been accepted.
				c.wm, c.dirty = f.UTC(), true
			}
			e.releaseUntil(e.orgs[id], c, f)
		}
	}
	return e.finish()
}

// Watermarks returns each org's watermark: the newest event time the Engine
// has accepted (not necessarily judged yet). An org the Engine has seen no
// event of is absent.
func (e *Engine) Watermarks() map[string]time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]time.Time, len(e.clocks))
	for org, c := range e.clocks {
		if !c.wm.IsZero() {
			out[org] = c.wm
		}
	}
	return out
}

// accept takes one event of a known org.
func (e *Engine) accept(org *orgRuntime, ev *event.Event) {
	c := e.clocks[org.id]
	if c == nil {
		c = &orgClock{}
		e.clocks[org.id] = c
	}
	if !e.advance(c, ev.Time) {
		e.metrics.future.Inc()
		e.evaluateAt(org, ev, c.judged)
		return
	}
	if !ev.Time.After(c.frontier) {
		e.metrics.late.Inc()
		e.evaluate(org, c, ev)
		return
	}
	if e.external {
		c.push(ev) // until ProcessUntil moves the frontier past it
		return
	}
	f := c.wm.Add(-e.lateness)
	if c.wait.Len() == 0 && !ev.Time.After(f) {
		// In order with nothing waiting (always so without lateness).
		e.moveFrontier(c, f)
		e.evaluate(org, c, ev)
		return
	}
	c.push(ev)
	e.moveFrontier(c, f)
	for {
		w, ok := c.next()
		if !ok {
			break
		}
		e.evaluate(org, c, w)
	}
}

// advance moves c's watermark to t if t is newer and not absurdly far ahead;
// it reports false for an event beyond the bound.
func (e *Engine) advance(c *orgClock, t time.Time) bool {
	limit, bounded := c.wm, !c.wm.IsZero()
	if e.now != nil {
		limit, bounded = maxTime(limit, e.now()), true
	}
	if bounded && t.After(limit.Add(e.maxAhead)) {
		if e.now != nil {
			return false // the wall clock says it is a bad clock
		}
		if c.aheadN == 0 || t.Before(c.aheadMin) {
			c.aheadMin = t.UTC()
		}
		c.aheadN++
		c.dirty = true
		if c.aheadN < AheadConfirm {
			return false
		}
		// The stream has jumped: from the earliest of the run on.
		t = c.aheadMin
	}
	if c.aheadN > 0 {
		c.aheadN, c.aheadMin, c.dirty = 0, time.Time{}, true
	}
	if t.After(c.wm) {
		c.wm, c.dirty = t.UTC(), true
	}
	return true
}

// releaseUntil moves c's frontier to f and judges, in event time, every
// waiting event it passes.
func (e *Engine) releaseUntil(org *orgRuntime, c *orgClock, f time.Time) {
	e.moveFrontier(c, f)
	for {
		w, ok := c.next()
		if !ok {
			return
		}
		e.evaluate(org, c, w)
	}
}

func (e *Engine) moveFrontier(c *orgClock, f time.Time) {
	if f.After(c.frontier) {
		c.frontier, c.dirty = f.UTC(), true
	}
}

// evaluate runs every check over one event, moving the org's judged time.
// A late event (before the judged time) is judged against the org's clock
// as it stands, but its findings join episodes as they would have had it
// come on time.
func (e *Engine) evaluate(org *orgRuntime, c *orgClock, ev *event.Event) {
	if ev.Time.After(c.judged) {
		c.judged, c.dirty = ev.Time.UTC(), true
	}
	q := evaluation{org: org, ev: ev, now: c.judged}
	if ev.Time.Before(c.judged) {
		q.episodeNow = ev.Time
	}
	e.queue = append(e.queue, q)
}

// evaluateAt queues ev to be judged by every check at its org's time now;
// judgeQueued runs the queue.
func (e *Engine) evaluateAt(org *orgRuntime, ev *event.Event, now time.Time) {
	e.queue = append(e.queue, evaluation{org: org, ev: ev, now: now})
}

// evaluation is one event to judge, at its org's judged time.
type evaluation struct {
	org *orgRuntime
	ev  *event.Event
	now time.Time
	// episodeNow, when set, is the time a late event's findings are
	// matched to episodes at: its own (env.episodeNow).
	episodeNow time.Time
	resolved   // about ev, in the batch's reference data
}

// parallelFrom is the queue length from which the checks run side by side.
const parallelFrom = 1024

// judgeQueued runs every check over the queued evaluations, in order, and
// empties the queue. Each check reads only the event, the env and its own
// episodes and tables (see check), so the checks are independent of each
// other: with a long queue each runs on a goroutine of its own, with an env
// and a holiday calendar of its own, and the results are those of running
// them one after another.
func (e *Engine) judgeQueued() {
	q := e.queue
	if len(q) == 0 {
		return
	}
	e.resolveQueued(q)
	run := func(r *checkRun) {
		v := Env{roster: e.env.roster, holidays: r.holidays}
		n := 0
		for i := range q {
			v.org, v.watermark, v.episodeNow, v.cur = q[i].org, q[i].now, q[i].episodeNow, &q[i]
			if r.check.Evaluate(q[i].ev, &v, r.eps) {
				n++
			}
		}
		r.evaluated.Add(float64(n))
	}
	if len(q) < parallelFrom || len(e.checks) < 2 {
		for _, r := range e.checks {
			run(r)
		}
	} else {
		var wg sync.WaitGroup
		for _, r := range e.checks {
			wg.Go(func() { run(r) })
		}
		wg.Wait()
	}
	clear(q)
	e.queue = q[:0]
}

// resolveQueued looks up, for every check at once, what the checks ask of
// the reference data about each queued event (resolved), on every core
// when the queue is long, and counts the events of unknown accounts.
func (e *Engine) resolveQueued(q []evaluation) {
	r := e.env.roster
	part := func(q []evaluation) map[*orgRuntime]int {
		var unknown map[*orgRuntime]int
		for i := range q {
			ev := q[i].ev
			q[i].resolved = resolve(r, ev)
			// Counted once, by the engine of the input stream: the tasks
			// of the repartitioned checks (ExternalFrontier) see the same
			// events.
			if !q[i].known && !e.external && r.HasStaff(ev.ActorOrg()) {
				if unknown == nil {
					unknown = map[*orgRuntime]int{}
				}
				unknown[q[i].org]++
			}
		}
		return unknown
	}
	count := func(unknown map[*orgRuntime]int) {
		for org, n := range unknown {
			e.metrics.unknown.WithLabelValues(org.id).Add(float64(n))
		}
	}
	n := min(runtime.GOMAXPROCS(0), len(q)/parallelFrom)
	if n < 2 {
		count(part(q))
		return
	}
	counts := make([]map[*orgRuntime]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { counts[i] = part(q[len(q)*i/n : len(q)*(i+1)/n]) })
	}
	wg.Wait()
	for _, c := range counts {
		count(c)
	}
}

// finish collects the effects of a batch: waiting events and clocks, then
// each check's episodes and tables, after evicting what the frontiers have
// left behind.
func (e *Engine) finish() (store.Effects, error) {
	e.judgeQueued()
	var fx store.Effects
	var err error
	pending := 0
	for _, id := range e.orgIDs {
		c := e.clocks[id]
		if c == nil {
			continue
		}
		if e.discard {
			c.discardCheckpoint()
		} else if fx.State, err = c.checkpoint(id, fx.State, e.load != nil); err != nil {
			return store.Effects{}, err
		}
		e.frontiers[id] = c.judged
		pending += c.wait.Len()
	}
	for _, r := range e.checks {
		r.eps.evict(e.frontiers)
		alerts, opened, state, err := r.eps.drain(e.discard)
		if err != nil {
			return store.Effects{}, err
		}
		for i := range alerts {
			// The data this batch judged against (e.env, taken when the
			// batch began). An episode that grows under newer data carries
			// the newest judgement's id: each change is a new judgement.
			if named, ok := e.env.roster.(interface{ ReferenceID() string }); ok {
				alerts[i].ReferenceID = named.ReferenceID()
			}
			if opened[i] {
				a := &alerts[i]
				e.countAlert(a)
				e.logger.Debug("alert opened", "check", a.Check, "pattern", a.Pattern, "org", a.Org, "alert", a.ID)
			}
		}
		fx.Alerts = append(fx.Alerts, alerts...)
		fx.State = append(fx.State, state...)
		for _, t := range r.tables {
			t.evict(e.frontiers)
			if fx.State, err = t.drain(fx.State, e.discard); err != nil {
				return store.Effects{}, err
			}
		}
	}
	e.metrics.pending.Set(float64(pending))
	e.updateGauges()
	return fx, nil
}

func (e *Engine) countAlert(a *alert.Alert) { countAlert(e.metrics.alerts, a) }

func (e *Engine) updateGauges() {
	for _, c := range e.checks {
		e.metrics.open.WithLabelValues(c.check.Name()).Set(float64(c.eps.len()))
		n := 0
		for _, t := range c.tables {
			n += t.size()
		}
		e.metrics.keys.WithLabelValues(c.check.Name()).Set(float64(n))
	}
}

// Restore loads checkpointed state (keys under StatePrefix) into the Engine:
// after New, or after Reset when a batch failed to apply. Entries of checks
// or tables this Engine does not run are skipped.
func (e *Engine) Restore(entries []store.StateEntry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Clocks first: which waiting events are still pending depends on them.
	for _, s := range entries {
		org, ok := strings.CutPrefix(s.Key, watermarkPrefix)
		if !ok || s.Value == nil {
			continue
		}
		st, err := decodeClock(s.Value)
		if err != nil {
			return fmt.Errorf("restore %s: %w", s.Key, err)
		}
		org = unescapeKey(org)
		c := e.clocks[org]
		if c == nil {
			c = &orgClock{}
			e.clocks[org] = c
		}
		c.wm, c.frontier, c.judged, c.aheadN, c.aheadMin = st.Watermark, st.Frontier, st.Judged, st.Ahead, st.AheadMin
	}
	eps, keys, waiting := 0, 0, 0
	for _, s := range entries {
		if s.Value == nil || strings.HasPrefix(s.Key, watermarkPrefix) {
			continue
		}
		if strings.HasPrefix(s.Key, pendingPrefix) {
			org, ok := orgOfPending(s.Key)
			if !ok {
				return fmt.Errorf("restore %s: malformed key", s.Key)
			}
			c := e.clocks[org]
			if c == nil {
				return fmt.Errorf("restore %s: waiting events of an org without a watermark", s.Key)
			}
			n := c.wait.Len()
			if err := c.restoreChunk(org, s.Key, s.Value, e.load); err != nil {
				return fmt.Errorf("restore %s: %w", s.Key, err)
			}
			waiting += c.wait.Len() - n
			continue
		}
		for _, c := range e.checks {
			if strings.HasPrefix(s.Key, c.eps.prefix+episodeTable) {
				if err := c.eps.restore(s.Key, s.Value); err != nil {
					return fmt.Errorf("restore %s: %w", s.Key, err)
				}
				eps++
				continue
			}
			for _, t := range c.tables {
				if t.owns(s.Key) {
					if err := t.restore(s.Key, s.Value); err != nil {
						return fmt.Errorf("restore %s: %w", s.Key, err)
					}
					keys++
				}
			}
		}
	}
	e.updateGauges()
	e.logger.Info("rules state restored", "entries", len(entries), "episodes", eps, "keys", keys, "waiting_events", waiting)
	return nil
}

// Reset forgets all state: clocks, waiting events, episodes and tables.
func (e *Engine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.clocks)
	clear(e.frontiers)
	for _, c := range e.checks {
		c.eps.reset()
		for _, t := range c.tables {
			t.reset()
		}
	}
	e.metrics.pending.Set(0)
	e.updateGauges()
}

// Flush judges every waiting event, as at the end of a replay, and returns
// the effects. Open episodes and state stay in memory: they are what a later
// replay or restart continues from. An error (an unencodable state value, a
// bug) is logged: the alerts are returned all the same.
func (e *Engine) Flush() store.Effects {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.env = Env{roster: e.roster.Load().Roster, holidays: e.holidays}
	for _, id := range e.orgIDs {
		c := e.clocks[id]
		if c == nil {
			continue
		}
		e.releaseUntil(e.orgs[id], c, c.wm) // every waiting event is at or before the watermark
		e.judgeQueued()                     // the org's events are judged before what they held is reported
		for _, r := range e.checks {
			if h, ok := r.check.(Holder); ok {
				e.env.org, e.env.watermark, e.env.episodeNow = e.orgs[id], c.judged, time.Time{}
				h.FlushHeld(&e.env, r.eps)
			}
		}
	}
	fx, err := e.finish()
	if err != nil {
		e.logger.Error("rules flush failed", "err", err)
	}
	return fx
}

// Env is what a check may read while judging one event: the org's
// settings, the reference data of the batch, the bank holidays and the
// org's clock. It is read-only to checks and valid only during the call
// it is handed to (the Engine reuses it).
type Env struct {
	org       *orgRuntime
	roster    Roster
	holidays  *cal.Calendar
	watermark time.Time
	// episodeNow, when not zero, is the clock episodes are matched at: a
	// late event's own time (see Episodes.Add).
	episodeNow time.Time
	// cur is the evaluation being judged (nil outside judgeQueued): what
	// was resolved about its event (Env.ActorGroups, Env.SessionDevice).
	cur *evaluation
}

// OrgID is the id of the org whose event is judged.
func (v *Env) OrgID() string { return v.org.id }

// Location is the org's timezone, in which working hours and days are
// read.
func (v *Env) Location() *time.Location { return v.org.loc }

// OutOfHoursRole reports whether role is one of the org's out-of-hours
// roles (OrgPolicy.OutOfHoursRoles), judged against rostered shifts only.
func (v *Env) OutOfHoursRole(role string) bool { return v.org.ohRoles[role] }

// Roster is the reference data the batch is judged against.
func (v *Env) Roster() Roster { return v.roster }

// Watermark is the org's judged time: state and episodes idle for longer
// than their horizon or gap before it are closed.
func (v *Env) Watermark() time.Time { return v.watermark }

// IsHoliday reports whether the local date of t (already in the org's
// timezone) is a bank holiday in England and Wales, actual or substitute,
// and names it.
func (v *Env) IsHoliday(t time.Time) (string, bool) {
	act, obs, h := v.holidays.IsHoliday(t)
	if (act || obs) && h != nil {
		return h.Name, true
	}
	return "", false
}

// Check is one DPIA mitigation check. Evaluate judges one event of a known
// org, reports each finding to eps, and tells whether ev was one the check
// judges (for the evaluations metric). It must depend only on the event,
// the env and the episodes, so that replays are deterministic; what it
// remembers between events lives in Keyed tables (StatefulCheck).
type Check interface {
	Name() string
	Evaluate(ev *event.Event, v *Env, eps *Episodes) bool
}

// Holder is a check that holds findings back until the org's clock has
// passed their instant (events of one instant come in no given order);
// Flush, having judged every waiting event, has it report them all.
type Holder interface {
	FlushHeld(v *Env, eps *Episodes)
}

// emptyRoster knows nobody.
type emptyRoster struct{}

func (emptyRoster) HasRelationships(string) bool                                   { return false }
func (emptyRoster) HasRelationship(string, string, string, string, time.Time) bool { return false }
func (emptyRoster) NearestRelationship(string, string, string, string, time.Time) (reference.Relationship, bool) {
	return reference.Relationship{}, false
}
func (emptyRoster) SharingAgreementFor(string, string, string, string, time.Time) (reference.SharingAgreement, bool) {
	return reference.SharingAgreement{}, false
}

func (emptyRoster) Staff(string, string) (reference.Staff, bool)   { return reference.Staff{}, false }
func (emptyRoster) Device(string, string) (reference.Device, bool) { return reference.Device{}, false }
func (emptyRoster) HasStaff(string) bool                           { return false }
func (emptyRoster) HasShifts(string, string) bool                  { return false }
func (emptyRoster) AbsentAt(string, string, time.Time) (reference.Absence, bool) {
	return reference.Absence{}, false
}
func (emptyRoster) ShiftAt(string, string, time.Time, time.Duration) (reference.Shift, bool) {
	return reference.Shift{}, false
}
func (emptyRoster) NearestShift(string, string, time.Time) (reference.Shift, bool) {
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
