package bulkaccess

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

// The bulk-access cases run against two teams: north (u-1 … u-9, u-9 a
// manager) and south (s-1 … s-5), and x-1 with no team.
func bulkStaff() []reference.Staff {
	var out []reference.Staff
	for i := 1; i <= 8; i++ {
		out = append(out, rulestest.Staff(fmt.Sprintf("u-%d", i), "support-worker", "north"))
	}
	out = append(out, rulestest.Staff("u-9", "manager", "north"))
	for i := 1; i <= 5; i++ {
		out = append(out, rulestest.Staff(fmt.Sprintf("s-%d", i), "social-worker", "south"))
	}
	return append(out, rulestest.Staff("x-1", "agency", ""))
}

// bulkOnly runs the bulk-access check alone.
func bulkOnly(p rules.OrgPolicy) rules.Options {
	var off []string
	for _, c := range rules.Checks() {
		if c != Name {
			off = append(off, c)
		}
	}
	return rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: p}, Roster: rulestest.NewFakeRoster(bulkStaff(), nil), Disabled: off}
}

// bulkPolicy0 is the test org with no DPIA risks (so the configured
// severity applies) and the default bulk-access knobs.
func bulkPolicy0() rules.OrgPolicy {
	return rules.OrgPolicy{DPIA: rulestest.DPIA, Risks: map[string][]rules.RiskRef{}}
}

// gen numbers events and subjects.
type gen struct{ n int }

// opens returns n views by actor of distinct subjects c-<first>… from
// start, step apart.
func (g *gen) opens(actor string, start time.Time, n int, step time.Duration, first int, opts ...rulestest.EvOpt) []event.Event {
	out := make([]event.Event, 0, n)
	for i := range n {
		g.n++
		o := append([]rulestest.EvOpt{rulestest.Subject(fmt.Sprintf("c-%d", first+i))}, opts...)
		out = append(out, rulestest.Event(fmt.Sprintf("b%06d", g.n), actor, start.Add(time.Duration(i)*step), event.ActionView, o...))
	}
	return out
}

// history gives actor a daily peak of perDay distinct subjects on each of
// days local days before day0 (10:00, a minute apart).
func (g *gen) history(actor string, day0 time.Time, days, perDay int) []event.Event {
	var out []event.Event
	for d := days; d >= 1; d-- {
		out = append(out, g.opens(actor, day0.AddDate(0, 0, -d), perDay, time.Minute, 1000)...)
	}
	return out
}

func tagged(tags ...string) rulestest.EvOpt {
	return func(e *event.Event) { e.Subject.Sensitivity = tags }
}

func byTime(evs []event.Event) []event.Event {
	slices.SortStableFunc(evs, func(a, b event.Event) int { return a.Time.Compare(b.Time) })
	return evs
}

// bulkAlerts runs events in batches of n, flushes, and returns the
// bulk-access alerts in order.
func bulkAlerts(t testing.TB, o rules.Options, events []event.Event, n int) []alert.Alert {
	t.Helper()
	got := map[string]alert.Alert{}
	e := rulestest.NewEngine(t, o)
	rulestest.Run(t, e, events, n, got, nil)
	rulestest.Flush(e, got, nil)
	var out []alert.Alert
	for _, a := range rulestest.SortedAlerts(got) {
		if a.Check == Name {
			out = append(out, a)
		}
	}
	return out
}

