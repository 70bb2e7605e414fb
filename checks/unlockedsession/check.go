package unlockedsession

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
)

// The unlocked-session check's patterns (CONTRACT §3); its name is Name.
const (

	// A session stayed open and unlocked between two of its events for
	// longer than its device kind allows.
	PatternUnlockedGap = "unlocked-gap"
	// Another account acted on a device while the previous account's
	// session on it was never locked, logged out or timed out.
	PatternDeviceHandover = "device-handover"
)

// Defaults of CONTRACT §4 and of what it leaves open.
const (
	// DefaultUnlockedLimit is the longest gap on devices of any kind that
	// has no limit of its own, and on devices devices.csv does not list.
	DefaultUnlockedLimit = 30 * time.Minute
	// DefaultTabletUnlockedLimit is the shared-tablet kind's own limit.
	DefaultTabletUnlockedLimit = 10 * time.Minute
	// DefaultOpenFor is how long after its last action a session that
	// logged neither a logout nor a timeout still counts as open on its
	// device: CONTRACT §4's rule for concurrent sessions.
	DefaultOpenFor = 30 * time.Minute
	// DefaultNewSessionAfter: a gap longer than this is taken as the end of
	// a session the system did not log, not as an unlocked one.
	DefaultNewSessionAfter = 12 * time.Hour
	// MaxUnlockedWindow bounds limit, open_for and new_session_after: the
	// check's state is forgotten after a day of silence.
	MaxUnlockedWindow = 24 * time.Hour
)

// ulsHorizon is how long the check keeps a session or device it has not
// heard of: longer than any window it may be configured with.
const ulsHorizon = MaxUnlockedWindow + time.Hour

// DeviceKeyedPatterns lists the patterns of unlocked-session whose state is
// keyed by device rather than by actor. When several daemons split the
// event topic by actor, these need the events of one device in one engine
// (a repartition by session.device); the others need the events of one
// actor. Set Knobs.DeviceHandover or UnlockedGap to false
// to run one half in each kind of engine.
func DeviceKeyedPatterns() []string { return []string{PatternDeviceHandover} }

// Knobs are the settings of the unlocked-session check at one
// level (org, device kind, role or team). A nil or zero field inherits from
// the less specific level, and in the end takes the default.
type Knobs struct {
	// Exempt: the actor's sessions are not judged for gaps, and a handover
	// from their session is not reported (e.g. a kiosk account). Default
	// false.
	Exempt *bool
	// UnlockedGap and DeviceHandover switch the patterns on or off. Default
	// true.
	UnlockedGap, DeviceHandover *bool
	// Limit is the longest allowed gap between two events of a session with
	// no lock, logout or timeout between. Default 30m, and 10m for the
	// shared-tablet kind unless its own level sets one (CONTRACT §4).
	Limit time.Duration
	// OpenFor is how long after its last action a session that logged no
	// lock, logout or timeout still counts as open on its device, for
	// device-handover. Default 30m (CONTRACT §4).
	OpenFor time.Duration
	// NewSessionAfter: a longer gap is taken as a session the system ended
	// without logging it, and is not judged. Default 12h.
	NewSessionAfter time.Duration
	// EpisodeGap: findings this close in time to an episode join it.
	// Default 1h.
	EpisodeGap time.Duration
	// Severity is the base severity where the DPIA leaves the evidenced
	// risks unscored; raised one step for a sensitive subject. Default
	// medium.
	Severity alert.Severity
}

// Policy is the check's settings for one org, with overrides
// for devices of a kind (devices.csv) and for actors of a role or a team.
// Each knob resolves most specific first: team, role, device kind, org,
// default. The org's Limit is thus the "elsewhere" of CONTRACT §4: it
// applies to kinds without a limit of their own, and shared-tablet has
// one (10m) unless DeviceKinds sets it.
type Policy struct {
	Knobs
	DeviceKinds map[string]Knobs
	Roles       map[string]Knobs
	Teams       map[string]Knobs
}

