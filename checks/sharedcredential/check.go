package sharedcredential

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
)

// The shared-credential check's patterns (CONTRACT §3); its name is Name.
const (

	// The account acts on a second device or IP while its session on the
	// first is still open (CONTRACT §4).
	PatternConcurrentSessions = "concurrent-sessions"
	// The account acts from a place it cannot have reached since it last
	// acted elsewhere.
	PatternImpossibleTravel = "impossible-travel"
	// The account is used while an absence of its holder covers the time.
	PatternUsedWhileAbsent = "used-while-absent"
	// The account is used outside its holder's employment: after active_to,
	// or before active_from.
	PatternUsedAfterLeaving = "used-after-leaving"
	// Many failed logins for one account in a short window (CONTRACT §4).
	PatternFailedLoginBurst = "failed-login-burst"
	// An external user logs in without a second factor where the DPIA
	// requires one.
	PatternExternalWithoutMFA = "external-without-mfa"
	// The account is on no staff list of its org although the org has one:
	// nobody is recorded as holding it — a generic, shared or leftover
	// account, or one another org's roster holds (CONTRACT §2: an unknown
	// account, never someone else's).
	PatternUnknownAccount = "unknown-account"
)

// Patterns lists the check's patterns.
func Patterns() []string {
	return []string{PatternConcurrentSessions, PatternImpossibleTravel, PatternUsedWhileAbsent,
		PatternUsedAfterLeaving, PatternFailedLoginBurst, PatternExternalWithoutMFA, PatternUnknownAccount}
}

// Defaults of the shared-credential check (CONTRACT §4 where it says).
const (
	DefaultSessionTimeout    = 30 * time.Minute
	DefaultFailedLogins      = 5
	DefaultFailedLoginWindow = 10 * time.Minute
	// DefaultMaxSpeedKMH is faster than driving between sites on a motorway.
	DefaultMaxSpeedKMH = 120.0
	// DefaultOffSiteTravel is the least time between acting at a site and
	// acting from a network outside every site (or back).
	DefaultOffSiteTravel = 30 * time.Minute

	// UnknownNetworksOffSite treats a network in no site as a place of its
	// own, DefaultOffSiteTravel away from every site; UnknownNetworksIgnore
	// judges no travel to or from it.
	UnknownNetworksOffSite = "off-site"
	UnknownNetworksIgnore  = "ignore"

	// scHorizon bounds how long an idle actor's state is kept; every window
	// of the check must fit in it.
	scHorizon = 24 * time.Hour
	// scMaxSessions bounds the sessions remembered per actor.
	scMaxSessions = 16
)

// Knobs are the settings of the shared-credential check at
// one level (org, role or team). A nil or zero field inherits from the less
// specific level, and in the end takes the default.
type Knobs struct {
	// Exempt actors are not judged at all (a test account, say).
	Exempt *bool
	// DisabledPatterns are not judged; nil inherits, an empty non-nil list
	// enables every pattern again.
	DisabledPatterns []string
	// SessionTimeout: a session with neither logout nor timeout is taken as
	// closed this long after its last action. Default 30m (CONTRACT §4);
	// the policy's DeviceKinds beat it.
	SessionTimeout time.Duration
	// MaxSpeedKMH is the fastest plausible travel between two sites.
	// Default 120 km/h.
	MaxSpeedKMH float64
	// OffSiteTravel is the least time between acting at a site and acting
	// from a network in no site. Default 30m.
	OffSiteTravel *time.Duration
	// UnknownNetworks is UnknownNetworksOffSite (default) or
	// UnknownNetworksIgnore.
	UnknownNetworks string
	// IgnoreAbsenceKinds are absence kinds during which use of the account
	// is expected (e.g. "training" on the system itself). Default none.
	IgnoreAbsenceKinds []string
	// AfterLeaving lets an account be used this long after its active_to.
	// Default 0: CONTRACT §2, active_to ends the right to log in.
	AfterLeaving *time.Duration
	// FailedLogins failures within FailedLoginWindow are a burst. Defaults
	// 5 and 10m (CONTRACT §4).
	FailedLogins      int
	FailedLoginWindow time.Duration
	// ExternalRequiresMFA: external users' logins must use a second factor.
	// Default false; on where the DPIA promises it.
	ExternalRequiresMFA *bool
	// UnreportedMFA: a login whose event does not say whether a second
	// factor was used counts as one without. Default false: not judged.
	UnreportedMFA *bool
	// EpisodeGap: events this close in time to an episode join it. Default 1h.
	EpisodeGap time.Duration
	// Severity is the base severity when the DPIA does not score the risks
	// the check evidences. Default medium.
	Severity alert.Severity
}

