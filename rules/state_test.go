package rules_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/checks/bulkaccess"
	"github.com/dpiawatch/dpiawatch/checks/nobusinessneed"
	"github.com/dpiawatch/dpiawatch/checks/outofhours"
	"github.com/dpiawatch/dpiawatch/checks/sharedcredential"
	"github.com/dpiawatch/dpiawatch/checks/unlockedsession"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
	"github.com/dpiawatch/dpiawatch/store"
)

// burstCheck is a stateful check for the engine's tests: it counts each
// actor's record actions in Keyed state (forgotten after 2h idle) and
// reports every fifth one, and reports "out-of-order" when it is handed an
// event older than the last one it judged for that actor.
type burstCheck struct {
	counts *rules.Keyed[burstState]
}

type burstState struct {
	N    int       `json:"n"`
	Last time.Time `json:"last"`
}

const checkBurst = "test-burst"

func newBurstCheck() *burstCheck {
	return &burstCheck{counts: rules.NewKeyed[burstState]("counts", 2*time.Hour)}
}

func (*burstCheck) Name() string                 { return checkBurst }
func (c *burstCheck) States() []rules.StateTable { return []rules.StateTable{c.counts} }
func (c *burstCheck) Evaluate(ev *event.Event, v *rules.Env, eps *rules.Episodes) bool {
	if !ev.Action.IsRecordAction() {
		return false
	}
	st, _ := c.counts.Get(v, ev.Actor.ID)
	if ev.Time.Before(st.Last) {
		eps.Add(v, ev, rules.Finding{Pattern: "out-of-order", Severity: alert.SeverityLow, Gap: time.Hour, Lead: func() string { return "out of order" }})
	}
	st.N++
	if t := ev.Time.UTC(); t.After(st.Last) {
		st.Last = t
	}
	if st.N%5 == 0 {
		eps.Add(v, ev, rules.Finding{Pattern: "burst", Severity: alert.SeverityLow, Gap: 30 * time.Minute, Lead: func() string {
			return fmt.Sprintf("%s made %d record actions", ev.Actor.ID, st.N)
		}})
	}
	c.counts.Put(v, ev.Actor.ID, ev.Time, st)
	return true
}

func burstOptions(lateness time.Duration, r rules.Roster) func() rules.Options {
	return func() rules.Options {
		return rules.WithExtraChecks(rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: rulestest.Policy()}, Roster: r, Lateness: lateness}, newBurstCheck())
	}
}

// TestRestartKeyedState: a restart at any point, with keyed state, waiting
// events and open episodes of every check in flight, gives the alerts of an
// uninterrupted run; and so does any batching.
func TestRestartKeyedState(t *testing.T) {
	roster := rulestest.ULSRoster() // judgeStaff, judgeShifts, nbnRelations, nbnAgreements and devices
	events := rulestest.WithBulkSweeps(rulestest.WithSessions(rulestest.Stream(5, 3000), 5))
	for _, lateness := range []time.Duration{0, rules.NoLateness, time.Hour} {
		t.Run(fmt.Sprint(lateness), func(t *testing.T) {
			opts := burstOptions(lateness, roster)
			single := map[string]alert.Alert{}
			e := rulestest.NewEngine(t, opts())
			rulestest.Run(t, e, events, 64, single, nil)
			rulestest.Flush(e, single, nil)
			checks := map[string]int{}
			for _, a := range single {
				checks[a.Check]++
			}
			if checks[checkBurst] < 20 || checks[nobusinessneed.Name] < 10 || checks[outofhours.Name] < 10 || checks[unlockedsession.Name] < 10 || checks[sharedcredential.Name] < 10 || checks[bulkaccess.Name] < 2 {
				t.Fatalf("stream too tame: %v", checks)
			}
			want := rulestest.JSONOf(t, rulestest.SortedAlerts(single))

			for _, cut := range []int{1, 333, 1500, 2999} {
				alerts, state := map[string]alert.Alert{}, map[string][]byte{}
				first := rulestest.NewEngine(t, opts())
				rulestest.Run(t, first, events[:cut], 7, alerts, state)
				var keys, waiting int
				for k := range state {
					keys += rulestest.B2I(strings.HasPrefix(k, "rules/"+checkBurst+"/counts/"))
					waiting += rulestest.B2I(strings.HasPrefix(k, rules.PendingPrefix))
				}
				if cut > 1 && (keys == 0 || (lateness == time.Hour && waiting == 0)) {
					t.Fatalf("cut %d: nothing in flight (%d keys, %d waiting chunks)", cut, keys, waiting)
				}
				second := rulestest.NewEngine(t, opts())
				if err := second.Restore(rulestest.Entries(state)); err != nil {
					t.Fatal(err)
				}
				rulestest.Run(t, second, events[cut:], 13, alerts, state)
				rulestest.Flush(second, alerts, state)
				if got := rulestest.JSONOf(t, rulestest.SortedAlerts(alerts)); got != want {
					t.Errorf("cut %d: restored run differs from a single run", cut)
					rulestest.DiffAlerts(t, single, alerts)
				}
			}
			for _, batch := range []int{1, 500, 3000} {
				alerts := map[string]alert.Alert{}
				e := rulestest.NewEngine(t, opts())
				rulestest.Run(t, e, events, batch, alerts, nil)
				rulestest.Flush(e, alerts, nil)
				if got := rulestest.JSONOf(t, rulestest.SortedAlerts(alerts)); got != want {
					t.Errorf("batch %d: alerts differ", batch)
				}
			}
		})
	}
}

