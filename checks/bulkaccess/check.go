package bulkaccess

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
)

// The bulk-access check's patterns; its name is Name.
const (
	// An actor opened far more different people's records in a window than
	// their own usual and their team's.
	PatternBulkAccess = "bulk-access"
)

// Defaults of the bulk-access check.
const (
	DefaultBulkWindow            = time.Hour
	DefaultBulkMinSubjects       = 20
	DefaultBulkMultiplier        = 3.0
	DefaultBulkBaselineDays      = 28
	DefaultBulkQuantile          = 0.75
	DefaultBulkMinHistoryDays    = 5
	DefaultBulkMinTeamSamples    = 10
	DefaultBulkColdStartSubjects = 30
	DefaultBulkMaxTracked        = 1000
	DefaultBulkSeverity          = alert.SeverityHigh

	// MaxBulkBaselineDays bounds baseline_days: state idle longer than
	// this (and two days' slack) is forgotten.
	MaxBulkBaselineDays = 60
	// MaxBulkWindow bounds the window: a longer one is a daily report, not
	// a burst.
	MaxBulkWindow = 24 * time.Hour
	bulkHorizon   = (MaxBulkBaselineDays + 2) * 24 * time.Hour
)

// Knobs are the settings of the bulk-access check at one level
// (org, role or team). A nil or zero field inherits from the less specific
// level, and in the end takes the default.
type Knobs struct {
	// Exempt actors are not judged. Default false.
	Exempt *bool
	// Window is the sliding window distinct subjects are counted in.
	// Default 1h.
	Window time.Duration
	// MinSubjects: never fire at this many distinct subjects or fewer,
	// whatever the baselines. Default 20.
	MinSubjects int
	// Multiplier: fire above this many times the actor's own baseline and
	// above this many times their team's. Default 3.
	Multiplier float64
	// BaselineDays: the baselines look at the daily peaks of this many
	// local days before today. Default 28, at most 60.
	BaselineDays int
	// Quantile of the daily peaks taken as the baseline (nearest rank).
	// Default 0.75.
	Quantile float64
	// MinHistoryDays: an actor with fewer active days in the baseline
	// period has no baseline of their own (cold start). Default 5.
	MinHistoryDays int
	// MinTeamSamples: a team with fewer member-days in the baseline period
	// has no team baseline. Default 10.
	MinTeamSamples int
	// ColdStartSubjects: the threshold when neither the actor nor their
	// team has a baseline. Default 30.
	ColdStartSubjects int
	// MaxTracked caps the distinct subjects remembered per actor and
	// window; beyond it the oldest are forgotten and the count reads "at
	// least". Default 1000.
	MaxTracked int
	// EpisodeGap: events this close in time to an episode join it. Default 1h.
	EpisodeGap time.Duration
	// Severity is the base severity when the DPIA does not score the risks
	// the check evidences; raised one step for a sensitive subject.
	// Default high.
	Severity alert.Severity
}

// Policy is the check's settings for one org, with overrides for
// actors of a role or a team; each knob resolves most specific first:
// team, role, org, default.
type Policy struct {
	Knobs
	Roles map[string]Knobs
	Teams map[string]Knobs
}

type bulkPolicy struct {
	exempt                    bool
	window                    time.Duration
	minSubjects               int
	k                         float64
	days                      int
	q                         float64
	minHistory, minTeam, cold int
	maxTracked                int
	gap                       time.Duration
	severity                  alert.Severity
}

// bulkResolver is the bulk-access policy by role and team.
type bulkResolver struct {
	*rules.Levels[bulkPolicy]
	maxDays int // the longest baseline period of any policy: history kept
}

func newBulkResolver(p Policy) (*bulkResolver, error) {
	l, err := rules.NewLevels(p.Knobs, p.Roles, p.Teams, resolveBulk)
	if err != nil {
		return nil, err
	}
	r := &bulkResolver{Levels: l}
	l.All(func(pol *bulkPolicy) { r.maxDays = max(r.maxDays, pol.days) })
	return r, nil
}