// Site is a place the organisation's networks are at.
type Site struct {
	Name     string
	Networks []netip.Prefix
	// Located sites have a position; a site without one (a VPN, a mobile
	// data range) is known but is never judged for travel.
	Located  bool
	Lat, Lon float64 // degrees
}

// Policy is the check's settings for one org, with overrides
// for actors of a role or a team (team beats role beats org), session
// timeouts by device kind, and the org's sites.
type Policy struct {
	Knobs
	Roles map[string]Knobs
	Teams map[string]Knobs
	// DeviceKinds maps a device kind (devices.csv) to its session timeout;
	// it beats every level above.
	DeviceKinds map[string]time.Duration
	Sites       []Site
}

type scPolicy struct {
	exempt        bool
	off           map[string]bool
	timeout       time.Duration
	maxSpeed      float64 // km/h
	offSite       time.Duration
	ignoreUnknown bool
	ignoreKinds   map[string]bool
	afterLeaving  time.Duration
	failures      int
	window        time.Duration
	requireMFA    bool
	unreportedMFA bool
	gap           time.Duration
	severity      alert.Severity
}

// scResolver holds every resolved combination of configured role and team,
// and the org's site map.
type scResolver struct {
	*rules.Levels[scPolicy]
	kinds map[string]time.Duration
	sites []Site
	nets  []siteNet // longest prefix first
}

type siteNet struct {
	p    netip.Prefix
	site int
}

func newSCResolver(p Policy) (*scResolver, error) {
	r := &scResolver{kinds: map[string]time.Duration{}, sites: p.Sites}
	for k, d := range p.DeviceKinds {
		if d <= 0 || d > scHorizon {
			return nil, fmt.Errorf("session timeout of device kind %q must lie in (0, %v]", k, scHorizon)
		}
		r.kinds[k] = d
	}
	names := map[string]bool{}
	for i, s := range p.Sites {
		switch {
		case s.Name == "" || names[s.Name]:
			return nil, fmt.Errorf("site %d: empty or repeated name %q", i, s.Name)
		case len(s.Networks) == 0:
			return nil, fmt.Errorf("site %s: no networks", s.Name)
		case s.Located && (math.Abs(s.Lat) > 90 || math.Abs(s.Lon) > 180 || math.IsNaN(s.Lat) || math.IsNaN(s.Lon)):
			return nil, fmt.Errorf("site %s: latitude or longitude out of range", s.Name)
		}
		names[s.Name] = true
		for _, n := range s.Networks {
			if !n.IsValid() {
				return nil, fmt.Errorf("site %s: invalid network", s.Name)
			}
			r.nets = append(r.nets, siteNet{n.Masked(), i})
		}
	}
	// Longest prefix first, so that a narrower range (a VPN pool inside a
	// site's range) wins.
	slices.SortStableFunc(r.nets, func(a, b siteNet) int { return b.p.Bits() - a.p.Bits() })
	l, err := rules.NewLevels(p.Knobs, p.Roles, p.Teams, resolveSC)
	if err != nil {
		return nil, err
	}
	r.Levels = l
	return r, nil
}