type ulsPolicy struct {
	exempt, gapOn, handoverOn bool
	limit, openFor, newAfter  time.Duration
	gap                       time.Duration
	severity                  alert.Severity
}

// ulsResolver holds every resolved combination of device kind, role and
// team that the policy names, built once so that the hot path only reads.
type ulsResolver struct {
	kinds, roles, teams map[string]bool
	byKey               map[[3]string]*ulsPolicy // [kind, role, team], "" for none
}

func newULSResolver(p Policy) (*ulsResolver, error) {
	r := &ulsResolver{kinds: map[string]bool{}, roles: map[string]bool{}, teams: map[string]bool{}, byKey: map[[3]string]*ulsPolicy{}}
	kinds, roles, teams := []string{""}, []string{""}, []string{""}
	for _, l := range []struct {
		what string
		m    map[string]Knobs
		set  map[string]bool
		list *[]string
	}{{"device kind", p.DeviceKinds, r.kinds, &kinds}, {"role", p.Roles, r.roles, &roles}, {"team", p.Teams, r.teams, &teams}} {
		for _, k := range slices.Sorted(maps.Keys(l.m)) {
			if k == "" {
				return nil, fmt.Errorf("%s override with an empty %s", l.what, l.what)
			}
			l.set[k] = true
			*l.list = append(*l.list, k)
		}
	}
	if !r.kinds[reference.DeviceSharedTablet] { // its CONTRACT §4 limit
		r.kinds[reference.DeviceSharedTablet] = true
		kinds = append(kinds, reference.DeviceSharedTablet)
	}
	for _, kind := range kinds {
		for _, role := range roles {
			for _, team := range teams {
				levels := []Knobs{p.Knobs}
				if kind != "" {
					k := p.DeviceKinds[kind]
					if kind == reference.DeviceSharedTablet && k.Limit == 0 {
						k.Limit = DefaultTabletUnlockedLimit
					}
					levels = append(levels, k)
				}
				if role != "" {
					levels = append(levels, p.Roles[role])
				}
				if team != "" {
					levels = append(levels, p.Teams[team])
				}
				pol, err := resolveULS(levels)
				if err != nil {
					where := "org"
					switch {
					case team != "":
						where = "team " + team
					case role != "":
						where = "role " + role
					case kind != "":
						where = "device kind " + kind
					}
					return nil, fmt.Errorf("%s: %w", where, err)
				}
				r.byKey[[3]string{kind, role, team}] = pol
			}
		}
	}
	return r, nil
}

func resolveULS(levels []Knobs) (*ulsPolicy, error) {
	p := &ulsPolicy{
		gapOn: true, handoverOn: true, limit: DefaultUnlockedLimit, openFor: DefaultOpenFor,
		newAfter: DefaultNewSessionAfter, gap: rules.DefaultEpisodeGap, severity: alert.SeverityMedium,
	}
	for _, k := range levels {
		if k.Exempt != nil {
			p.exempt = *k.Exempt
		}
		if k.UnlockedGap != nil {
			p.gapOn = *k.UnlockedGap
		}
		if k.DeviceHandover != nil {
			p.handoverOn = *k.DeviceHandover
		}
		if k.Limit != 0 {
			p.limit = k.Limit
		}
		if k.OpenFor != 0 {
			p.openFor = k.OpenFor
		}
		if k.NewSessionAfter != 0 {
			p.newAfter = k.NewSessionAfter
		}
		if k.EpisodeGap != 0 {
			p.gap = k.EpisodeGap
		}
		if k.Severity != "" {
			p.severity = k.Severity
		}
	}
	switch {
	case p.limit < 0 || p.openFor < 0 || p.newAfter < 0 || p.gap < 0:
		return nil, fmt.Errorf("limit, open_for, new_session_after and episode gap must not be negative")
	case p.limit > MaxUnlockedWindow || p.openFor > MaxUnlockedWindow || p.newAfter > MaxUnlockedWindow:
		return nil, fmt.Errorf("limit, open_for and new_session_after must not exceed %v", MaxUnlockedWindow)
	case p.newAfter <= p.limit:
		return nil, fmt.Errorf("new_session_after (%v) must be longer than the limit (%v)", p.newAfter, p.limit)
	case p.severity.Rank() < 0:
		return nil, fmt.Errorf("unknown severity %q", p.severity)
	}
	return p, nil
}