func TestLateness(t *testing.T) {
	cases := []struct {
		name       string
		lateness   time.Duration
		spread     time.Duration
		outOfOrder bool // the check saw events out of order
		late       bool // some were counted late
	}{
		{"within the bound judged in order", 5 * time.Minute, 4 * time.Minute, false, false},
		{"beyond the bound judged on arrival", 5 * time.Minute, 20 * time.Minute, true, true},
		{"no lateness", rules.NoLateness, 2 * time.Minute, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			o := burstOptions(tc.lateness, nil)()
			o.Registerer = reg
			e := rulestest.NewEngine(t, o)
			events := rulestest.Shuffled(200, tc.spread, 1)
			alerts := map[string]alert.Alert{}
			rulestest.Run(t, e, events, 9, alerts, nil)
			rulestest.Flush(e, alerts, nil)
			var ooo, evaluated int
			for _, a := range alerts {
				if a.Pattern == "out-of-order" {
					ooo += a.EventCount
				}
			}
			evaluated = int(testutil.ToFloat64(e.Metrics().Evaluations.WithLabelValues(checkBurst)))
			if evaluated != len(events) {
				t.Errorf("evaluated %d events, want every one of %d", evaluated, len(events))
			}
			if (ooo > 0) != tc.outOfOrder {
				t.Errorf("%d events judged out of order, want any: %v", ooo, tc.outOfOrder)
			}
			late := testutil.ToFloat64(e.Metrics().Late)
			if (late > 0) != tc.late {
				t.Errorf("late events %v, want any: %v", late, tc.late)
			}
			if testutil.ToFloat64(e.Metrics().Pending) != 0 {
				t.Error("events still waiting after Flush")
			}
		})
	}
}

// TestLatenessEdge: an event exactly the bound behind the watermark is late;
// one a nanosecond inside it waits its turn.
func TestLatenessEdge(t *testing.T) {
	for _, tc := range []struct {
		behind time.Duration
		late   float64
	}{{5 * time.Minute, 1}, {5*time.Minute - time.Nanosecond, 0}} {
		e := rulestest.NewEngine(t, burstOptions(0, nil)())
		t0 := rulestest.LT("2026-03-10 09:00:00")
		rulestest.Run(t, e, []event.Event{
			rulestest.Event("a", "u-40", t0, event.ActionView),
			rulestest.Event("b", "u-40", t0.Add(10*time.Minute), event.ActionView),
			rulestest.Event("c", "u-40", t0.Add(10*time.Minute-tc.behind), event.ActionView),
		}, 3, nil, nil)
		if got := testutil.ToFloat64(e.Metrics().Late); got != tc.late {
			t.Errorf("%v behind: late %v, want %v", tc.behind, got, tc.late)
		}
	}
}