func TestBulkAccessJudgement(t *testing.T) {
	day0 := rulestest.LT("2026-03-16 09:00:00") // a Monday
	burstAt := day0.Add(2 * time.Hour)
	type hist struct {
		actor        string
		days, perDay int
		ago          int // days between the last of them and the burst's; default 1
	}
	// north's members other than u-1 open 4 a day for 10 days: team
	// baseline 4 once u-1's days join.
	north := func(perDay int) []hist {
		var h []hist
		for i := 2; i <= 8; i++ {
			h = append(h, hist{fmt.Sprintf("u-%d", i), 10, perDay, 0})
		}
		return h
	}
	cases := []struct {
		name     string
		policy   func(*Policy)
		risks    []rules.RiskRef
		hist     []hist
		actor    string
		n        int           // subjects in the burst
		step     time.Duration // between them; default 30s
		tags     []string      // sensitivity of the burst's subjects
		fires    int           // the count at the first finding; 0: none
		severity alert.Severity
	}{
		// Cold start: nobody has history: the absolute threshold (30).
		{name: "cold start at the threshold", actor: "u-1", n: 30},
		{name: "cold start above", actor: "u-1", n: 31, fires: 31},
		{name: "cold start raised by org", actor: "u-1", n: 40, policy: func(p *Policy) { p.ColdStartSubjects = 40 }},
		{name: "cold start below the floor takes the floor", actor: "u-1", n: 21, fires: 21, policy: func(p *Policy) { p.ColdStartSubjects = 5 }},

		// Own and team baselines of 4: 3×4 = 12 is under the floor (20).
		{name: "floor holds", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 4, 0}), n: 20},
		{name: "floor exceeded", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 4, 0}), n: 21, fires: 21},
		{name: "floor knob", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 4, 0}), n: 15, fires: 13,
			policy: func(p *Policy) { p.MinSubjects = 12 }},

		// The actor's own baseline: 10 a day makes 30.
		{name: "own baseline holds", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 10, 0}), n: 30},
		{name: "own baseline exceeded", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 10, 0}), n: 31, fires: 31},
		{name: "multiplier knob", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 10, 0}), n: 45, fires: 41,
			policy: func(p *Policy) { p.Multiplier = 4 }},
		{name: "multiplier per role", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 10, 0}), n: 45,
			policy: func(p *Policy) { p.Roles = map[string]Knobs{"support-worker": {Multiplier: 5}} }},

		// The team's baseline: peers at 10 a day make 30 for u-1 at 4.
		{name: "team baseline holds", actor: "u-1", hist: append(north(10), hist{"u-1", 10, 4, 0}), n: 30},
		{name: "team baseline exceeded", actor: "u-1", hist: append(north(10), hist{"u-1", 10, 4, 0}), n: 31, fires: 31},
		// Cold start of the actor: the team baseline alone (4 → floor 20).
		{name: "new actor: team baseline", actor: "u-1", hist: north(4), n: 21, fires: 21},
		{name: "new actor: busy team", actor: "u-1", hist: north(10), n: 30},
		{name: "too little own history", actor: "u-1", hist: append(north(4), hist{"u-1", 4, 15, 0}), n: 21, fires: 21},
		{name: "min_history_days knob", actor: "u-1", hist: append(north(4), hist{"u-1", 4, 15, 0}), n: 45,
			policy: func(p *Policy) { p.MinHistoryDays = 4 }},
		// A team with too few member-days has no baseline: u-1's own only.
		{name: "min_team_samples knob", actor: "s-1", hist: []hist{{"s-2", 10, 15, 0}, {"s-1", 10, 2, 0}}, n: 21, fires: 21,
			policy: func(p *Policy) { p.MinTeamSamples = 21 }},
		{name: "small team counts", actor: "s-1", hist: []hist{{"s-2", 10, 15, 0}, {"s-1", 10, 2, 0}}, n: 40},
		// No team: own baseline, else cold start.
		{name: "no team, own baseline", actor: "x-1", hist: []hist{{"x-1", 10, 8, 0}}, n: 25, fires: 25},
		{name: "no team, no history", actor: "x-1", n: 30},

		// Quantile and baseline period.
		{name: "old days count by default", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 12, 5}), n: 30},
		{name: "baseline_days knob forgets older days", actor: "u-1", hist: append(north(4), hist{"u-1", 10, 12, 5}), n: 30, fires: 21,
			policy: func(p *Policy) { p.BaselineDays = 3; p.MinHistoryDays = 1 }},
		// South: 10 days at 15 and 10 at 3: the 0.75 quantile is 15 (45),
		// the 0.25 quantile 3 (the floor).
		{name: "quantile default", actor: "s-1", hist: []hist{{"s-2", 10, 15, 0}, {"s-3", 10, 3, 0}}, n: 45},
		{name: "quantile knob", actor: "s-1", hist: []hist{{"s-2", 10, 15, 0}, {"s-3", 10, 3, 0}}, n: 30, fires: 21,
			policy: func(p *Policy) { p.Quantile = 0.25 }},

		// Window: 40 subjects two minutes apart span 78 minutes; an hour
		// holds 30 of them (opened at 0, 2, … 58 minutes: 30).
		{name: "window spreads the burst", actor: "u-1", n: 40, step: 2 * time.Minute},
		{name: "window knob", actor: "u-1", n: 40, step: 2 * time.Minute, fires: 31, policy: func(p *Policy) { p.Window = 2 * time.Hour }},
		// Exactly one window apart: the first has left when the 31st comes.
		{name: "window edge is exclusive", actor: "u-1", n: 31, step: 2 * time.Minute, policy: func(p *Policy) { p.Window = time.Hour }},

		// Exemption and overrides.
		{name: "exempt role", actor: "u-9", n: 40, policy: func(p *Policy) { p.Roles = map[string]Knobs{"manager": {Exempt: new(true)}} }},
		{name: "team beats role", actor: "u-9", n: 40, fires: 31, policy: func(p *Policy) {
			p.Roles = map[string]Knobs{"manager": {Exempt: new(true)}}
			p.Teams = map[string]Knobs{"north": {Exempt: new(false)}}
		}},
		{name: "cap reads at least", actor: "u-1", n: 40, fires: 31, policy: func(p *Policy) { p.MaxTracked = 31 }},

		// Severity.
		{name: "configured severity", actor: "u-1", n: 31, fires: 31, severity: alert.SeverityMedium,
			policy: func(p *Policy) { p.Severity = alert.SeverityMedium }},
		{name: "sensitive subjects raise", actor: "u-1", n: 31, fires: 31, tags: []string{"safeguarding"}, severity: alert.SeverityCritical},
		{name: "DPIA score", actor: "u-1", n: 31, fires: 31, risks: []rules.RiskRef{{ID: "R4", Title: "Misuse of data by users", Score: "medium"}},
			severity: alert.SeverityMedium},
	}
	var golden strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := bulkPolicy0()
			if tc.policy != nil {
				tc.policy(bulkOf(&p))
			}
			if tc.risks != nil {
				p.Risks[Name] = tc.risks
			}
			g := &gen{}
			var events []event.Event
			for _, h := range tc.hist {
				events = append(events, g.history(h.actor, day0.AddDate(0, 0, 1-max(h.ago, 1)), h.days, h.perDay)...)
			}
			// The actors of the history act briefly on the burst's day, so
			// that their last day joins the team's before the burst.
			for _, h := range tc.hist {
				events = append(events, g.opens(h.actor, day0, 1, 0, 1000)...)
			}
			step := tc.step
			if step == 0 {
				step = 30 * time.Second
			}
			var tags []rulestest.EvOpt
			if tc.tags != nil {
				tags = append(tags, tagged(tc.tags...))
			}
			burst := g.opens(tc.actor, burstAt, tc.n, step, 0, tags...)
			events = append(byTime(events), burst...)
			got := bulkAlerts(t, bulkOnly(p), events, 50)
			if tc.fires == 0 {
				if len(got) != 0 {
					t.Fatalf("want no alert, got %s", rulestest.JSONOf(t, got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one alert, got %d: %s", len(got), rulestest.JSONOf(t, got))
			}
			a := got[0]
			first := tc.fires - 1
			var want []string
			for _, ev := range burst[first:] {
				want = append(want, ev.ID)
			}
			if !reflect.DeepEqual(a.EventIDs, want) || a.ActorID != tc.actor || a.Pattern != PatternBulkAccess || a.SubjectID != burst[first].Subject.ID {
				t.Errorf("alert %s\nwant events %v from subject %s", rulestest.JSONOf(t, a), want, burst[first].Subject.ID)
			}
			if !strings.Contains(a.Explanation, fmt.Sprintf(" %d different people", tc.fires)) {
				t.Errorf("explanation %q does not count %d", a.Explanation, tc.fires)
			}
			if strings.Contains(a.Explanation, "c-") {
				t.Errorf("explanation names a subject: %s", a.Explanation)
			}
			sev := cmpOrSev(tc.severity, DefaultBulkSeverity)
			if a.Severity != sev {
				t.Errorf("severity %s, want %s", a.Severity, sev)
			}
			fmt.Fprintf(&golden, "%s\n\t%s %s\n\t%s\n", tc.name, a.Pattern, a.Severity, a.Explanation)
		})
	}
	rulestest.CheckGolden(t, "bulk-access.golden", golden.String())
}