func resolveSC(levels []Knobs) (*scPolicy, error) {
	pol := &scPolicy{timeout: DefaultSessionTimeout, maxSpeed: DefaultMaxSpeedKMH, offSite: DefaultOffSiteTravel,
		failures: DefaultFailedLogins, window: DefaultFailedLoginWindow, gap: rules.DefaultEpisodeGap, severity: alert.SeverityMedium}
	var off, kinds []string
	for _, k := range levels {
		if k.Exempt != nil {
			pol.exempt = *k.Exempt
		}
		if k.DisabledPatterns != nil {
			off = k.DisabledPatterns
		}
		if k.SessionTimeout != 0 {
			pol.timeout = k.SessionTimeout
		}
		if k.MaxSpeedKMH != 0 {
			pol.maxSpeed = k.MaxSpeedKMH
		}
		if k.OffSiteTravel != nil {
			pol.offSite = *k.OffSiteTravel
		}
		switch k.UnknownNetworks {
		case "":
		case UnknownNetworksOffSite, UnknownNetworksIgnore:
			pol.ignoreUnknown = k.UnknownNetworks == UnknownNetworksIgnore
		default:
			return nil, fmt.Errorf("unknown networks must be %q or %q, not %q", UnknownNetworksOffSite, UnknownNetworksIgnore, k.UnknownNetworks)
		}
		if k.IgnoreAbsenceKinds != nil {
			kinds = k.IgnoreAbsenceKinds
		}
		if k.AfterLeaving != nil {
			pol.afterLeaving = *k.AfterLeaving
		}
		if k.FailedLogins != 0 {
			pol.failures = k.FailedLogins
		}
		if k.FailedLoginWindow != 0 {
			pol.window = k.FailedLoginWindow
		}
		if k.ExternalRequiresMFA != nil {
			pol.requireMFA = *k.ExternalRequiresMFA
		}
		if k.UnreportedMFA != nil {
			pol.unreportedMFA = *k.UnreportedMFA
		}
		if k.EpisodeGap != 0 {
			pol.gap = k.EpisodeGap
		}
		if k.Severity != "" {
			pol.severity = k.Severity
		}
	}
	pol.off = map[string]bool{}
	for _, p := range off {
		if !slices.Contains(Patterns(), p) {
			return nil, fmt.Errorf("cannot disable unknown pattern %q", p)
		}
		pol.off[p] = true
	}
	pol.ignoreKinds = map[string]bool{}
	for _, k := range kinds {
		pol.ignoreKinds[k] = true
	}
	switch {
	case pol.timeout <= 0 || pol.timeout > scHorizon:
		return nil, fmt.Errorf("session timeout must lie in (0, %v]", scHorizon)
	case pol.window <= 0 || pol.window > scHorizon:
		return nil, fmt.Errorf("failed-login window must lie in (0, %v]", scHorizon)
	case pol.failures < 2 || pol.failures > 1000:
		return nil, fmt.Errorf("failed-login threshold must lie in [2, 1000]")
	case !(pol.maxSpeed > 0) || math.IsInf(pol.maxSpeed, 0):
		return nil, fmt.Errorf("max speed must be positive")
	case pol.offSite < 0 || pol.offSite > scHorizon:
		return nil, fmt.Errorf("off-site travel time must lie in [0, %v]", scHorizon)
	case pol.afterLeaving < 0:
		return nil, fmt.Errorf("after-leaving allowance must not be negative")
	case pol.gap < 0:
		return nil, fmt.Errorf("episode gap must not be negative")
	case pol.severity.Rank() < 0:
		return nil, fmt.Errorf("unknown severity %q", pol.severity)
	}
	return pol, nil
}

// Where an address is, for travel.
const (
	placeNone    = -2 // no address, an unparsable one, or a site without a position: not judged
	placeOffSite = -1 // a network in no site
)

// place returns the site index of ip, placeOffSite or placeNone.
func (r *scResolver) place(ip string, p *scPolicy) int {
	if ip == "" || len(r.sites) == 0 {
		return placeNone // no site map: nothing to judge travel against
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return placeNone
	}
	a = a.Unmap()
	for _, n := range r.nets {
		if n.p.Contains(a) {
			if !r.sites[n.site].Located {
				return placeNone
			}
			return n.site
		}
	}
	if p.ignoreUnknown {
		return placeNone
	}
	return placeOffSite
}

// travelTime is the least time to get from place a to place b, and the
// distance in km when both are sites (else -1).
func (r *scResolver) travelTime(a, b int, p *scPolicy) (time.Duration, float64) {
	switch {
	case a == b:
		return 0, 0
	case a == placeOffSite || b == placeOffSite:
		return p.offSite, -1
	}
	km := haversineKM(r.sites[a].Lat, r.sites[a].Lon, r.sites[b].Lat, r.sites[b].Lon)
	return time.Duration(km / p.maxSpeed * float64(time.Hour)), km
}

func haversineKM(lat1, lon1, lat2, lon2 float64) float64 {
	const earthKM = 6371.0
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthKM * math.Asin(math.Min(1, math.Sqrt(h)))
}

// scRef is an event remembered as evidence.
type scRef struct {
	ID     string       `json:"id"`
	System string       `json:"sys"`
	At     time.Time    `json:"at"`
	Action event.Action `json:"a,omitempty"`
}

func refOf(ev *event.Event) scRef {
	return scRef{ID: ev.ID, System: ev.System, At: ev.Time.UTC(), Action: ev.Action}
}