func TestFutureEvents(t *testing.T) {
	t0 := rulestest.LT("2026-03-10 09:00:00")
	normal := func(i int) event.Event {
		return rulestest.Event(fmt.Sprintf("n%02d", i), "u-40", t0.Add(time.Duration(i)*time.Minute), event.ActionView)
	}
	bogus := func(i int) event.Event {
		return rulestest.Event(fmt.Sprintf("f%02d", i), "u-41", rulestest.LT("2099-01-01 00:00:00").Add(time.Duration(i)*time.Second), event.ActionView)
	}

	t.Run("wall clock", func(t *testing.T) {
		o := burstOptions(0, nil)()
		o.Now = func() time.Time { return t0 }
		e := rulestest.NewEngine(t, o)
		// Before any watermark, the clock bounds the first event.
		rulestest.Run(t, e, []event.Event{bogus(0), normal(0), bogus(1), normal(1)}, 2, nil, nil)
		for i := 2; i < 20; i++ {
			rulestest.Run(t, e, []event.Event{bogus(i)}, 1, nil, nil)
		}
		rulestest.Run(t, e, []event.Event{normal(2)}, 1, nil, nil)
		if got := testutil.ToFloat64(e.Metrics().Future); got != 20 {
			t.Errorf("future events %v, want 20 (no run confirms a jump with a clock)", got)
		}
		if late := testutil.ToFloat64(e.Metrics().Late); late != 0 {
			t.Errorf("normal events counted late: %v", late)
		}
		if wm := e.Watermark(rulestest.Org); !wm.Equal(normal(2).Time) {
			t.Errorf("watermark %v, want %v", wm, normal(2).Time)
		}
	})

	t.Run("no clock: a run of events confirms a jump", func(t *testing.T) {
		e := rulestest.NewEngine(t, burstOptions(0, nil)())
		rulestest.Run(t, e, []event.Event{normal(0)}, 1, nil, nil)
		var evs []event.Event
		for i := range rules.AheadConfirm - 1 {
			evs = append(evs, bogus(i))
		}
		evs = append(evs, normal(1)) // breaks the run
		rulestest.Run(t, e, evs, 4, nil, nil)
		if wm := e.Watermark(rulestest.Org); !wm.Equal(normal(1).Time) {
			t.Fatalf("watermark %v moved by a broken run", wm)
		}
		evs = evs[:0]
		for i := range rules.AheadConfirm {
			evs = append(evs, bogus(20+i))
		}
		alerts := map[string]alert.Alert{}
		rulestest.Run(t, e, evs, 3, alerts, nil)
		if wm := e.Watermark(rulestest.Org); !wm.Equal(bogus(20).Time) {
			t.Errorf("watermark %v, want the jump to the earliest of the run, %v", wm, bogus(20).Time)
		}
		if got := testutil.ToFloat64(e.Metrics().Future); got != 2*rules.AheadConfirm-2 {
			t.Errorf("future events %v, want %d", got, 2*rules.AheadConfirm-2)
		}
	})
}

func TestKeyedEviction(t *testing.T) {
	e := rulestest.NewEngine(t, burstOptions(rules.NoLateness, nil)())
	t0 := rulestest.LT("2026-03-10 09:00:00")
	fx, err := e.Process([]event.Event{rulestest.Event("a", "u-40", t0, event.ActionView), rulestest.Event("b", "u/41", t0, event.ActionView)})
	if err != nil {
		t.Fatal(err)
	}
	k40, k41 := "rules/test-burst/counts/st-martins/u-40", "rules/test-burst/counts/st-martins/u%2F41"
	rulestest.WantKeys(t, rulestest.Only(fx.State, "rules/test-burst/"), map[string]bool{k40: true, k41: true})
	// u-40 active again at 10:30; at 11:00:01 u/41 has been idle for more
	// than 2h and is deleted; u-40 is not.
	e.Process([]event.Event{rulestest.Event("c", "u-40", t0.Add(90*time.Minute), event.ActionView)})
	fx, _ = e.Process([]event.Event{rulestest.Event("d", "u-42", t0.Add(2*time.Hour+time.Second), event.ActionLogin)})
	rulestest.WantKeys(t, rulestest.Only(fx.State, "rules/test-burst/"), map[string]bool{k41: false})
	if n := testutil.ToFloat64(e.Metrics().Keys.WithLabelValues(checkBurst)); n != 1 {
		t.Errorf("state keys %v, want 1", n)
	}
	st, ok := e.LastCheck().(*burstCheck).counts.Get(e.EnvOf(rulestest.Org), "u-40")
	if !ok || st.N != 2 {
		t.Errorf("u-40 state %+v, %v", st, ok)
	}
}