func resolveBulk(levels []Knobs) (*bulkPolicy, error) {
	p := &bulkPolicy{
		window: DefaultBulkWindow, minSubjects: DefaultBulkMinSubjects, k: DefaultBulkMultiplier,
		days: DefaultBulkBaselineDays, q: DefaultBulkQuantile, minHistory: DefaultBulkMinHistoryDays,
		minTeam: DefaultBulkMinTeamSamples, cold: DefaultBulkColdStartSubjects, maxTracked: DefaultBulkMaxTracked,
		gap: rules.DefaultEpisodeGap, severity: DefaultBulkSeverity,
	}
	for _, k := range levels {
		if k.Exempt != nil {
			p.exempt = *k.Exempt
		}
		p.window = cmpOr(k.Window, p.window)
		p.minSubjects = cmpOr(k.MinSubjects, p.minSubjects)
		p.k = cmpOr(k.Multiplier, p.k)
		p.days = cmpOr(k.BaselineDays, p.days)
		p.q = cmpOr(k.Quantile, p.q)
		p.minHistory = cmpOr(k.MinHistoryDays, p.minHistory)
		p.minTeam = cmpOr(k.MinTeamSamples, p.minTeam)
		p.cold = cmpOr(k.ColdStartSubjects, p.cold)
		p.maxTracked = cmpOr(k.MaxTracked, p.maxTracked)
		p.gap = cmpOr(k.EpisodeGap, p.gap)
		if k.Severity != "" {
			p.severity = k.Severity
		}
	}
	switch {
	case p.window <= 0 || p.window > MaxBulkWindow:
		return nil, fmt.Errorf("window must be longer than 0s and at most %v", MaxBulkWindow)
	case p.minSubjects < 1 || p.cold < 1:
		return nil, fmt.Errorf("min_subjects and cold_start_subjects must be at least 1")
	case p.k < 1 || math.IsInf(p.k, 0) || math.IsNaN(p.k):
		return nil, fmt.Errorf("multiplier must be at least 1")
	case p.days < 1 || p.days > MaxBulkBaselineDays:
		return nil, fmt.Errorf("baseline_days must be between 1 and %d", MaxBulkBaselineDays)
	case !(p.q > 0 && p.q <= 1):
		return nil, fmt.Errorf("quantile must be above 0 and at most 1")
	case p.minHistory < 1 || p.minHistory > p.days:
		return nil, fmt.Errorf("min_history_days must be between 1 and baseline_days")
	case p.minTeam < 1:
		return nil, fmt.Errorf("min_team_samples must be at least 1")
	case p.maxTracked <= max(p.minSubjects, p.cold) || p.maxTracked > 100_000:
		return nil, fmt.Errorf("max_tracked must exceed min_subjects and cold_start_subjects, and be at most 100000")
	case p.gap < 0:
		return nil, fmt.Errorf("episode gap must not be negative")
	case p.severity.Rank() < 0:
		return nil, fmt.Errorf("unknown severity %q", p.severity)
	}
	return p, nil
}

// cmpOr returns v unless it is zero (or negative, which validation then
// rejects on its own: a negative override must not pass as "inherit").
func cmpOr[T int | float64 | time.Duration](v, def T) T {
	if v != 0 {
		return v
	}
	return def
}

// threshold is the distinct-subject count a window must exceed to fire:
// the floor, own and team baselines times the multiplier where they exist,
// the cold-start count where neither does. A baseline of 0 is unknown.
func (p *bulkPolicy) threshold(own, team int32) float64 {
	t := float64(p.minSubjects)
	if own == 0 && team == 0 {
		return max(t, float64(p.cold))
	}
	if own > 0 {
		t = max(t, p.k*float64(own))
	}
	if team > 0 {
		t = max(t, p.k*float64(team))
	}
	return t
}

// bulkAccess is the bulk-access check (issue 3): an actor opening far more
// different people's records in a sliding window than their own baseline
// and their team's.
//
// Per actor it keeps the subjects opened in the window (64-bit hashes, not
// ids, with the time each was last opened; at most MaxTracked of them), the
// peak window count of the current local day, and the peaks of past active
// days (at most the longest baseline period of them). When an actor's day ends
// (at their first event of a later day) its peak goes to their own history
// and to their team's, and the baselines of the new day are computed once:
// the Quantile of the daily peaks over BaselineDays. A day that fired
// records the threshold, not the burst, so one episode does not teach the
// check that bursts are usual.
//
// Per team it keeps a histogram of members' daily peaks per day. The team
// baseline thus includes the actor's own days among their peers'. With
// several daemons in one consumer group, each holds the team histogram of
// the members whose events it is given (see docs/checks/bulk-access.md).
type bulkAccess struct {
	actors *rules.Keyed[bulkActor]
	teams  *rules.Keyed[bulkTeam]
	counts []int32 // scratch for the team quantile
	today  dayCache
	slot   int // of its policy (registration.build)
}