// scSession is one session of an actor.
type scSession struct {
	Key    string `json:"k"`
	Device string `json:"d,omitempty"`
	IP     string `json:"ip,omitempty"`
	Kind   string `json:"kind,omitempty"` // device kind, for its timeout
	Last   scRef  `json:"last"`
	Closed bool   `json:"closed,omitempty"` // logout, timeout, or a new login on its device
}

// scPlace is where an actor acted last: a site index or placeOffSite.
type scPlace struct {
	Place int   `json:"p"`
	Last  scRef `json:"last"`
}

// scActor is everything the check remembers of one account.
type scActor struct {
	Sessions []scSession `json:"s,omitempty"`
	// Cur is where the account acts now; Prev its last event elsewhere.
	Cur   *scPlace `json:"cur,omitempty"`
	Prev  *scPlace `json:"prev,omitempty"`
	Fails []scRef  `json:"f,omitempty"` // failed logins, oldest first
}

// sharedCredential is the shared-credential check (issue 3): signs that an
// account is used by someone other than its holder. Its state, keyed by
// actor, is the account's open sessions, where it last acted, and its
// recent failed logins.
type sharedCredential struct {
	actors *rules.Keyed[scActor]
	slot   int // of its policy (registration.build)
}

func newSharedCredential(slot int) *sharedCredential {
	return &sharedCredential{actors: rules.NewKeyed[scActor]("actors", scHorizon), slot: slot}
}

func (*sharedCredential) Name() string                 { return Name }
func (c *sharedCredential) States() []rules.StateTable { return []rules.StateTable{c.actors} }

// Evaluate judges one event for every pattern.
func (c *sharedCredential) Evaluate(ev *event.Event, v *rules.Env, eps *rules.Episodes) bool {
	r := rules.Resolved[scResolver](v, c.slot)
	if r == nil || ev.Actor.ID == "" {
		return false
	}
	role, team, st, known := v.ActorGroups(ev)
	p := r.Get(role, team)
	if p.exempt {
		return true
	}
	j := scJudge{ev: ev, v: v, eps: eps, p: p, r: r, role: role, team: team, local: ev.Time.In(v.Location())}
	failed := ev.Outcome == event.OutcomeFailure || ev.Action == event.ActionLoginFailed
	if failed {
		if ev.Action == event.ActionLogin || ev.Action == event.ActionLoginFailed {
			if !p.off[PatternFailedLoginBurst] {
				c.failedLogin(&j)
			}
		}
		return true
	}
	if rules.IsAccess(ev) {
		if known && !p.off[PatternUsedAfterLeaving] {
			j.leaving(&st)
		}
		if !known && !p.off[PatternUnknownAccount] {
			j.unknown()
		}
		if !p.off[PatternUsedWhileAbsent] {
			j.absent()
		}
		if ev.Action == event.ActionLogin && p.requireMFA && !p.off[PatternExternalWithoutMFA] {
			j.mfa(&st, known)
		}
	}
	c.sessionsAndTravel(&j)
	return true
}

// scJudge is one event being judged.
type scJudge struct {
	ev         *event.Event
	v          *rules.Env
	eps        *rules.Episodes
	p          *scPolicy
	r          *scResolver
	role, team string
	local      time.Time
}

func (j *scJudge) add(ev *event.Event, pattern string, lead func() string) {
	j.eps.Add(j.v, ev, rules.Finding{Pattern: pattern, Severity: j.p.severity, Gap: j.p.gap, Lead: lead})
}

// addEvidence adds a remembered earlier event of the same actor to the
// episode of the finding, when it lies within the episode gap of the event
// judged and of the org's clock: further back it would open an alert of
// its own.
func (j *scJudge) addEvidence(r scRef, pattern string, lead func() string) {
	if j.ev.Time.Sub(r.At) <= j.p.gap && !r.At.Add(j.p.gap).Before(j.v.Watermark()) {
		j.add(j.evidence(r), pattern, lead)
	}
}

// evidence rebuilds a remembered event of the same actor for an episode.
func (j *scJudge) evidence(r scRef) *event.Event {
	return &event.Event{ID: r.ID, System: r.System, Time: r.At, Org: j.ev.Org, Action: r.Action,
		Actor: event.Actor{ID: j.ev.Actor.ID}, Outcome: event.OutcomeSuccess}
}

