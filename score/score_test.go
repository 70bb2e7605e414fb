package score

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 3, 2, 21, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// ep labels events e<first>..e<first+n-1> of actor, one a minute from
// minute first, as one episode.
func ep(org, id, check, pattern, actor string, first, n int) []LabelledEvent {
	var out []LabelledEvent
	for i := first; i < first+n; i++ {
		out = append(out, LabelledEvent{Org: org, EventID: fmt.Sprintf("e%d", i), ActorID: actor, Time: at(i),
			Check: check, Pattern: pattern, Episode: id})
	}
	return out
}

type alertSpec struct {
	check, pattern, actor string
	ids                   []int
	count                 int // EventCount; 0 means len(ids)
	from, to              int // minutes; default the ids' span
	org                   string
}

func (s alertSpec) alert(i int) alert.Alert {
	a := alert.Alert{ID: fmt.Sprintf("a%d", i), Check: s.check, Pattern: s.pattern, Org: "o", ActorID: s.actor, EventCount: s.count}
	if s.org != "" {
		a.Org = s.org
	}
	for _, id := range s.ids {
		a.EventIDs = append(a.EventIDs, fmt.Sprintf("e%d", id))
	}
	if a.EventCount == 0 {
		a.EventCount = len(s.ids)
	}
	from, to := s.from, s.to
	if from == 0 && to == 0 && len(s.ids) > 0 {
		from, to = slices.Min(s.ids), slices.Max(s.ids)
	}
	a.FirstSeen, a.LastSeen = at(from), at(to)
	return a
}

const (
	ooh = "out-of-hours"
	sc  = "shared-credential"
)

// row is the expected counts of one table row, "check" or "check/pattern":
// episodes, found, found-as-other, missed, alerts, TP, wrong-pattern, FP.
type row [8]int