func (r *ulsResolver) get(kind, role, team string) *ulsPolicy {
	if !r.kinds[kind] {
		kind = ""
	}
	if !r.roles[role] {
		role = ""
	}
	if !r.teams[team] {
		team = ""
	}
	return r.byKey[[3]string{kind, role, team}]
}

// ulsSession is what the check remembers of one open session: its latest
// event, and whether the session has been locked since.
type ulsSession struct {
	Last   time.Time    `json:"last"`
	LastID string       `json:"last_id"`
	Action event.Action `json:"action"` // of the latest event, for the explanation
	Locked bool         `json:"locked,omitempty"`
}

// ulsDevice is the account whose session a device last showed.
type ulsDevice struct {
	Actor  string       `json:"actor"`
	System string       `json:"system"`
	Last   time.Time    `json:"last"`
	LastID string       `json:"last_id"`
	Action event.Action `json:"action"` // of the latest event, for the explanation
	Locked bool         `json:"locked,omitempty"`
}

// ulsHandover is a handover found but not yet reported. Events of one
// instant are judged in an order the log does not give (a logout and the
// next login stamped the same second), so the holder's session may yet turn
// out to have ended at that very instant: the handover is reported once
// the org's clock has passed it, or at Flush, unless the holder's logout,
// timeout or lock of that instant came first.
type ulsHandover struct {
	Device string      `json:"device"`
	Kind   string      `json:"kind,omitempty"`
	Holder ulsDevice   `json:"holder"` // the session left open
	Idle   int64       `json:"idle_ns"`
	Event  event.Event `json:"event"` // the other account's
}

// unlockedSession is the unlocked-session check (CONTRACT §4, issue 3).
//
// unlocked-gap follows each session in its own state, keyed by actor,
// system and session id (actor and device when the event has no session
// id), so that it runs wherever the actor's events are. Every event of the
// session is an action for the gap: a gap that ends at a lock, logout or
// timeout counts (the session sat unlocked until then); a gap that starts
// at a lock does not (the session was locked), nor one that ends at an
// unlock (which proves a lock the log may have missed) or at a login (a new
// session). A logout or timeout ends the session. Failed session actions
// (login_failed, a failed unlock) are not the session's; failed record
// actions are (someone was at the device).
//
// device-handover follows each device in state keyed by device: the
// account whose session it last showed, until that session is locked,
// logged out, timed out or idle for OpenFor. Another account acting on the
// device before then is a handover; the episode is the first account's (it
// left the session open) and names the second.
//
// An event older than the state it would update (late beyond the lateness
// bound) updates nothing and is not judged: it cannot unsay what was judged.
type unlockedSession struct {
	sessions  *rules.Keyed[ulsSession]    // by actor, system and session
	devices   *rules.Keyed[ulsDevice]     // by device
	handovers *rules.Keyed[[]ulsHandover] // one key per org: the few held back, by time
	slot      int                         // of its policy (registration.build)
	key       []byte                      // the session key being judged (appendSessionKey)
}

// handoversKey is the one key of the handovers table.
const handoversKey = "held"

func newUnlockedSession(slot int) *unlockedSession {
	return &unlockedSession{
		slot:      slot,
		sessions:  rules.NewKeyed[ulsSession]("sessions", ulsHorizon),
		devices:   rules.NewKeyed[ulsDevice]("devices", ulsHorizon),
		handovers: rules.NewKeyed[[]ulsHandover]("handovers", ulsHorizon),
	}
}

func (*unlockedSession) Name() string { return Name }

func (c *unlockedSession) States() []rules.StateTable {
	return []rules.StateTable{c.sessions, c.devices, c.handovers}
}