// dayCache remembers the local day last computed: most events fall in the
// same day as the one before, and time zone arithmetic is not free.
type dayCache struct {
	loc        *time.Location
	start, end int64 // Unix nanoseconds, end exclusive
	day        int32
}

// localDay numbers t's day on loc's wall clock (DST-correct), as days since
// 1970-01-01.
func (c *bulkAccess) localDay(t time.Time, loc *time.Location) int32 {
	n := t.UnixNano()
	if d := &c.today; d.loc == loc && n >= d.start && n < d.end {
		return d.day
	}
	y, m, d := t.In(loc).Date()
	c.today = dayCache{
		loc:   loc,
		start: time.Date(y, m, d, 0, 0, 0, 0, loc).UnixNano(),
		end:   time.Date(y, m, d+1, 0, 0, 0, 0, loc).UnixNano(),
		day:   int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400),
	}
	return c.today.day
}

// bulkActor is one actor's window and day. Times are Unix nanoseconds.
type bulkActor struct {
	Last int64 `json:"l"` // newest event counted
	// Win holds the subjects opened within the window before Last, packed
	// (bulkEntry bytes each: hash, then time, little-endian) so that its
	// checkpoint is one base64 string rather than hundreds of numbers.
	Win      []byte `json:"w,omitempty"`
	Day      int32  `json:"d"`           // local day of Last, days since 1970-01-01
	Peak     int32  `json:"p,omitempty"` // the day's highest window count
	Team     string `json:"t,omitempty"` // whose histogram the day's peak joins
	Own      int32  `json:"o,omitempty"` // own baseline for Day; 0: too little history
	TeamBase int32  `json:"b,omitempty"` // team baseline for Day; 0: none
	// Hist holds past active days, oldest first, packed (bulkDay bytes
	// each: local day, then its clipped peak).
	Hist []byte `json:"h,omitempty"`
}

// Packed sizes: the state of every actor who acted is encoded after every
// batch, and a base64 string costs far less to encode than numbers.
const (
	bulkEntry = 16
	bulkDay   = 8
)

func (st *bulkActor) days() int { return len(st.Hist) / bulkDay }
func (st *bulkActor) day(i int) (day, peak int32) {
	return int32(binary.LittleEndian.Uint32(st.Hist[i*bulkDay:])), int32(binary.LittleEndian.Uint32(st.Hist[i*bulkDay+4:]))
}

func (st *bulkActor) entries() int { return len(st.Win) / bulkEntry }
func (st *bulkActor) hash(i int) uint64 {
	return binary.LittleEndian.Uint64(st.Win[i*bulkEntry:])
}
func (st *bulkActor) at(i int) int64 {
	return int64(binary.LittleEndian.Uint64(st.Win[i*bulkEntry+8:]))
}
func (st *bulkActor) set(i int, h uint64, t int64) {
	binary.LittleEndian.PutUint64(st.Win[i*bulkEntry:], h)
	binary.LittleEndian.PutUint64(st.Win[i*bulkEntry+8:], uint64(t))
}

// prune forgets the subjects last opened at or before cut.
func (st *bulkActor) prune(cut int64) {
	n := 0
	for i := range st.entries() {
		if st.at(i) > cut {
			copy(st.Win[n*bulkEntry:(n+1)*bulkEntry], st.Win[i*bulkEntry:(i+1)*bulkEntry])
			n++
		}
	}
	st.Win = st.Win[:n*bulkEntry]
}

// bulkTeam is a team's histogram of member-day peaks, oldest day first.
type bulkTeam struct {
	Days []bulkTeamDay `json:"d"`
}

type bulkTeamDay struct {
	Day   int32      `json:"d"`
	Peaks [][2]int32 `json:"p"` // (peak, members with it), by peak
}

func newBulkAccess(slot int) *bulkAccess {
	return &bulkAccess{actors: rules.NewKeyed[bulkActor]("actors", bulkHorizon), teams: rules.NewKeyed[bulkTeam]("teams", bulkHorizon), slot: slot}
}

func (*bulkAccess) Name() string { return Name }
func (c *bulkAccess) States() []rules.StateTable {
	return []rules.StateTable{c.actors, c.teams}
}