// who renders the actor: "u-17 (support-worker, webster-court)".
func (j *scJudge) who() string {
	var tags []string
	for _, s := range []string{j.role, j.team} {
		if rules.PlainWord(s) {
			tags = append(tags, s)
		}
	}
	if len(tags) == 0 {
		return j.ev.Actor.ID
	}
	return j.ev.Actor.ID + " (" + strings.Join(tags, ", ") + ")"
}

func when(t time.Time) string { return t.Format("15:04 on Mon 2 Jan 2006") }

func (j *scJudge) leaving(st *reference.Staff) {
	t := j.ev.Time
	switch {
	case !st.ActiveTo.IsZero() && !t.Before(st.ActiveTo.Add(j.p.afterLeaving)):
		to := st.ActiveTo.In(j.v.Location())
		j.add(j.ev, PatternUsedAfterLeaving, func() string {
			return j.who() + " " + rules.Doing(j.ev) + " at " + when(j.local) + ", after the account's holder left (active until " + rules.DateText(to) + ")"
		})
	case !st.ActiveFrom.IsZero() && t.Before(st.ActiveFrom):
		from := st.ActiveFrom.In(j.v.Location())
		j.add(j.ev, PatternUsedAfterLeaving, func() string {
			return j.who() + " " + rules.Doing(j.ev) + " at " + when(j.local) + ", before the account's holder started (active from " + rules.DateText(from) + ")"
		})
	}
}

// unknown reports an account its org's staff list does not hold, when the
// org has a staff list at all (without one, every account would be
// unknown: the reference data is missing, not the account).
func (j *scJudge) unknown() {
	org := j.ev.ActorOrg()
	if !j.v.Roster().HasStaff(org) {
		return
	}
	j.add(j.ev, PatternUnknownAccount, func() string {
		return j.who() + " " + rules.Doing(j.ev) + " at " + when(j.local) + ", with an account that is on no staff list of " + org +
			": nobody is recorded as holding it"
	})
}

// absent: the kind of absence is not named in the explanation: "sickness"
// is health data about the worker.
func (j *scJudge) absent() {
	a, ok := j.v.Roster().AbsentAt(j.ev.ActorOrg(), j.ev.Actor.ID, j.ev.Time)
	if !ok || j.p.ignoreKinds[a.Kind] {
		return
	}
	loc := j.v.Location()
	j.add(j.ev, PatternUsedWhileAbsent, func() string {
		span := "from " + rules.DateText(a.Start.In(loc))
		if !a.End.IsZero() {
			span += " to " + rules.DateText(a.End.In(loc))
		}
		return j.who() + " " + rules.Doing(j.ev) + " at " + when(j.local) + ", while its holder is recorded as absent (" + span + ")"
	})
}

func (j *scJudge) mfa(st *reference.Staff, known bool) {
	ev := j.ev
	external := (ev.Actor.Org != "" && ev.Actor.Org != ev.Org) || (known && st.External)
	if !external {
		return
	}
	var why string
	switch {
	case ev.Session.MFA == nil && j.p.unreportedMFA:
		why = "with no second factor reported"
	case ev.Session.MFA != nil && !*ev.Session.MFA:
		why = "without a second factor"
	default:
		return
	}
	j.add(ev, PatternExternalWithoutMFA, func() string {
		return j.who() + ", an external user, logged in at " + when(j.local) + " " + why + ", which the DPIA requires for external users"
	})
}