// Evaluate judges an event that carries a session id or a device, after
// reporting the handovers the org's clock has passed.
func (c *unlockedSession) Evaluate(ev *event.Event, v *rules.Env, eps *rules.Episodes) bool {
	c.release(v, eps, false)
	if ev.Session.ID == "" && ev.Session.Device == "" {
		return false // nothing tells its session apart
	}
	kind := ""
	if ev.Session.Device != "" {
		if d, ok := v.SessionDevice(ev); ok {
			kind = d.Kind
		}
	}
	role, team, _, _ := v.ActorGroups(ev)
	p := rules.Resolved[ulsResolver](v, c.slot).get(kind, role, team)
	if p.gapOn && !p.exempt {
		c.judgeGap(ev, v, eps, p, kind, role, team)
	}
	if ev.Session.Device != "" {
		c.judgeDevice(ev, v, eps, kind)
	}
	return true
}

// ulsActorGroups returns the actor's role and team: org's roster's, else the
// event's. A device's earlier holder is looked up in the device's org (the
// event's): the device state keeps only their id.
func ulsActorGroups(r rules.Roster, org string, a *event.Actor) (role, team string) {
	role, team, _, _ = rules.ActorGroups(r, org, a)
	return role, team
}

// ulsFailedSessionAction: a failed login or unlock belongs to no open session.
func ulsFailedSessionAction(ev *event.Event) bool {
	return ev.Action == event.ActionLoginFailed || (ev.Outcome == event.OutcomeFailure && !ev.Action.IsRecordAction())
}

// appendSessionKey appends the sessions table's key of ev's session to b:
// its system, actor and session id, else device. Built in a buffer the
// check reuses, so that judging an event of a known session allocates
// nothing for it (rules.Keyed.GetBytes).
func appendSessionKey(b []byte, ev *event.Event) []byte {
	kind, id := "s", ev.Session.ID
	if id == "" {
		kind, id = "d", ev.Session.Device
	}
	b = append(append(b, kind...), 0)
	b = append(append(b, ev.System...), 0)
	b = append(append(b, ev.Actor.ID...), 0)
	return append(b, id...)
}

func (c *unlockedSession) judgeGap(ev *event.Event, v *rules.Env, eps *rules.Episodes, p *ulsPolicy, kind, role, team string) {
	if ulsFailedSessionAction(ev) {
		return
	}
	c.key = appendSessionKey(c.key[:0], ev)
	key := c.key
	st, open := c.sessions.GetBytes(v, key)
	t := ev.Time.UTC()
	if open && t.Before(st.Last) {
		return
	}
	// Whether the gap since the session's last event ends here and counts.
	judged := open && !st.Locked
	switch ev.Action {
	case event.ActionLogin, event.ActionUnlock:
		judged = false
	}
	if judged {
		if d := t.Sub(st.Last); d > p.limit && d <= p.newAfter {
			c.reportGap(ev, v, eps, p, st, d, kind, role, team)
		}
	}
	switch ev.Action {
	case event.ActionLogout, event.ActionTimeout:
		if open {
			c.sessions.DeleteBytes(v, key)
		}
		return
	}
	c.sessions.PutBytes(v, key, t, ulsSession{Last: t, LastID: ev.ID, Action: ev.Action, Locked: ev.Action == event.ActionLock})
}

func (c *unlockedSession) reportGap(ev *event.Event, v *rules.Env, eps *rules.Episodes, p *ulsPolicy, st ulsSession, d time.Duration, kind, role, team string) {
	loc := v.Location()
	dev := ev.Session.Device
	f := rules.Finding{Pattern: PatternUnlockedGap, Severity: p.severity, Gap: max(p.gap, d), Lead: func() string {
		return ulsActorText(ev.Actor.ID, role, team) + " " + ulsDoing(st.Action) + " on " + ulsDeviceText(kind, dev) + " at " +
			st.Last.In(loc).Format("15:04 on Mon 2 Jan 2006") + " and left the session unlocked for " + overSpan(d, p.limit) +
			" (limit " + rules.Span(p.limit) + ")" + ulsGapEnd(ev)
	}}
	// The event that opened the gap is evidence too, and comes first.
	prev := event.Event{ID: st.LastID, Time: st.Last, Org: ev.Org, System: ev.System, Actor: ev.Actor}
	eps.Add(v, &prev, f)
	eps.Add(v, ev, f)
}