func rowOf(c Counts) row {
	return row{c.Episodes, c.Found, c.FoundWrongPattern, c.Missed, c.Alerts, c.TP, c.WrongPattern, c.FP}
}

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		labels  [][]LabelledEvent
		alerts  []alertSpec
		checks  []string
		want    map[string]row
		fps     []string // ids of false-positive alerts
		touches map[string][]string
		missed  []string
		notRun  map[string]int
	}{{
		name:   "true positive",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "outside-shift", "u1", 0, 3)},
		alerts: []alertSpec{{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{1, 2}}},
		want:   map[string]row{ooh: {1, 1, 0, 0, 1, 1, 0, 0}, ooh + "/outside-shift": {1, 1, 0, 0, 1, 1, 0, 0}},
	}, {
		name:   "false positive on background and a missed episode",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "outside-shift", "u1", 0, 3)},
		alerts: []alertSpec{{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{50, 51}}},
		want:   map[string]row{ooh: {1, 0, 0, 1, 1, 0, 0, 1}, ooh + "/outside-shift": {1, 0, 0, 1, 1, 0, 0, 1}},
		fps:    []string{"a0"},
		missed: []string{"ep1"},
	}, {
		name: "false positive on another check's episode",
		labels: [][]LabelledEvent{
			ep("o", "ep1", sc, "failed-login-burst", "u1", 0, 5),
			ep("o", "ep2", ooh, "outside-shift", "u2", 10, 2),
		},
		alerts: []alertSpec{
			{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{3, 4}},
			{check: ooh, pattern: "outside-shift", actor: "u2", ids: []int{10, 11}},
		},
		want: map[string]row{
			ooh:                        {1, 1, 0, 0, 2, 1, 0, 1},
			sc:                         {1, 0, 0, 1, 0, 0, 0, 0},
			sc + "/failed-login-burst": {1, 0, 0, 1, 0, 0, 0, 0},
		},
		fps:     []string{"a0"},
		touches: map[string][]string{"a0": {"ep1 (shared-credential/failed-login-burst)"}},
		missed:  []string{"ep1"},
	}, {
		name:   "an event id of another org is another event",
		labels: [][]LabelledEvent{ep("p", "ep1", ooh, "outside-shift", "u1", 0, 2)},
		alerts: []alertSpec{{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{0, 1}}},
		want:   map[string]row{ooh: {1, 0, 0, 1, 1, 0, 0, 1}},
		fps:    []string{"a0"},
		missed: []string{"ep1"},
	}, {
		name:   "capped event ids: the actor's labelled events inside the span match",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "outside-working-hours", "u1", 300, 5)},
		// The alert's 200 listed ids are earlier background events; its span
		// and count say it went on through the episode.
		alerts: []alertSpec{{check: ooh, pattern: "outside-working-hours", actor: "u1", ids: []int{100, 101}, count: 400, from: 100, to: 302}},
		want:   map[string]row{ooh: {1, 1, 0, 0, 1, 1, 0, 0}},
	}, {
		name:   "capped event ids: another actor's episode in the span does not match",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "outside-working-hours", "u2", 300, 5)},
		alerts: []alertSpec{{check: ooh, pattern: "outside-working-hours", actor: "u1", ids: []int{100, 101}, count: 400, from: 100, to: 302}},
		want:   map[string]row{ooh: {1, 0, 0, 1, 1, 0, 0, 1}},
		fps:    []string{"a0"},
		missed: []string{"ep1"},
	}, {
		name:   "capped event ids: an episode after the span does not match",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "outside-working-hours", "u1", 303, 5)},
		alerts: []alertSpec{{check: ooh, pattern: "outside-working-hours", actor: "u1", ids: []int{100, 101}, count: 400, from: 100, to: 302}},
		want:   map[string]row{ooh: {1, 0, 0, 1, 1, 0, 0, 1}},
		fps:    []string{"a0"},
		missed: []string{"ep1"},
	}, {
		name:   "not capped: the span alone is no evidence",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "outside-working-hours", "u1", 300, 5)},
		alerts: []alertSpec{{check: ooh, pattern: "outside-working-hours", actor: "u1", ids: []int{100, 101}, from: 100, to: 302}},
		want:   map[string]row{ooh: {1, 0, 0, 1, 1, 0, 0, 1}},
		fps:    []string{"a0"},
		missed: []string{"ep1"},
	}, {
		name:   "right check, wrong pattern",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "bank-holiday", "u1", 0, 3)},
		alerts: []alertSpec{{check: ooh, pattern: "outside-working-hours", actor: "u1", ids: []int{0, 1, 2}}},
		want: map[string]row{
			ooh:                            {1, 1, 1, 0, 1, 1, 1, 0},
			ooh + "/bank-holiday":          {1, 0, 1, 0, 0, 0, 0, 0},
			ooh + "/outside-working-hours": {0, 0, 0, 0, 1, 0, 1, 0},
		},
		touches: map[string][]string{"a0": {"ep1 (out-of-hours/bank-holiday)"}},
	}, {
		name:   "an episode split over two alerts is found once",
		labels: [][]LabelledEvent{ep("o", "ep1", ooh, "outside-shift", "u1", 0, 4)},
		alerts: []alertSpec{
			{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{0, 1}},
			{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{2, 3}},
		},
		want: map[string]row{ooh: {1, 1, 0, 0, 2, 2, 0, 0}},
	}, {
		name: "checks that did not run are not scored",
		labels: [][]LabelledEvent{
			ep("o", "ep1", ooh, "outside-shift", "u1", 0, 2),
			ep("o", "ep2", sc, "concurrent-sessions", "u2", 5, 2),
			ep("o", "ep3", sc, "impossible-travel", "u2", 9, 2),
		},
		alerts: []alertSpec{{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{0}}},
		checks: []string{ooh},
		want:   map[string]row{ooh: {1, 1, 0, 0, 1, 1, 0, 0}},
		notRun: map[string]int{sc: 2},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			truth := NewTruth()
			for _, l := range tc.labels {
				for _, e := range l {
					if err := truth.Add(e); err != nil {
						t.Fatal(err)
					}
				}
			}
			var alerts []alert.Alert
			for i, s := range tc.alerts {
				alerts = append(alerts, s.alert(i))
			}
			r := Score(truth, alerts, Options{Checks: tc.checks})
			got := map[string]row{}
			for _, c := range r.Checks {
				got[c.Check] = rowOf(c.Counts)
				for _, p := range c.Patterns {
					got[c.Check+"/"+p.Pattern] = rowOf(p.Counts)
				}
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%s: got %v, want %v", k, got[k], w)
				}
			}
			if tc.checks != nil {
				for _, c := range r.Checks {
					if !slices.Contains(tc.checks, c.Check) {
						t.Errorf("check %s scored though it did not run", c.Check)
					}
				}
			}
			var fps []string
			for _, a := range r.FalsePositives {
				fps = append(fps, a.ID)
			}
			if !slices.Equal(fps, tc.fps) {
				t.Errorf("false positives %v, want %v", fps, tc.fps)
			}
			for _, a := range append(slices.Clone(r.FalsePositives), r.WrongPattern...) {
				if w := tc.touches[a.ID]; !slices.Equal(a.Episodes, w) {
					t.Errorf("alert %s touches %v, want %v", a.ID, a.Episodes, w)
				}
			}
			var missed []string
			for _, e := range r.Missed {
				missed = append(missed, e.Episode)
			}
			if !slices.Equal(missed, tc.missed) {
				t.Errorf("missed %v, want %v", missed, tc.missed)
			}
			if len(r.NotRun) != len(tc.notRun) {
				t.Errorf("not run %v, want %v", r.NotRun, tc.notRun)
			}
			for k, v := range tc.notRun {
				if r.NotRun[k] != v {
					t.Errorf("not run %v, want %v", r.NotRun, tc.notRun)
				}
			}
		})
	}
}

