package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// tinyBudgets force the spill-and-merge path: one event per run (and, past
// maxFanIn runs, merge passes), and a few dozen per run.
var tinyBudgets = []struct {
	name   string
	memory int64
}{
	{"one-event-runs", 1},
	{"16KiB", 16 << 10},
}

// conflictAlert is a ConflictAlert for tests: the conflict's alert names
// the fields that differ.
func conflictAlert(c store.Conflict) alert.Alert {
	return alert.Alert{ID: "conflict-" + c.Event.ID, Check: "feed-integrity", FirstSeen: c.Kept.Time,
		EventIDs: []string{c.Event.ID}, Explanation: strings.Join(c.Fields, ",")}
}

// spilled replays in with o under memory, its runs in a directory of
// their own, checks that the run left nothing there, and returns what run
// returns.
func spilled(t *testing.T, in string, o Options, memory int64) (seen, alerts, errs string, st Stats) {
	t.Helper()
	dir := t.TempDir()
	o.Memory, o.SpillDir = memory, dir
	seen, alerts, errs, st = run(t, in, o)
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("spill directory not removed: %v", left)
	}
	return seen, alerts, errs, st
}

// mixedInput is events in shuffled order with many ties in time, repeats
// (same content and conflicting), out-of-range and malformed lines, spread
// over the whole input so that they straddle runs.
func mixedInput(seed uint64) string {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(seed, 7))
	var lines []string
	for i := range 400 {
		lines = append(lines, line(fmt.Sprintf("e%03d", i), t0.Add(time.Duration(i/9)*time.Second), fmt.Sprintf("u-%d", i%6)))
	}
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	for i := range 60 {
		id := fmt.Sprintf("e%03d", rng.IntN(400))
		var l string
		switch i % 4 {
		case 0: // other content under a kept id: a conflict
			l = line(id, t0.Add(time.Duration(rng.IntN(3600))*time.Second), "u-x")
		case 1: // far older than the rest: out of range, and wins no key
			l = `{"id":"` + id + `","time":"1970-01-01T00:00:00Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-old"}}`
		case 2:
			l = `{"id": "truncated`
		default: // an event that may be a repeat of one already read
			l = line(fmt.Sprintf("e%03d", 400+rng.IntN(20)), t0.Add(time.Minute), "u-r")
		}
		at := rng.IntN(len(lines) + 1)
		lines = append(lines[:at], append([]string{l}, lines[at:]...)...)
	}
	return strings.Join(lines, "\n")
}

// TestRunSpillingEqualsInMemory (issue 14, item 1): under a budget that
// makes it spill, a replay evaluates the same events in the same order,
// writes the same alerts and reports the same bad lines, with the same
// line numbers, as with all events in memory, on the inputs of every
// other test here.
func TestRunSpillingEqualsInMemory(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	inputs := map[string]string{
		"mixed-1": mixedInput(1),
		"mixed-2": mixedInput(2),
		"bad-lines-and-a-conflict": strings.Join([]string{
			line("e3", t0.Add(3*time.Minute), "u-1"),
			`{"id": "truncated`,
			line("e1", t0.Add(1*time.Minute), "u-1"),
			"",
			line("e2", t0.Add(2*time.Minute), "u-2"),
			line("e1", t0.Add(9*time.Minute), "u-9"),
			line("e0", t0, "u-1"),
			`{"id":"x","time":"2026-03-02T09:00:00Z","org":"st-martins","system":"logmycare","action":"dance","actor":{"id":"u"}}`,
			strings.Repeat("x", 70<<10),
			line("e4", t0.Add(2*time.Minute), "u-3"),
		}, "\n"),
		"out-of-range-wins-no-key": strings.Join([]string{
			`{"id":"e1","time":"1970-01-01T00:00:00Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-old"}}`,
			line("e1", t0, "u-1"),
			line("e2", t0.Add(time.Hour), "u-2"),
		}, "\n"),
		"empty": "",
	}
	for name, in := range inputs {
		for _, o := range []Options{{Clock: farFuture, ConflictAlert: conflictAlert}, {Now: t0.Add(2 * time.Hour), ChunkSize: 7}} {
			seen, alerts, errs, st := run(t, in, o)
			if st.Runs != 0 {
				t.Fatalf("%s: the default budget spilled %d runs", name, st.Runs)
			}
			for _, b := range tinyBudgets {
				gotSeen, gotAlerts, gotErrs, gotSt := spilled(t, in, o, b.memory)
				if (b.memory == 1 && name != "empty" || strings.HasPrefix(name, "mixed")) && gotSt.Runs == 0 {
					t.Errorf("%s, %s: nothing spilled; the test would prove nothing", name, b.name)
				}
				gotSt.Runs = 0
				if gotSeen != seen || gotAlerts != alerts || gotErrs != errs || fmt.Sprint(gotSt) != fmt.Sprint(st) {
					t.Errorf("%s, %s: spilling changed the replay\nevaluated %s\n     want %s\nerrors:\n%s\nwant:\n%s\nalerts:\n%s\nwant:\n%s\nstats %+v, want %+v",
						name, b.name, gotSeen, seen, gotErrs, errs, gotAlerts, alerts, gotSt, st)
				}
			}
		}
	}
}