func cmpOrSev(s, def alert.Severity) alert.Severity {
	if s != "" {
		return s
	}
	return def
}

// TestBulkAccessClipping: a day that fired adds the threshold, not the
// burst, to the actor's history, so one episode does not make bursts usual;
// a lasting change of duties lifts the baseline within days all the same.
func TestBulkAccessClipping(t *testing.T) {
	day0 := rulestest.LT("2026-03-16 09:00:00")
	g := &gen{}
	p := bulkPolicy0()
	bulkOf(&p).Quantile = 1 // the highest day
	var events []event.Event
	events = append(events, g.history("u-1", day0.AddDate(0, 0, -1), 6, 4)...) // six days at 4: own 4
	events = append(events, g.opens("u-1", day0.AddDate(0, 0, -1), 60, 10*time.Second, 0)...)
	// The next day: own baseline = max(4, …, 20 clipped) = 20 → 60.
	events = append(events, g.opens("u-1", day0, 60, 10*time.Second, 0)...)
	events = append(events, g.opens("u-1", day0.Add(2*time.Hour), 61, 10*time.Second, 100)...)
	got := bulkAlerts(t, bulkOnly(p), events, 100)
	if len(got) != 2 {
		t.Fatalf("want two alerts, got %s", rulestest.JSONOf(t, got))
	}
	if !strings.Contains(got[0].Explanation, "21 different people") || !strings.Contains(got[1].Explanation, "61 different people in the hour to 11:10 on Mon 16 Mar 2026, about 3 times their usual (20).") {
		t.Errorf("explanations:\n%s\n%s", got[0].Explanation, got[1].Explanation)
	}
}