// Evaluate counts a successful record action on a subject into the actor's
// window and reports it when it opens a new subject beyond the threshold.
func (c *bulkAccess) Evaluate(ev *event.Event, v *rules.Env, eps *rules.Episodes) bool {
	if !ev.Action.IsRecordAction() || ev.Outcome == event.OutcomeFailure || ev.Subject.ID == "" {
		return false
	}
	actor := ev.Actor.ID
	role, team, _, _ := v.ActorGroups(ev)
	res := rules.Resolved[bulkResolver](v, c.slot)
	p := res.Get(role, team)
	if p.exempt {
		return true
	}
	t := ev.Time.UnixNano()
	w := int64(p.window)
	day := c.localDay(ev.Time, v.Location())

	st, ok := c.actors.Get(v, actor)
	switch {
	case !ok:
		st = bulkActor{Last: t, Day: day, Team: team}
		st.TeamBase = c.teamBaseline(v, team, day, p)
	case t <= st.Last-w:
		// Later than a whole window behind the actor's newest event: the
		// subjects it would be counted with are forgotten.
		return true
	case t >= st.Last:
		if day > st.Day {
			c.rollover(v, ev, &st, day, team, p, res.maxDays)
		}
		st.Last = t
		st.prune(t - w)
	}

	h := subjectHash(ev.Subject.ID)
	fresh := true
	for i := range st.entries() {
		if st.hash(i) == h {
			st.set(i, h, max(st.at(i), t))
			fresh = false
			break
		}
	}
	if fresh {
		if st.entries() < p.maxTracked {
			st.Win = append(st.Win, make([]byte, bulkEntry)...)
			st.set(st.entries()-1, h, t)
		} else { // at the cap: forget the longest unopened
			oldest := 0
			for i := range st.entries() {
				if st.at(i) < st.at(oldest) {
					oldest = i
				}
			}
			st.set(oldest, h, t)
		}
	}
	n := st.entries()
	if t < st.Last { // out of order: only what lies within the window of t
		n = 0
		for i := range st.entries() {
			if st.at(i) > t-w {
				n++
			}
		}
	}
	if day == st.Day {
		st.Peak = max(st.Peak, int32(n)) // n ≤ MaxTracked
	}
	thr := p.threshold(st.Own, st.TeamBase)
	if fresh && float64(n) > thr {
		own, teamBase, capped := st.Own, st.TeamBase, n >= p.maxTracked
		local := ev.Time.In(v.Location())
		eps.Add(v, ev, rules.Finding{Pattern: PatternBulkAccess, Severity: p.severity, Gap: p.gap, Lead: func() string {
			return bulkLead(actor, role, team, local, n, capped, own, teamBase, thr, p)
		}})
	}
	c.actors.Put(v, actor, ev.Time, st)
	return true
}

// rollover closes the actor's day: its peak, clipped to the day's
// threshold, joins their history and their team's; then the baselines of
// the new day are computed.
func (c *bulkAccess) rollover(v *rules.Env, ev *event.Event, st *bulkActor, day int32, team string, p *bulkPolicy, keepDays int) {
	from := day - int32(keepDays)
	if st.Peak > 0 {
		peak := min(st.Peak, int32(min(p.threshold(st.Own, st.TeamBase), math.MaxInt32)))
		st.Hist = binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(st.Hist, uint32(st.Day)), uint32(peak))
		if st.Team != "" {
			tm, _ := c.teams.Get(v, st.Team)
			tm.add(st.Day, peak, from)
			c.teams.Put(v, st.Team, ev.Time, tm)
		}
	}
	drop := 0
	for drop < st.days() {
		if d, _ := st.day(drop); d >= from {
			break
		}
		drop++
	}
	st.Hist = st.Hist[drop*bulkDay:]
	st.Day, st.Peak, st.Team = day, 0, team

	var peaks []int32
	for i := range st.days() {
		if d, peak := st.day(i); d >= day-int32(p.days) && d < day {
			peaks = append(peaks, peak)
		}
	}
	st.Own = 0
	if len(peaks) >= p.minHistory {
		slices.Sort(peaks)
		st.Own = peaks[nearestRank(p.q, len(peaks))-1]
	}
	st.TeamBase = c.teamBaseline(v, team, day, p)
}