func (c *sharedCredential) failedLogin(j *scJudge) {
	ev, v, p := j.ev, j.v, j.p
	s, _ := c.actors.Get(v, ev.Actor.ID)
	ref := refOf(ev)
	i, _ := slices.BinarySearchFunc(s.Fails, ref, func(a, b scRef) int { return a.At.Compare(b.At) })
	if i < len(s.Fails) && s.Fails[i].ID == ref.ID && s.Fails[i].System == ref.System {
		return // seen
	}
	s.Fails = slices.Insert(s.Fails, i, ref)
	// Forget failures no window ending at or after the newest can reach.
	newest := s.Fails[len(s.Fails)-1].At
	k := 0
	for k < len(s.Fails) && s.Fails[k].At.Before(newest.Add(-p.window)) {
		k++
	}
	s.Fails = s.Fails[k:]
	if over := len(s.Fails) - 4*p.failures; over > 0 {
		s.Fails = s.Fails[over:]
	}
	s.Fails = slices.Clip(s.Fails)
	// The failures within the window around this one that make a burst.
	lo, hi := 0, len(s.Fails)
	for lo < hi && s.Fails[lo].At.Before(ev.Time.Add(-p.window)) {
		lo++
	}
	for hi > lo && s.Fails[hi-1].At.After(ev.Time.Add(p.window)) {
		hi--
	}
	var burst []scRef
	for a := lo; a < hi; a++ {
		b := a
		for b < hi && !s.Fails[b].At.After(s.Fails[a].At.Add(p.window)) {
			b++
		}
		if b-a >= p.failures && !ev.Time.Before(s.Fails[a].At) && !ev.Time.After(s.Fails[b-1].At) {
			burst = s.Fails[a:b]
			break
		}
	}
	c.actors.Put(v, ev.Actor.ID, ev.Time, s)
	if burst == nil {
		return
	}
	n, win := p.failures, p.window
	first := burst[0].At.In(v.Location())
	lead := func() string {
		return j.who() + " failed to log in at " + when(first) + ", the first of " + strconv.Itoa(n) + " or more failed logins within " + rules.Span(win)
	}
	for _, f := range burst {
		if f.ID == ev.ID && f.System == ev.System {
			j.add(ev, PatternFailedLoginBurst, lead)
		} else {
			j.addEvidence(f, PatternFailedLoginBurst, lead)
		}
	}
}

// sessionKey identifies the session of ev: its id, else its device and IP.
func sessionKey(ev *event.Event) string {
	if ev.Session.ID != "" {
		return "s:" + ev.Session.ID
	}
	if ev.Session.Device == "" && ev.Session.IP == "" {
		return ""
	}
	return "d:" + ev.Session.Device + "|" + ev.Session.IP
}

// isSessionKey reports whether key is sessionKey(ev), without making the
// latter: it is looked for at every event, and found, not made, nearly
// every time.
func isSessionKey(key string, ev *event.Event) bool {
	if ev.Session.ID != "" {
		return len(key) == 2+len(ev.Session.ID) && key[:2] == "s:" && key[2:] == ev.Session.ID
	}
	d, ip := ev.Session.Device, ev.Session.IP
	return len(key) == 3+len(d)+len(ip) && key[:2] == "d:" && key[2:2+len(d)] == d && key[2+len(d)] == '|' && key[3+len(d):] == ip
}

// elsewhere reports whether two sessions are on different devices or IPs:
// by device when both name one (a device keeps its identity as its address
// changes), else by IP.
func elsewhere(a, b *scSession) bool {
	if a.Device != "" && b.Device != "" {
		return a.Device != b.Device
	}
	return a.IP != "" && b.IP != "" && a.IP != b.IP
}