// TestRunFirstOccurrenceWinsAcrossRuns (issue 14, item 1): the occurrences
// of a key land in different spilled runs, the later ones first in event
// time; the first in input order is kept, a same-content repeat is a
// duplicate and other content a conflict reported with its own line.
func TestRunFirstOccurrenceWinsAcrossRuns(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var lines []string
	lines = append(lines, line("k", t0.Add(time.Hour), "u-first"))
	for i := range 150 {
		lines = append(lines, line(fmt.Sprintf("f%03d", i), t0.Add(time.Duration(i)*time.Second), "u-1"))
	}
	lines = append(lines, line("k", t0, "u-later"))                // line 152: earlier in event time
	lines = append(lines, line("k", t0.Add(time.Hour), "u-first")) // line 153: the same event again
	lines = append(lines, line("k", t0.Add(time.Hour), "u-third")) // line 154: other content again
	in := strings.Join(lines, "\n")
	for _, b := range tinyBudgets {
		seen, alerts, errs, st := spilled(t, in, Options{Clock: farFuture, ConflictAlert: conflictAlert}, b.memory)
		if st.Runs < 2 {
			t.Fatalf("%s: %d runs; the key must straddle runs", b.name, st.Runs)
		}
		if errs != "line 152: conflicting_duplicate: same org, system and id as a kept event; differs in time, actor.id\n"+
			"line 154: conflicting_duplicate: same org, system and id as a kept event; differs in actor.id\n" {
			t.Errorf("%s: errors:\n%s", b.name, errs)
		}
		if st.Events != 151 || st.Duplicates != 1 || st.Bad != 2 {
			t.Errorf("%s: stats %+v", b.name, st)
		}
		if !strings.HasSuffix(seen, ",k") || !strings.Contains(alerts, `"actor_id":"u-first"`) || strings.Contains(alerts, `"actor_id":"u-later"`) || strings.Contains(alerts, `"actor_id":"u-third"`) ||
			!strings.Contains(alerts, `"id":"conflict-k"`) {
			t.Errorf("%s: the later occurrence was kept: evaluated %s\n%s", b.name, seen, alerts)
		}
	}
}

// TestRunReportsBadLinesOfLaterRuns (issue 14, item 1): bad lines read
// after several runs were spilled, and out-of-range ones only judged at
// the merge, are reported with their own line numbers, in line order.
func TestRunReportsBadLinesOfLaterRuns(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var lines []string
	for i := range 300 {
		lines = append(lines, line(fmt.Sprintf("e%03d", i), t0.Add(time.Duration(i)*time.Minute), "u-1"))
	}
	lines[279] = `{"id": "truncated`
	lines[289] = `{"id":"old","time":"1970-01-01T00:00:00Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u"}}`
	lines[4] = `not json`
	want := "line 5: malformed: message is not a JSON object\n" +
		"line 280: malformed: "
	want2 := "line 290: event_time_out_of_range: time is more than max_age 9600h before the newest event in the input\n"
	for _, b := range tinyBudgets {
		_, _, errs, st := spilled(t, strings.Join(lines, "\n"), Options{Clock: farFuture}, b.memory)
		if st.Runs < 3 || !strings.HasPrefix(errs, want) || !strings.HasSuffix(errs, want2) || strings.Count(errs, "\n") != 3 {
			t.Errorf("%s (%d runs): errors:\n%s", b.name, st.Runs, errs)
		}
	}
}