// teamBaseline is the Quantile of the team's member-day peaks over the
// baseline period before day; 0 without a team or with too few samples.
func (c *bulkAccess) teamBaseline(v *rules.Env, team string, day int32, p *bulkPolicy) int32 {
	if team == "" {
		return 0
	}
	tm, ok := c.teams.Get(v, team)
	if !ok {
		return 0
	}
	counts := c.counts[:0]
	total := 0
	for _, d := range tm.Days {
		if d.Day < day-int32(p.days) || d.Day >= day {
			continue
		}
		for _, pc := range d.Peaks {
			for int(pc[0]) >= len(counts) {
				counts = append(counts, 0)
			}
			counts[pc[0]] += pc[1]
			total += int(pc[1])
		}
	}
	defer func() { clear(counts); c.counts = counts }()
	if total < p.minTeam {
		return 0
	}
	rank := nearestRank(p.q, total)
	for peak, n := range counts {
		if rank -= int(n); rank <= 0 {
			return int32(peak)
		}
	}
	return 0 // unreachable
}

// add counts one member-day peak and forgets days before from.
func (tm *bulkTeam) add(day, peak, from int32) {
	i, found := slices.BinarySearchFunc(tm.Days, day, func(d bulkTeamDay, day int32) int { return int(d.Day - day) })
	if !found {
		tm.Days = slices.Insert(tm.Days, i, bulkTeamDay{Day: day})
	}
	d := &tm.Days[i]
	if j, found := slices.BinarySearchFunc(d.Peaks, peak, func(pc [2]int32, peak int32) int { return int(pc[0] - peak) }); found {
		d.Peaks[j][1]++
	} else {
		d.Peaks = slices.Insert(d.Peaks, j, [2]int32{peak, 1})
	}
	tm.Days = slices.DeleteFunc(tm.Days, func(d bulkTeamDay) bool { return d.Day < from })
}

// nearestRank is the 1-based rank of quantile q among n sorted values.
func nearestRank(q float64, n int) int {
	return min(max(int(math.Ceil(q*float64(n)-1e-9)), 1), n)
}

// subjectHash keys a subject in the window, so that the state holds no
// subject ids: 64-bit FNV-1a, stable across restarts (maphash is seeded per
// process), inline because hash/fnv allocates on this hot path.
func subjectHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// bulkLead is the explanation's opening clause, e.g. "u-17
// (support-worker, webster-court) opened the records of 42 different people
// in the hour to 10:14 on Mon 16 Nov 2026, about 10 times their usual (4)
// and 8 times their team's (5)". No subject is named.
func bulkLead(actor, role, team string, local time.Time, n int, capped bool, own, teamBase int32, thr float64, p *bulkPolicy) string {
	var b strings.Builder
	b.WriteString(actor)
	var tags []string
	for _, s := range []string{role, team} {
		if rules.PlainWord(s) {
			tags = append(tags, s)
		}
	}
	if len(tags) > 0 {
		b.WriteString(" (" + strings.Join(tags, ", ") + ")")
	}
	count := strconv.Itoa(n)
	if capped {
		count = "at least " + count
	}
	win := "the hour"
	if p.window != time.Hour {
		win = "the " + rules.Span(p.window)
	}
	b.WriteString(" opened the records of " + count + " different people in " + win + " to " + local.Format("15:04 on Mon 2 Jan 2006") + ", ")
	switch {
	case own > 0 && teamBase > 0:
		b.WriteString("about " + ratio(n, own) + " their usual (" + strconv.Itoa(int(own)) + ") and " + ratio(n, teamBase) + " their team's (" + strconv.Itoa(int(teamBase)) + ")")
	case own > 0:
		b.WriteString("about " + ratio(n, own) + " their usual (" + strconv.Itoa(int(own)) + ")")
	case teamBase > 0:
		b.WriteString("about " + ratio(n, teamBase) + " their team's usual (" + strconv.Itoa(int(teamBase)) + "), with too little history of their own to compare")
	default:
		b.WriteString("more than the " + strconv.Itoa(int(thr)) + " allowed before they or their team have a history to compare")
	}
	return b.String()
}

// ratio renders n/base for a manager: "10 times", "2.5 times".
func ratio(n int, base int32) string {
	r := float64(n) / float64(base)
	if r >= 3 {
		return strconv.Itoa(int(math.Round(r))) + " times"
	}
	return strconv.FormatFloat(math.Round(r*10)/10, 'f', -1, 64) + " times"
}