// TestBulkAccessEpisodes: one sweep is one growing alert; re-opening the
// same subjects adds nothing; failures and session actions are not counted;
// a second sweep after a pause longer than the gap is a second alert.
func TestBulkAccessEpisodes(t *testing.T) {
	day := rulestest.LT("2026-03-16 10:00:00")
	g := &gen{}
	var events []event.Event
	events = append(events, g.opens("u-1", day, 25, 20*time.Second, 0)...)
	events = append(events, g.opens("u-1", day.Add(10*time.Minute), 25, 5*time.Second, 0)...)                      // the same again
	events = append(events, g.opens("u-1", day.Add(15*time.Minute), 10, 5*time.Second, 50, rulestest.Failed())...) // refused
	events = append(events, rulestest.Event("login", "u-1", day.Add(16*time.Minute), event.ActionLogin))
	events = append(events, g.opens("u-1", day.Add(20*time.Minute), 10, 20*time.Second, 25)...) // 26 … 35: 31 … 35 alert
	events = append(events, g.opens("u-2", day.Add(20*time.Minute), 20, 5*time.Second, 0)...)   // another actor, same people
	events = append(events, g.opens("u-1", day.Add(4*time.Hour), 40, 20*time.Second, 100)...)   // a second sweep
	events = byTime(events)
	for _, batch := range []int{1, 7, len(events)} {
		got := bulkAlerts(t, bulkOnly(bulkPolicy0()), events, batch)
		var lines []string
		for _, a := range got {
			lines = append(lines, fmt.Sprintf("%s %s %d %s", a.ActorID, a.SubjectID, a.EventCount, a.FirstSeen.In(rulestest.London).Format("15:04:05")))
		}
		want := []string{"u-1 c-30 5 10:21:40", "u-1 c-130 10 14:10:00"}
		if !reflect.DeepEqual(lines, want) {
			t.Errorf("batch %d: got %q, want %q", batch, lines, want)
		}
		if len(got) == 2 && !strings.HasSuffix(got[0].Explanation, "and 4 more actions until 10:23.") {
			t.Errorf("explanation %q", got[0].Explanation)
		}
	}
}