func TestDisabledChecks(t *testing.T) {
	roster := rulestest.NewFakeRoster(rulestest.JudgeStaff, rulestest.JudgeShifts).WithRelations(rulestest.NBNRelations, nil)
	ev := rulestest.Event("e1", "u-40", rulestest.Sat("23:00"), event.ActionView, rulestest.Subject("c-77"))
	for _, tc := range []struct {
		disabled []string
		want     []string
	}{
		{nil, []string{nobusinessneed.Name, outofhours.Name}},
		{[]string{outofhours.Name}, []string{nobusinessneed.Name}},
		{[]string{outofhours.Name, nobusinessneed.Name}, nil},
	} {
		e := rulestest.NewEngine(t, rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: rulestest.Policy()}, Roster: roster, Disabled: tc.disabled})
		e.Process([]event.Event{ev})
		var got []string
		for _, a := range rulestest.SortedAlerts(rulestest.AlertMap(e.Flush().Alerts)) {
			got = append(got, a.Check)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("disabled %v: checks %v, want %v", tc.disabled, got, tc.want)
		}
	}
	if _, err := rules.New(rules.Options{Disabled: []string{"no-busines-need"}}); err == nil {
		t.Error("disabling an unknown check: want an error")
	}
}

func TestRestoreRejectsBadEventTimeState(t *testing.T) {
	wm := `{"watermark":"2026-03-10T09:00:00Z","frontier":"2026-03-10T08:55:00Z","judged":"2026-03-10T08:55:00Z"}`
	chunk := `[{"id":"e1","time":"2026-03-10T08:58:00Z","org":"st-martins","system":"s","action":"view","actor":{"id":"u-1"},"subject":{"id":"c-1"},"outcome":"success"}]`
	cases := []struct {
		name    string
		entries []store.StateEntry
		ok      bool
		waiting int
	}{
		{"good", []store.StateEntry{{Key: "rules/pending/st-martins/1-s-e1", Value: []byte(chunk)}, {Key: "rules/watermark/st-martins", Value: []byte(wm)}}, true, 1},
		{"legacy watermark", []store.StateEntry{{Key: "rules/watermark/st-martins", Value: []byte("2026-03-10T09:00:00Z")}}, true, 0},
		{"chunk already passed", []store.StateEntry{{Key: "rules/watermark/st-martins", Value: []byte(strings.ReplaceAll(wm, "08:55", "08:59"))}, {Key: "rules/pending/st-martins/1-s-e1", Value: []byte(chunk)}}, true, 0},
		{"chunk without clock", []store.StateEntry{{Key: "rules/pending/st-martins/1-s-e1", Value: []byte(chunk)}}, false, 0},
		{"chunk of another org", []store.StateEntry{{Key: "rules/watermark/x", Value: []byte(wm)}, {Key: "rules/pending/x/1", Value: []byte(chunk)}}, false, 0},
		{"frontier ahead", []store.StateEntry{{Key: "rules/watermark/st-martins", Value: []byte(strings.ReplaceAll(wm, "08:55", "09:55"))}}, false, 0},
		{"keyed state not json", []store.StateEntry{{Key: "rules/test-burst/counts/st-martins/u-1", Value: []byte("{")}}, false, 0},
		{"keyed state without time", []store.StateEntry{{Key: "rules/test-burst/counts/st-martins/u-1", Value: []byte(`{"v":{"n":1}}`)}}, false, 0},
		{"keyed state of an unknown table", []store.StateEntry{{Key: "rules/test-burst/other/st-martins/u-1", Value: []byte("{")}}, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := rulestest.NewEngine(t, burstOptions(0, nil)())
			err := e.Restore(tc.entries)
			if (err == nil) != tc.ok {
				t.Fatalf("Restore: %v, want ok=%v", err, tc.ok)
			}
			if n := e.Waiting(rulestest.Org); n >= 0 && n != tc.waiting {
				t.Errorf("%d waiting, want %d", n, tc.waiting)
			}
		})
	}
}