func (c *unlockedSession) judgeDevice(ev *event.Event, v *rules.Env, eps *rules.Episodes, kind string) {
	if ulsFailedSessionAction(ev) {
		return
	}
	dev, t := ev.Session.Device, ev.Time.UTC()
	d, held := c.devices.Get(v, dev)
	if held && t.Before(d.Last) {
		return
	}
	ending := ev.Action == event.ActionLogout || ev.Action == event.ActionTimeout || ev.Action == event.ActionLock
	if held && d.Actor == ev.Actor.ID {
		if ev.Action == event.ActionLogout || ev.Action == event.ActionTimeout {
			c.devices.Delete(v, dev)
			return
		}
		c.devices.Put(v, dev, t, ulsDevice{Actor: d.Actor, System: ev.System, Last: t, LastID: ev.ID, Action: ev.Action, Locked: ev.Action == event.ActionLock})
		return
	}
	if ending {
		// It ends a session of another account, which this device no
		// longer shows: at the instant of a handover, it undoes it.
		c.cancel(v, dev, ev)
		return
	}
	if held && !d.Locked {
		role, team := ulsActorGroups(v.Roster(), v.OrgID(), &event.Actor{ID: d.Actor})
		p := rules.Resolved[ulsResolver](v, c.slot).get(kind, role, team)
		if idle := t.Sub(d.Last); p.handoverOn && !p.exempt && idle <= p.openFor {
			c.hold(v, ulsHandover{Device: dev, Kind: kind, Holder: d, Idle: int64(idle), Event: *ev})
		}
	}
	c.devices.Put(v, dev, t, ulsDevice{Actor: ev.Actor.ID, System: ev.System, Last: t, LastID: ev.ID, Action: ev.Action})
}

// hold keeps a handover until the org's clock passes its instant.
func (c *unlockedSession) hold(v *rules.Env, h ulsHandover) {
	hs, _ := c.handovers.Get(v, handoversKey)
	hs = append(slices.Clip(hs), h)
	slices.SortStableFunc(hs, func(a, b ulsHandover) int { return a.Event.Time.Compare(b.Event.Time) })
	c.handovers.Put(v, handoversKey, hs[len(hs)-1].Event.Time, hs)
}

// cancel drops the handovers of dev at ev's instant whose holder ev shows
// ending its session then.
func (c *unlockedSession) cancel(v *rules.Env, dev string, ev *event.Event) {
	hs, ok := c.handovers.Get(v, handoversKey)
	if !ok {
		return
	}
	kept := slices.DeleteFunc(slices.Clone(hs), func(h ulsHandover) bool {
		return h.Device == dev && h.Holder.Actor == ev.Actor.ID && h.Event.Time.Equal(ev.Time)
	})
	c.storeHeld(v, hs, kept)
}

// release reports the handovers held before the org's clock, or all of
// them.
func (c *unlockedSession) release(v *rules.Env, eps *rules.Episodes, all bool) {
	hs, ok := c.handovers.Get(v, handoversKey)
	if !ok || len(hs) == 0 || (!all && !hs[0].Event.Time.Before(v.Watermark())) {
		return
	}
	n := len(hs)
	if !all {
		n, _ = slices.BinarySearchFunc(hs, v.Watermark(), func(h ulsHandover, t time.Time) int { return h.Event.Time.Compare(t) })
	}
	for i := range n {
		c.reportHandover(v, eps, &hs[i])
	}
	c.storeHeld(v, hs, slices.Clone(hs[n:]))
}

