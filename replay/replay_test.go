package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// recorder is an Evaluator that records what it is given and raises one
// alert per event, so the output shows order and deduplication.
type recorder struct {
	seen    []string
	flushed bool
}

func (r *recorder) Process(fresh []event.Event) (store.Effects, error) {
	var eff store.Effects
	for _, ev := range fresh {
		r.seen = append(r.seen, ev.ID)
		eff.Alerts = append(eff.Alerts, alert.Alert{ID: "a-" + ev.ID, Check: "test", Org: ev.Org, ActorID: ev.Actor.ID,
			FirstSeen: ev.Time, LastSeen: ev.Time, EventIDs: []string{ev.ID}})
	}
	return eff, nil
}

func (r *recorder) Flush() store.Effects { r.flushed = true; return store.Effects{} }

func line(id string, t time.Time, actor string) string {
	b, err := event.Encode(&event.Event{ID: id, Time: t, Org: "st-martins", System: "logmycare", Action: event.ActionLogin, Actor: event.Actor{ID: actor}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestRunSortsDeduplicatesAndReportsBadLines(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	in := strings.Join([]string{
		line("e3", t0.Add(3*time.Minute), "u-1"),
		`{"id": "truncated`,
		line("e1", t0.Add(1*time.Minute), "u-1"),
		"",
		line("e2", t0.Add(2*time.Minute), "u-2"),
		line("e1", t0.Add(9*time.Minute), "u-9"), // the same event id, other content: a conflict, the first kept
		line("e0", t0, "u-1"),
		`{"id":"x","time":"2026-03-02T09:00:00Z","org":"st-martins","system":"logmycare","action":"dance","actor":{"id":"u"}}`,
		strings.Repeat("x", 70<<10),
		line("e4", t0.Add(2*time.Minute), "u-3"), // a tie in time with e2: ordered by key
	}, "\n")
	var out, errs bytes.Buffer
	r := &recorder{}
	st, err := Run(context.Background(), strings.NewReader(in), &out, Options{Evaluator: r, Decoder: event.NewDecoder(event.DecoderOptions{}), Errors: &errs, ChunkSize: 2, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(r.seen, ","), "e0,e1,e2,e4,e3"; got != want && got != "e0,e1,e4,e2,e3" {
		t.Errorf("evaluated %s, want event-time order %s", got, want)
	}
	if !r.flushed {
		t.Error("the evaluator was not flushed at the end")
	}
	if st.Lines != 10 || st.Events != 5 || st.Duplicates != 0 || st.Bad != 4 || st.Alerts != 5 {
		t.Errorf("stats %+v", st)
	}
	wantErrs := "line 2: malformed: "
	if !strings.HasPrefix(errs.String(), wantErrs) || !strings.Contains(errs.String(), "line 8: unknown_action: ") || !strings.Contains(errs.String(), "line 9: too_large: ") {
		t.Errorf("errors:\n%s", errs.String())
	}
	// The first e1 (u-1) was kept, not the later one.
	var a alert.Alert
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		if a.ID == "a-e1" && a.ActorID != "u-1" {
			t.Errorf("duplicate kept the later event: %+v", a)
		}
	}
}

// TestRunIsIndependentOfInputOrder feeds the same events in many orders.
func TestRunIsIndependentOfInputOrder(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var lines []string
	for i := range 300 {
		// Many ties in time, so the key decides the order.
		lines = append(lines, line(fmt.Sprintf("e%03d", i), t0.Add(time.Duration(i/7)*time.Second), fmt.Sprintf("u-%d", i%5)))
	}
	var first string
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 5 {
		rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
		r := &recorder{}
		var out bytes.Buffer
		if _, err := Run(context.Background(), strings.NewReader(strings.Join(lines, "\n")), &out, Options{Evaluator: r, Decoder: event.NewDecoder(event.DecoderOptions{})}); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(r.seen, ",")
		if round == 0 {
			first = got
		} else if got != first {
			t.Fatalf("round %d evaluated in another order", round)
		}
	}
}

func TestKeyHashSeparatesParts(t *testing.T) {
	if keyHash(event.Key{Org: "ab", System: "c", ID: "d"}) == keyHash(event.Key{Org: "a", System: "bc", ID: "d"}) {
		t.Error("keys differing only in where parts split hash alike")
	}
}

func BenchmarkRead(b *testing.B) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	for i := range 100_000 {
		buf.WriteString(line(fmt.Sprintf("e%07d", i), t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("u-%d", i%500)))
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		st := Stats{BadReasons: map[string]int{}}
		spill := &spillDir{parent: b.TempDir()}
		events, bads := newSorter(byTime, DefaultMemory, spill), newSorter(byLine, DefaultMemory, spill)
		_, err := read(context.Background(), bytes.NewReader(data), Options{Decoder: event.NewDecoder(event.DecoderOptions{})}.withDefaults(), &st, events, bads)
		if err != nil || events.count != 100_000 {
			b.Fatal(err, events.count)
		}
	}
	b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestRunBoundsEventTimeAndReportsConflicts (issue 16, items 5 and 10): a
// replay refuses events outside the event-time window around its Now, and
// reports an event that reuses a kept id with other content, with the
// daemon's reasons and details; the conflict's alert is among the alerts,
// and a same-content repeat is a plain duplicate.
func TestRunBoundsEventTimeAndReportsConflicts(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	t0 := now.Add(-24 * time.Hour)
	in := strings.Join([]string{
		line("e1", t0, "u-1"),
		`{"id":"old","time":"0001-03-02T21:14:05Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-1"}}`,
		`{"id":"epoch","time":"1970-01-01T00:00:00Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-1"}}`,
		line("ahead", now.Add(time.Hour), "u-1"),
		line("e1", t0.Add(time.Hour), "u-9"), // another actor and time under e1's id
		strings.Replace(line("e1", t0, "u-1"), `"outcome":"success"`, `"outcome":"success","extra":1`, 1), // same meaning
	}, "\n")
	var out, errs bytes.Buffer
	r := &recorder{}
	st, err := Run(context.Background(), strings.NewReader(in), &out, Options{
		Evaluator: r, Decoder: event.NewDecoder(event.DecoderOptions{}), Errors: &errs, Now: now,
		ConflictAlert: func(c store.Conflict) alert.Alert {
			return alert.Alert{ID: "conflict-" + c.Event.ID, Check: "feed-integrity", FirstSeen: c.Kept.Time, EventIDs: []string{c.Event.ID}, Explanation: strings.Join(c.Fields, ",")}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErrs := `line 2: event_time_out_of_range: time is more than max_age 9600h before now
line 3: event_time_out_of_range: time is more than max_age 9600h before now
line 4: event_time_out_of_range: time is more than max_ahead 5m after now
line 5: conflicting_duplicate: same org, system and id as a kept event; differs in time, actor.id
`
	if errs.String() != wantErrs {
		t.Errorf("errors:\n%s\nwant:\n%s", errs.String(), wantErrs)
	}
	if got := strings.Join(r.seen, ","); got != "e1" {
		t.Errorf("evaluated %s, want only e1", got)
	}
	if st.Events != 1 || st.Duplicates != 1 || st.Bad != 4 || st.BadReasons["event_time_out_of_range"] != 3 || st.BadReasons["conflicting_duplicate"] != 1 || st.Alerts != 2 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(out.String(), `"id":"conflict-e1"`) || !strings.Contains(out.String(), `"explanation":"time,actor.id"`) {
		t.Errorf("alerts lack the conflict's:\n%s", out.String())
	}
}

// farFuture is a wall clock long after every fixed date in these tests.
func farFuture() time.Time { return time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC) }

// run replays in with o (its Evaluator a fresh recorder) and returns what
// was evaluated, the alerts, the bad-line report and the stats.
func run(t *testing.T, in string, o Options) (seen, alerts, errs string, st Stats) {
	t.Helper()
	r := &recorder{}
	var out, eb bytes.Buffer
	o.Evaluator, o.Decoder, o.Errors = r, event.NewDecoder(event.DecoderOptions{}), &eb
	st, err := Run(context.Background(), strings.NewReader(in), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	// Every event kept is judged once, and only those: a repeat, a
	// conflict or an event too old never reaches the checks.
	ids := map[string]bool{}
	for _, id := range r.seen {
		if ids[id] {
			t.Errorf("event %s judged twice", id)
		}
		ids[id] = true
	}
	if len(r.seen) != st.Events {
		t.Errorf("%d events judged, %d kept", len(r.seen), st.Events)
	}
	return strings.Join(r.seen, ","), out.String(), eb.String(), st
}

// TestRunDoesNotDependOnTheDayItRuns (issue 16, item 10): without --now, a
// replay measures max_age from the newest event time in its input, not from
// the wall clock, so a dataset scores the same whenever it is replayed; the
// wall clock still bounds how far ahead an event may be.
func TestRunDoesNotDependOnTheDayItRuns(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var lines []string
	for i := range 20 {
		lines = append(lines, line(fmt.Sprintf("e%02d", i), t0.Add(time.Duration(i)*time.Hour), fmt.Sprintf("u-%d", i%3)))
	}
	in := strings.Join(lines, "\n")
	seenToday, alertsToday, errsToday, stToday := run(t, in, Options{Clock: func() time.Time { return t0.Add(24 * time.Hour) }})
	if errsToday != "" || stToday.Events != 20 {
		t.Fatalf("replayed the day after its data: %+v\n%s", stToday, errsToday)
	}
	seen, alerts, errs, st := run(t, in, Options{Clock: farFuture})
	if errs != "" {
		t.Errorf("replayed in 2040, bad lines:\n%s", errs)
	}
	if seen != seenToday || alerts != alertsToday || st.Events != stToday.Events || st.Alerts != stToday.Alerts {
		t.Errorf("replayed in 2040: %d events, %d alerts; the day after its data: %d events, %d alerts", st.Events, st.Alerts, stToday.Events, stToday.Alerts)
	}
	// The future bound is the wall clock's, whenever the replay runs.
	_, _, errs, st = run(t, in, Options{Clock: func() time.Time { return t0.Add(10 * time.Hour) }})
	if st.Events != 11 || st.BadReasons["event_time_out_of_range"] != 9 || !strings.HasPrefix(errs, "line 12: event_time_out_of_range: time is more than max_ahead 5m after now\n") {
		t.Errorf("replayed with its clock at the 11th event: %+v\n%s", st, errs)
	}
}

// TestRunRefusesOutliersOfTheInputSpan (issue 16, item 10): a year-0001 and
// a 1970 line in a 2026 file are refused with their line numbers, in line
// order among the other bad lines, whatever the wall clock says.
func TestRunRefusesOutliersOfTheInputSpan(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	in := strings.Join([]string{
		line("e1", t0, "u-1"),
		`{"id":"old","time":"0001-03-02T21:14:05Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-1"}}`,
		`{"id": "truncated`,
		`{"id":"epoch","time":"1970-01-01T00:00:00Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-1"}}`,
		line("e2", t0.Add(-9000*time.Hour), "u-2"), // within max_age of the newest, e3
		line("e3", t0.Add(time.Hour), "u-3"),
	}, "\n")
	for _, clock := range []func() time.Time{func() time.Time { return t0.Add(2 * time.Hour) }, farFuture} {
		seen, _, errs, st := run(t, in, Options{Clock: clock})
		want := `line 2: event_time_out_of_range: time is more than max_age 9600h before the newest event in the input
line 3: malformed: `
		want2 := `line 4: event_time_out_of_range: time is more than max_age 9600h before the newest event in the input
`
		if !strings.HasPrefix(errs, want) || !strings.HasSuffix(errs, want2) || strings.Count(errs, "\n") != 3 {
			t.Errorf("clock %s, errors:\n%s", clock(), errs)
		}
		if seen != "e2,e1,e3" || st.Events != 3 || st.Bad != 3 || st.BadReasons["event_time_out_of_range"] != 2 {
			t.Errorf("clock %s: evaluated %s, stats %+v", clock(), seen, st)
		}
	}
}

// TestRunOutOfRangeEventWinsNoKey (issue 16, item 10): live, an event out of
// the window is dead-lettered before the store, so a later in-range event
// with its key is kept; a replay keeps the same one, though it can judge
// the first only once it has read the newest event.
func TestRunOutOfRangeEventWinsNoKey(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	in := strings.Join([]string{
		`{"id":"e1","time":"1970-01-01T00:00:00Z","org":"st-martins","system":"logmycare","action":"login","actor":{"id":"u-old"}}`,
		line("e1", t0, "u-1"),
		line("e2", t0.Add(time.Hour), "u-2"),
	}, "\n")
	seen, alerts, errs, st := run(t, in, Options{Clock: farFuture})
	if errs != "line 1: event_time_out_of_range: time is more than max_age 9600h before the newest event in the input\n" {
		t.Errorf("errors:\n%s", errs)
	}
	if seen != "e1,e2" || st.Events != 2 || st.Bad != 1 || st.BadReasons["conflicting_duplicate"] != 0 || !strings.Contains(alerts, `"actor_id":"u-1"`) {
		t.Errorf("evaluated %s, stats %+v, alerts:\n%s", seen, st, alerts)
	}
}