// TestBulkAccessLate: events out of order within the lateness bound are
// judged as in order; later ones within a window still count; one more than
// a window behind the actor's newest is not counted.
func TestBulkAccessLate(t *testing.T) {
	day := rulestest.LT("2026-03-16 10:00:00")
	g := &gen{}
	inOrder := g.opens("u-1", day, 40, 30*time.Second, 0)
	want := bulkAlerts(t, bulkOnly(bulkPolicy0()), inOrder, 5)
	if len(want) != 1 || want[0].EventCount != 10 {
		t.Fatalf("in order: %s", rulestest.JSONOf(t, want))
	}
	// Shuffled within blocks of 4 minutes: the default bound (5m)
	// restores the order.
	rng := rand.New(rand.NewPCG(1, 2))
	shuffledEvs := slices.Clone(inOrder)
	for i := 0; i < len(shuffledEvs); i += 8 {
		b := shuffledEvs[i:min(i+8, len(shuffledEvs))]
		rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	}
	if got := bulkAlerts(t, bulkOnly(bulkPolicy0()), shuffledEvs, 3); rulestest.JSONOf(t, got) != rulestest.JSONOf(t, want) {
		t.Errorf("shuffled within the bound:\n%s\nwant\n%s", rulestest.JSONOf(t, got), rulestest.JSONOf(t, want))
	}

	// Judged on arrival: the first 10 come 30 minutes late, after the
	// others; they still fall within the window and count.
	o := bulkOnly(bulkPolicy0())
	o.Lateness = rules.NoLateness
	late := append(slices.Clone(inOrder[10:]), inOrder[:10]...)
	got := bulkAlerts(t, o, late, 4)
	if len(got) != 1 || got[0].EventCount != 10 {
		t.Errorf("late within the window: %s", rulestest.JSONOf(t, got))
	}
	// More than a window late: not counted.
	o2 := bulkOnly(bulkPolicy0())
	o2.Lateness = rules.NoLateness
	tooLate := append(g.opens("u-1", day.Add(3*time.Hour), 25, time.Second, 100), g.opens("u-1", day, 25, time.Second, 200)...)
	if got := bulkAlerts(t, o2, tooLate, 4); len(got) != 0 {
		t.Errorf("late beyond the window: %s", rulestest.JSONOf(t, got))
	}
}