func (c *unlockedSession) storeHeld(v *rules.Env, old, kept []ulsHandover) {
	switch {
	case len(kept) == len(old):
	case len(kept) == 0:
		c.handovers.Delete(v, handoversKey)
	default:
		c.handovers.Put(v, handoversKey, kept[len(kept)-1].Event.Time, kept)
	}
}

// FlushHeld reports every handover held back: the end of a replay, or an
// idle spell of the daemon.
func (c *unlockedSession) FlushHeld(v *rules.Env, eps *rules.Episodes) { c.release(v, eps, true) }

func (c *unlockedSession) reportHandover(v *rules.Env, eps *rules.Episodes, h *ulsHandover) {
	d, ev, kind, idle := h.Holder, &h.Event, h.Kind, time.Duration(h.Idle)
	role, team := ulsActorGroups(v.Roster(), v.OrgID(), &event.Actor{ID: d.Actor})
	p := rules.Resolved[ulsResolver](v, c.slot).get(kind, role, team)
	loc := v.Location()
	dev := ev.Session.Device
	f := rules.Finding{Pattern: PatternDeviceHandover, Severity: p.severity, Gap: max(p.gap, idle), Lead: func() string {
		nrole, nteam := ulsActorGroups(v.Roster(), ev.ActorOrg(), &ev.Actor)
		return ulsActorText(d.Actor, role, team) + " " + ulsDoing(d.Action) + " on " + ulsDeviceText(kind, dev) + " at " +
			d.Last.In(loc).Format("15:04 on Mon 2 Jan 2006") + " and left the session open, with no lock or logout, and " +
			ulsActorText(ev.Actor.ID, nrole, nteam) + " " + rules.Doing(ev) + " on it " + rules.Span(idle) + " later"
	}}
	// The episode is the account that left its session open: the event
	// that left it so, then the other account's.
	prev := event.Event{ID: d.LastID, Time: d.Last, Org: ev.Org, System: d.System, Actor: event.Actor{ID: d.Actor}}
	eps.Add(v, &prev, f)
	next := *ev
	next.Actor = event.Actor{ID: d.Actor}
	eps.Add(v, &next, f)
}

// ulsActorText names an actor by pseudonymous id, with role and team when they
// are plain labels.
func ulsActorText(id, role, team string) string {
	s := id
	var tags string
	for _, w := range []string{role, team} {
		if rules.PlainWord(w) {
			if tags != "" {
				tags += ", "
			}
			tags += w
		}
	}
	if tags != "" {
		s += " (" + tags + ")"
	}
	return s
}

// ulsDeviceText describes a device by kind, and by id when it is a plain label.
func ulsDeviceText(kind, id string) string {
	s := "a device"
	switch kind {
	case reference.DeviceSharedTablet:
		s = "a shared tablet"
	case reference.DeviceDesktop:
		s = "a desktop"
	case reference.DeviceLaptop:
		s = "a laptop"
	case reference.DeviceMobile:
		s = "a mobile device"
	}
	if rules.PlainWord(id) {
		s += " (" + id + ")"
	}
	return s
}

// ulsGapEnd says what ended a gap.
func ulsGapEnd(ev *event.Event) string {
	switch ev.Action {
	case event.ActionLogout:
		return " until they logged out"
	case event.ActionTimeout:
		return " until the system timed it out"
	case event.ActionLock:
		return " until it was locked"
	}
	return ", with no lock, logout or timeout before the next action"
}

// ulsDoing describes the event that began a gap, of which only the action
// is kept.
func ulsDoing(a event.Action) string {
	switch {
	case a == event.ActionLogin:
		return "logged in"
	case a == event.ActionUnlock:
		return "unlocked a session"
	case a == event.ActionSearch:
		return "searched records"
	case a.IsRecordAction():
		return rules.Doing(&event.Event{Action: a})
	}
	return "acted"
}

// overSpan renders a gap over limit, saying "just over" where the minutes
// alone would read as equal.
func overSpan(d, limit time.Duration) string {
	if s := rules.Span(d); s != rules.Span(limit) {
		return s
	}
	return "just over " + rules.Span(limit)
}