func (c *sharedCredential) sessionsAndTravel(j *scJudge) {
	ev, v, p := j.ev, j.v, j.p
	if (ev.Session.ID == "" && ev.Session.Device == "" && ev.Session.IP == "") || ev.Action == event.ActionLoginFailed {
		return
	}
	s, _ := c.actors.Get(v, ev.Actor.ID)
	t := ev.Time.UTC()
	ref := refOf(ev)

	idx := slices.IndexFunc(s.Sessions, func(x scSession) bool { return isSessionKey(x.Key, ev) })
	if idx < 0 {
		s.Sessions = append(s.Sessions, scSession{Key: sessionKey(ev)})
		idx = len(s.Sessions) - 1
	}
	cur := &s.Sessions[idx]
	if ev.Session.Device != "" {
		cur.Device = ev.Session.Device
	}
	if ev.Session.IP != "" {
		cur.IP = ev.Session.IP
	}
	if cur.Kind == "" && cur.Device != "" {
		d, ok := v.SessionDevice(ev) // resolved once for every check
		if cur.Device != ev.Session.Device {
			d, ok = v.Roster().Device(ev.Org, cur.Device)
		}
		if ok {
			cur.Kind = d.Kind
		}
	}
	late := !cur.Last.At.IsZero() && t.Before(cur.Last.At)
	if !late {
		switch ev.Action {
		case event.ActionLogin:
			cur.Closed = false
		case event.ActionLogout, event.ActionTimeout:
			cur.Closed = true
		}
		cur.Last = ref
	}

	if rules.IsAccess(ev) && !p.off[PatternConcurrentSessions] {
		if ev.Action == event.ActionLogin && cur.Device != "" {
			// A new login on a device ends whatever session was left on it.
			for i := range s.Sessions {
				if i != idx && s.Sessions[i].Device == cur.Device && !s.Sessions[i].Last.At.After(t) {
					s.Sessions[i].Closed = true
				}
			}
		}
		var other *scSession
		for i := range s.Sessions {
			o := &s.Sessions[i]
			if i == idx || o.Closed || o.Last.At.After(t) || !t.Before(o.Last.At.Add(j.r.timeout(o, p))) || !elsewhere(cur, o) {
				continue
			}
			if other == nil || o.Last.At.After(other.Last.At) {
				other = o
			}
		}
		if other != nil {
			o := *other
			lead := func() string {
				return j.who() + " " + rules.Doing(ev) + " on " + deviceText(cur) + " at " + when(j.local) +
					" while their session on " + deviceText(&o) + " was still open (last action " + rules.ClockOn(o.Last.At.In(v.Location()), j.local) + ")"
			}
			j.addEvidence(o.Last, PatternConcurrentSessions, lead)
			j.add(ev, PatternConcurrentSessions, lead)
		}
	}
	// Keep the sessions that may still matter, newest last.
	kept := s.Sessions[:0]
	for i, o := range s.Sessions {
		if i == idx || (!o.Closed && !t.After(o.Last.At.Add(j.r.timeout(&o, p)))) {
			kept = append(kept, o)
		}
	}
	s.Sessions = kept
	if len(s.Sessions) > scMaxSessions {
		s.Sessions = s.Sessions[len(s.Sessions)-scMaxSessions:]
	}

	// A logout or lock is the person at the device as much as an action
	// is; a timeout is the device alone.
	if (rules.IsAccess(ev) || ev.Action == event.ActionLogout || ev.Action == event.ActionLock) && !p.off[PatternImpossibleTravel] {
		c.travel(j, &s, ref)
	}
	c.actors.Put(v, ev.Actor.ID, t, s)
}

// timeout is how long session o stays open after its last action.
func (r *scResolver) timeout(o *scSession, p *scPolicy) time.Duration {
	if d, ok := r.kinds[o.Kind]; ok && o.Kind != "" {
		return d
	}
	return p.timeout
}

// deviceText names a session's device when its id is a plain label, never
// an IP address (which may be someone's home).
func deviceText(s *scSession) string {
	if rules.PlainWord(s.Device) {
		return s.Device
	}
	if s.Device != "" {
		return "another device"
	}
	return "another network"
}

func (c *sharedCredential) travel(j *scJudge, s *scActor, ref scRef) {
	ev, p, r := j.ev, j.p, j.r
	here := r.place(ev.Session.IP, p)
	if here == placeNone {
		return
	}
	t := ref.At
	var from *scPlace
	switch {
	case s.Cur == nil:
		s.Cur = &scPlace{Place: here, Last: ref}
		return
	case t.Before(s.Cur.Last.At): // late beyond the bound: judged, not remembered
		if s.Cur.Place != here {
			from = s.Cur
		}
	case s.Cur.Place == here:
		s.Cur.Last = ref
		if s.Prev != nil && s.Prev.Place != here {
			from = s.Prev // still within reach of where it was?
		}
	default:
		s.Prev, s.Cur = s.Cur, &scPlace{Place: here, Last: ref}
		from = s.Prev
	}
	if from == nil {
		return
	}
	need, km := r.travelTime(from.Place, here, p)
	dt := t.Sub(from.Last.At).Abs()
	if dt >= need {
		return
	}
	f := *from
	loc := j.v.Location()
	name := func(pl int) string {
		if pl == placeOffSite {
			return "a network outside every known site"
		}
		if n := r.sites[pl].Name; rules.PlainWord(n) {
			return n
		}
		return "another site"
	}
	lead := func() string {
		s := j.who() + " " + rules.Doing(ev) + " from " + name(here) + " at " + when(j.local) + ", " + rules.Span(dt) +
			" after acting from " + name(f.Place) + " (at " + rules.ClockOn(f.Last.At.In(loc), j.local) + ")"
		if km >= 0 {
			return s + ", " + strconv.Itoa(int(math.Round(km))) + " km away: at least " + rules.Span(need) + " at " + strconv.FormatFloat(p.maxSpeed, 'f', -1, 64) + " km/h"
		}
		return s + ": at least " + rules.Span(need) + " apart"
	}
	j.addEvidence(f.Last, PatternImpossibleTravel, lead)
	j.add(ev, PatternImpossibleTravel, lead)
}