func TestRatiosAndThresholds(t *testing.T) {
	truth := NewTruth()
	for _, l := range [][]LabelledEvent{
		ep("o", "ep1", ooh, "outside-shift", "u1", 0, 2),
		ep("o", "ep2", ooh, "outside-shift", "u1", 10, 2),
		ep("o", "ep3", sc, "concurrent-sessions", "u2", 20, 2), // no alert at all
	} {
		for _, e := range l {
			if err := truth.Add(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	alerts := []alert.Alert{
		alertSpec{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{0}}.alert(0),
		alertSpec{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{40}}.alert(1),
		alertSpec{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{41}}.alert(2),
		alertSpec{check: "bulk-access", pattern: "bulk-access", actor: "u3", ids: []int{60}}.alert(3), // no episodes
	}
	r := Score(truth, alerts, Options{})
	byCheck := map[string]CheckScore{}
	for _, c := range r.Checks {
		byCheck[c.Check] = c
	}
	if c := byCheck[ooh]; c.Precision == nil || *c.Precision != 1.0/3 || c.Recall == nil || *c.Recall != 0.5 {
		t.Errorf("out-of-hours precision %v recall %v, want 1/3 and 1/2", deref(c.Precision), deref(c.Recall))
	}
	if c := byCheck[sc]; c.Precision != nil || c.Recall == nil || *c.Recall != 0 {
		t.Errorf("shared-credential: precision %v (want undefined), recall %v (want 0)", deref(c.Precision), deref(c.Recall))
	}
	if c := byCheck["bulk-access"]; c.Recall != nil || c.Precision == nil || *c.Precision != 0 {
		t.Errorf("bulk-access: recall %v (want undefined), precision %v (want 0)", deref(c.Recall), deref(c.Precision))
	}

	for _, tc := range []struct {
		minP, minR float64
		want       []string
	}{
		{0, 0, nil},
		{0.3, 0, nil},
		{0.34, 0, []string{"out-of-hours: precision 0.333 is below 0.340"}},
		// bulk-access has no labelled episodes: never gated; shared-credential
		// has no alerts: its precision is undefined, never below.
		{0.95, 0.98, []string{
			"out-of-hours: precision 0.333 is below 0.950",
			"out-of-hours: recall 0.500 is below 0.980",
			"shared-credential: recall 0.000 is below 0.980",
		}},
	} {
		var got []string
		for _, f := range r.Below(tc.minP, tc.minR) {
			got = append(got, f.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Below(%v, %v) = %q, want %q", tc.minP, tc.minR, got, tc.want)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestTruthRejectsAmbiguousLabels(t *testing.T) {
	truth := NewTruth()
	base := LabelledEvent{Org: "o", EventID: "e1", ActorID: "u1", Time: t0, Check: ooh, Pattern: "outside-shift", Episode: "ep1"}
	if err := truth.Add(base); err != nil {
		t.Fatal(err)
	}
	if err := truth.Add(base); err != nil {
		t.Errorf("the same label twice: %v", err)
	}
	other := base
	other.Episode = "ep2"
	if err := truth.Add(other); err == nil {
		t.Error("one event in two episodes: no error")
	}
	repattern := base
	repattern.EventID, repattern.Pattern = "e2", "bank-holiday"
	if err := truth.Add(repattern); err == nil {
		t.Error("one episode with two patterns: no error")
	}
	if err := truth.Add(LabelledEvent{Org: "o", EventID: "e3"}); err == nil {
		t.Error("label without check and episode: no error")
	}
	if truth.Episodes() != 1 {
		t.Errorf("episodes %d, want 1", truth.Episodes())
	}
}

// TestDeterministicReport checks that the report does not depend on the
// order of alerts and labels, and renders it against golden files.
func TestDeterministicReport(t *testing.T) {
	var labels []LabelledEvent
	labels = append(labels, ep("o", "ep1", ooh, "outside-shift", "u1", 0, 3)...)
	labels = append(labels, ep("o", "ep2", ooh, "bank-holiday", "u2", 10, 3)...)
	labels = append(labels, ep("o", "ep3", ooh, "outside-working-hours", "u3", 20, 3)...)
	labels = append(labels, ep("o", "ep4", sc, "failed-login-burst", "u4", 30, 5)...)
	specs := []alertSpec{
		{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{0, 1, 2}},
		{check: ooh, pattern: "outside-working-hours", actor: "u2", ids: []int{10, 11}},
		{check: ooh, pattern: "outside-shift", actor: "u4", ids: []int{31}},
		{check: ooh, pattern: "outside-shift", actor: "u9", ids: []int{90}},
		{check: sc, pattern: "failed-login-burst", actor: "u4", ids: []int{30, 31, 32, 33, 34}},
	}
	var alerts []alert.Alert
	for i, s := range specs {
		alerts = append(alerts, s.alert(i))
	}
	render := func(labels []LabelledEvent, alerts []alert.Alert) (string, string) {
		truth := NewTruth()
		for _, l := range labels {
			if err := truth.Add(l); err != nil {
				t.Fatal(err)
			}
		}
		r := Score(truth, alerts, Options{Checks: []string{ooh, sc}})
		var txt, js bytes.Buffer
		if err := r.WriteText(&txt, true); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		return txt.String(), js.String()
	}
	txt, js := render(labels, alerts)
	slices.Reverse(labels)
	slices.Reverse(alerts)
	if txt2, js2 := render(labels, alerts); txt2 != txt || js2 != js {
		t.Errorf("report depends on input order:\n%s\nvs\n%s", txt, txt2)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	golden(t, "report.golden.txt", txt)
	golden(t, "report.golden.json", js)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestReadAlerts(t *testing.T) {
	a := alertSpec{check: ooh, pattern: "outside-shift", actor: "u1", ids: []int{1, 2}}.alert(0)
	b, _ := json.Marshal(a)
	in := string(b) + "\n\n" + string(b) + "\n"
	got, err := ReadAlerts(strings.NewReader(in))
	if err != nil || len(got) != 2 || got[1].ID != a.ID || got[1].EventCount != 2 || !got[1].LastSeen.Equal(a.LastSeen) {
		t.Fatalf("ReadAlerts: %v, %+v", err, got)
	}
	if _, err := ReadAlerts(strings.NewReader(string(b) + "\n{oops\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}