// TestBulkAccessDST: days are the org's local days. On the day the clocks
// go forward a day has 23 hours, and a burst across local midnight in
// summer time is one window, not two.
func TestBulkAccessDST(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{rulestest.At("2026-03-28T23:59:59Z"), "2026-03-28"}, // GMT
		{rulestest.At("2026-03-29T00:00:00Z"), "2026-03-29"},
		{rulestest.At("2026-03-29T22:59:59Z"), "2026-03-29"}, // BST: 23:59:59
		{rulestest.At("2026-03-29T23:00:00Z"), "2026-03-30"},
		{rulestest.At("2026-10-24T23:00:00Z"), "2026-10-25"}, // BST midnight
		{rulestest.At("2026-10-25T23:59:59Z"), "2026-10-25"}, // GMT again: a 25-hour day
	} {
		d := newBulkAccess(0).localDay(tc.t, rulestest.London)
		if c := newBulkAccess(0); c.localDay(tc.t.Add(-time.Hour), rulestest.London) >= 0 && c.localDay(tc.t, rulestest.London) != d {
			t.Errorf("localDay(%v) differs when cached", tc.t)
		}
		if got := time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02"); got != tc.want {
			t.Errorf("localDay(%v) = %s, want %s", tc.t, got, tc.want)
		}
	}

	// Seven local days of history across the change, each at 09:30 local
	// (08:30 UTC after it): own baseline 5; the burst at 23:40–00:15 BST.
	g := &gen{}
	var events []event.Event
	for d := 25; d <= 31; d++ {
		events = append(events, g.opens("u-1", rulestest.LT(fmt.Sprintf("2026-03-%02d 09:30:00", d)), 5, time.Minute, 1000)...)
	}
	events = append(events, g.opens("u-1", rulestest.LT("2026-03-31 23:40:00"), 35, time.Minute, 0)...)
	p := bulkPolicy0()
	got := bulkAlerts(t, bulkOnly(p), events, 10)
	if len(got) != 1 || !strings.Contains(got[0].Explanation, "21 different people in the hour to 00:00 on Wed 1 Apr 2026, about 4 times their usual (5), and 14 more actions until 00:14.") {
		t.Fatalf("got %s", rulestest.JSONOf(t, got))
	}
}

// bulkStream is background work of the north and south teams over ten
// days (a few subjects an hour each) with sweeps injected on days 6–9, one
// of them during a night shift across midnight.
func bulkStream(seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 3))
	g := &gen{}
	var events []event.Event
	actors := []string{"u-1", "u-2", "u-3", "u-4", "u-5", "u-6", "u-7", "u-8", "s-1", "s-2", "s-3", "x-1"}
	start := rulestest.LT("2026-03-23 08:00:00")
	for d := range 10 {
		for _, a := range actors {
			if rng.IntN(7) == 0 {
				continue // a day off
			}
			t := start.AddDate(0, 0, d).Add(time.Duration(rng.IntN(120)) * time.Minute)
			for h := range 6 {
				for i := range 1 + rng.IntN(5) {
					g.n++
					ev := rulestest.Event(fmt.Sprintf("s%06d", g.n), a, t.Add(time.Duration(h)*time.Hour+time.Duration(i*7)*time.Minute),
						event.ActionView, rulestest.Subject(fmt.Sprintf("c-%d", rng.IntN(60))))
					events = append(events, ev)
				}
			}
		}
	}
	events = append(events, g.opens("u-3", rulestest.LT("2026-03-29 10:00:00"), 45, 20*time.Second, 100, tagged("safeguarding"))...)
	events = append(events, g.opens("s-2", rulestest.LT("2026-03-30 23:45:00"), 40, 40*time.Second, 200)...)
	events = append(events, g.opens("x-1", rulestest.LT("2026-03-31 14:00:00"), 35, 30*time.Second, 300)...)
	events = append(events, g.opens("u-3", rulestest.LT("2026-04-01 11:00:00"), 50, 10*time.Second, 400)...)
	for i := range events {
		// A tenth arrive up to 4 minutes late.
		if rng.IntN(10) == 0 {
			events[i].Time = events[i].Time.Add(-time.Duration(rng.IntN(240)) * time.Second)
		}
	}
	slices.SortStableFunc(events, func(a, b event.Event) int { return a.Time.Compare(b.Time) })
	for i := 0; i < len(events); i += 3 { // jitter the arrival order a little
		b := events[i:min(i+3, len(events))]
		rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	}
	return events
}