// failing is an Evaluator that fails on its first chunk.
type failing struct{}

func (failing) Process([]event.Event) (store.Effects, error) {
	return store.Effects{}, errors.New("the checks failed")
}
func (failing) Flush() store.Effects { return store.Effects{} }

// TestRunRemovesSpilledRunsWhenItFails: interrupted while reading, or
// failed while judging, a replay leaves no run behind.
func TestRunRemovesSpilledRunsWhenItFails(t *testing.T) {
	in := mixedInput(3)
	for _, tc := range []struct {
		name string
		eval Evaluator
		stop string // the phase in which the replay is interrupted
	}{
		{"interrupted while reading", &recorder{}, PhaseReading},
		{"interrupted while merging", &recorder{}, PhaseMerging},
		{"evaluator fails", failing{}, ""},
	} {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		o := Options{Evaluator: tc.eval, Decoder: event.NewDecoder(event.DecoderOptions{}), Memory: 1, SpillDir: dir, Clock: farFuture,
			Progress: func(p Progress) {
				if p.Phase == tc.stop {
					cancel()
				}
			}}
		_, err := Run(ctx, strings.NewReader(in), &bytes.Buffer{}, o)
		cancel()
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		left, rerr := os.ReadDir(dir)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if len(left) != 0 {
			t.Errorf("%s (%v): left %d entries in the spill directory", tc.name, err, len(left))
		}
	}
}

// TestSorterDropsAndFetchesInPlace: the events' sorter tells where each
// record lies, in memory or in any of more runs than it keeps open at once
// (maxMarkFiles), written in the foreground or the background; fetch reads
// back exactly the record, and what drop marks is absent from the merge,
// which keeps the rest in order.
func TestSorterDropsAndFetchesInPlace(t *testing.T) {
	const n = 2*maxMarkFiles + 45
	for _, tc := range []struct {
		name       string
		budget     int64
		background bool
	}{{"in memory", 1 << 20, false}, {"one record a run", 1, false}, {"one record a run, in the background", 1, true}} {
		s := newSorter(byTime, tc.budget, &spillDir{parent: t.TempDir()})
		s.background = tc.background
		at := map[int64]place{}
		s.written = func(r *rec, p place) error { at[r.t] = p; return nil }
		body := func(i int64) []byte { return []byte(fmt.Sprintf("record %d", i)) }
		for _, i := range rand.New(rand.NewPCG(1, 1)).Perm(n) {
			if err := s.add(&rec{t: int64(i), hash: uint64(i), line: int32(i), b: body(int64(i))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.finish(); err != nil {
			t.Fatal(err)
		}
		if len(at) != n || (tc.budget == 1) != (s.spill.n == n) {
			t.Fatalf("%s: told of %d places, %d runs", tc.name, len(at), s.spill.n)
		}
		var buf []byte
		for i := range int64(n) {
			got, err := s.fetch(at[i], buf)
			if err != nil || !bytes.Equal(got, body(i)) {
				t.Fatalf("%s: record %d fetched as %q, %v", tc.name, i, got, err)
			}
			if i%3 == 0 {
				if err := s.drop(at[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		seq, err := s.sorted()
		if err != nil {
			t.Fatal(err)
		}
		want, count := int64(1), 0
		for {
			r, ok, err := seq.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if r.t != want || !bytes.Equal(r.b, body(want)) {
				t.Fatalf("%s: merged %d %q, want %d", tc.name, r.t, r.b, want)
			}
			if want++; want%3 == 0 {
				want++
			}
			count++
		}
		seq.close()
		if count != n-(n+2)/3 {
			t.Errorf("%s: %d records merged, want %d", tc.name, count, n-(n+2)/3)
		}
		s.closeMarks()
		if err := s.spill.remove(); err != nil {
			t.Fatal(err)
		}
	}
}