// TestBulkAccessRestart: a restart at any point (mid-history, mid-sweep,
// across midnight) gives the alerts and state of an uninterrupted run, and
// so does any batching.
func TestBulkAccessRestart(t *testing.T) {
	events := bulkStream(9)
	o := bulkOnly(bulkPolicy0())
	single, singleState := map[string]alert.Alert{}, map[string][]byte{}
	e := rulestest.NewEngine(t, o)
	rulestest.Run(t, e, events, 64, single, singleState)
	rulestest.Flush(e, single, singleState)
	var actors []string
	for _, a := range rulestest.SortedAlerts(single) {
		actors = append(actors, a.ActorID)
	}
	if !reflect.DeepEqual(actors, []string{"u-3", "s-2", "x-1", "u-3"}) {
		t.Fatalf("want the four sweeps, got %s", rulestest.JSONOf(t, rulestest.SortedAlerts(single)))
	}
	want, wantState := rulestest.JSONOf(t, rulestest.SortedAlerts(single)), rulestest.JSONOf(t, rulestest.Entries(singleState))

	// Cuts: mid-history, and inside each sweep.
	cuts := []int{1, len(events) / 3}
	for i, ev := range events {
		if ev.Subject.ID == "c-120" || ev.Subject.ID == "c-230" || ev.Subject.ID == "c-333" {
			cuts = append(cuts, i)
		}
	}
	for _, cut := range cuts {
		alerts, state := map[string]alert.Alert{}, map[string][]byte{}
		first := rulestest.NewEngine(t, o)
		rulestest.Run(t, first, events[:cut], 7, alerts, state)
		second := rulestest.NewEngine(t, o)
		if err := second.Restore(rulestest.Entries(state)); err != nil {
			t.Fatal(err)
		}
		rulestest.Run(t, second, events[cut:], 13, alerts, state)
		rulestest.Flush(second, alerts, state)
		if got := rulestest.JSONOf(t, rulestest.SortedAlerts(alerts)); got != want {
			t.Errorf("cut %d: restored run differs from a single run", cut)
			rulestest.DiffAlerts(t, single, alerts)
		}
		if got := rulestest.JSONOf(t, rulestest.Entries(state)); got != wantState {
			t.Errorf("cut %d: saved state differs", cut)
		}
	}
	for _, batch := range []int{1, 500, len(events)} {
		alerts, state := map[string]alert.Alert{}, map[string][]byte{}
		e := rulestest.NewEngine(t, o)
		rulestest.Run(t, e, events, batch, alerts, state)
		rulestest.Flush(e, alerts, state)
		if rulestest.JSONOf(t, rulestest.SortedAlerts(alerts)) != want || rulestest.JSONOf(t, rulestest.Entries(state)) != wantState {
			t.Errorf("batch %d: alerts or state differ", batch)
		}
	}
	// The check's tables hold hashes, not subject ids (an episode holds
	// its alert, subject included).
	for k, v := range singleState {
		if !strings.Contains(k, "/ep/") && strings.Contains(string(v), "c-") {
			t.Errorf("%s holds a subject id: %s", k, v)
		}
	}
}

// TestBulkAccessEviction: an actor idle beyond the horizon is forgotten.
func TestBulkAccessEviction(t *testing.T) {
	g := &gen{}
	o := bulkOnly(bulkPolicy0())
	o.Lateness = rules.NoLateness
	e := rulestest.NewEngine(t, o)
	state := map[string][]byte{}
	rulestest.Run(t, e, g.opens("u-1", rulestest.LT("2026-03-16 10:00:00"), 3, time.Minute, 0), 10, nil, state)
	if _, ok := state["rules/bulk-access/actors/st-martins/u-1"]; !ok {
		t.Fatalf("no state for u-1: %v", slices.Sorted(maps.Keys(state)))
	}
	// A jump beyond MaxAhead moves the clock after rules.AheadConfirm events.
	rulestest.Run(t, e, g.opens("u-2", rulestest.LT("2026-03-16 10:00:00").Add(bulkHorizon+time.Hour), rules.AheadConfirm+1, time.Second, 0), 20, nil, state)
	if _, ok := state["rules/bulk-access/actors/st-martins/u-1"]; ok {
		t.Errorf("u-1 not evicted: %v", slices.Sorted(maps.Keys(state)))
	}
}

func TestBulkAccessPolicyValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    Knobs
		err  string
	}{
		{"window too long", Knobs{Window: 25 * time.Hour}, "window"},
		{"negative window", Knobs{Window: -time.Minute}, "window"},
		{"multiplier under 1", Knobs{Multiplier: 0.5}, "multiplier"},
		{"baseline days", Knobs{BaselineDays: 61}, "baseline_days"},
		{"quantile", Knobs{Quantile: 1.5}, "quantile"},
		{"history beyond period", Knobs{BaselineDays: 3}, "min_history_days"},
		{"negative floor", Knobs{MinSubjects: -1}, "min_subjects"},
		{"cap under threshold", Knobs{MaxTracked: 30}, "max_tracked"},
		{"severity", Knobs{Severity: "urgent"}, "severity"},
		{"negative gap", Knobs{EpisodeGap: -time.Minute}, "episode gap"},
	} {
		_, err := newBulkResolver(Policy{Teams: map[string]Knobs{"north": tc.k}})
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "team north") {
			t.Errorf("%s: err %v, want one about %s for team north", tc.name, err, tc.err)
		}
	}
	if _, err := newBulkResolver(Policy{}); err != nil {
		t.Errorf("zero policy: %v", err)
	}
}

func TestNearestRank(t *testing.T) {
	for _, tc := range []struct {
		q       float64
		n, want int
	}{{0.75, 4, 3}, {0.75, 5, 4}, {0.5, 10, 5}, {1, 7, 7}, {0.01, 7, 1}, {0.75, 1, 1}} {
		if got := nearestRank(tc.q, tc.n); got != tc.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tc.q, tc.n, got, tc.want)
		}
	}
}

// BenchmarkBulkAccessMemory builds the state of a county (10,000 staff in
// 200 teams, 28 days of history, a working hour in the window) through the
// check and reports its size in memory and in the checkpoint.
func BenchmarkBulkAccessMemory(b *testing.B) {
	const staffN, teams, days = 10_000, 200, 29
	var staffs []reference.Staff
	for i := range staffN {
		staffs = append(staffs, rulestest.Staff(fmt.Sprintf("wc-%05d", i), "social-worker", fmt.Sprintf("team-%d", i%teams)))
	}
	roster := rulestest.NewFakeRoster(staffs, nil)
	rng := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		c := newBulkAccess(rulestest.Slot(Name))
		e := rulestest.NewEngine(b, rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: bulkPolicy0()}, Roster: roster, Lateness: rules.NoLateness})
		// Drive the check directly: the engine's batching is not measured.
		dr, err := rules.NewDirect(e, rulestest.Org, c)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		n := 0
		for d := range days {
			day := rulestest.LT("2026-03-02 09:00:00").AddDate(0, 0, d)
			for i := range staffN {
				k := 3 + rng.IntN(6)
				for j := range k {
					n++
					ev := rulestest.Event(fmt.Sprintf("m%d", n), fmt.Sprintf("wc-%05d", i), day.Add(time.Duration(j*6)*time.Minute),
						event.ActionView, rulestest.Subject(fmt.Sprintf("c-%d", rng.IntN(200_000))))
					dr.Evaluate(&ev)
				}
			}
		}
		runtime.GC()
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		state, err := dr.Drain()
		if err != nil {
			b.Fatal(err)
		}
		var cp int
		for _, s := range state {
			cp += len(s.Key) + len(s.Value)
		}
		heap := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
		b.ReportMetric(heap/staffN, "heap-B/actor")
		b.ReportMetric(heap/(1<<20), "heap-MiB")
		b.ReportMetric(float64(cp)/staffN, "checkpoint-B/actor")
		b.ReportMetric(float64(c.actors.Len()+c.teams.Len()), "keys")
		days := 0
		for st := range c.actors.Values() {
			days += st.days()
		}
		b.ReportMetric(float64(days)/staffN, "history-days/actor")
		runtime.KeepAlive(c)
	}
}

// bulkOf is the policy p holds for this check, added with its defaults when
// it holds none, for a test to change in place.
func bulkOf(p *rules.OrgPolicy) *Policy { return rulestest.CheckPolicy[Policy](p, Name) }
