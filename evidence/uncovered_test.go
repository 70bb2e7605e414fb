package evidence_test

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// formulaSystem is a system name a hostile producer might send: a
// spreadsheet would run it as a formula if a CSV cell began with it.
const formulaSystem = "=cmd|' /C calc'!A0"

// gappyEvents are st-martins' accesses over 2–11 March 2026 (London, GMT):
// logmycare logs on every day but 4–6 March, formulaSystem on 2–5 and 9
// March, so the org as a whole has no data on 6 March.
func gappyEvents() []event.Event {
	loc, _ := time.LoadLocation("Europe/London")
	days := map[string][]int{"logmycare": {0, 1, 5, 6, 7, 8, 9}, formulaSystem: {0, 1, 2, 3, 7}}
	var out []event.Event
	for system, ds := range days {
		for _, d := range ds {
			out = append(out, event.Event{ID: system + "-" + strconv.Itoa(d), Time: time.Date(2026, 3, 2+d, 10, 0, 0, 0, loc), Org: "st-martins",
				System: system, Action: event.ActionView, Actor: event.Actor{ID: "u-1", Team: "webster-court"},
				Subject: event.Subject{ID: "c-1"}, Record: event.Record{Type: "care-plan", ID: "cp-1"}, Outcome: event.OutcomeSuccess})
		}
	}
	return out
}

// TestUncoveredRanges: per org, the pack states the ranges of days its data
// does not cover — runs of days without data (whole org, then each system)
// up to the feed's completeness point, and every day from it on — the same
// in evidence.json, coverage_ranges.csv (formulas neutralised), report.html
// and report.pdf, on both stores.
func TestUncoveredRanges(t *testing.T) {
	cfg := loadConfig(t)
	noData := func(from, to string, days int, system string) evidence.DateRange {
		d := "no data"
		if system != "" {
			d = "no data from " + system
		}
		return evidence.DateRange{From: from, To: to, Days: days, System: system, Reason: evidence.UncoveredNoData, Detail: d}
	}
	incomplete := func(from string, days int, detail string) evidence.DateRange {
		return evidence.DateRange{From: from, To: "2026-03-11", Days: days, Reason: evidence.UncoveredFeedIncomplete, Detail: detail}
	}
	before := []evidence.DateRange{noData("2026-03-04", "2026-03-06", 3, "logmycare"), noData("2026-03-06", "2026-03-06", 1, ""),
		noData("2026-03-06", "2026-03-06", 1, formulaSystem)}
	cases := []struct {
		name     string
		complete string // RFC 3339; "" none recorded
		wantUpTo string
		want     []evidence.DateRange
	}{
		{name: "complete past the period", complete: "2026-03-12T00:00:00Z", wantUpTo: "2026-03-12T00:00:00Z",
			want: []evidence.DateRange{noData("2026-03-04", "2026-03-06", 3, "logmycare"), noData("2026-03-06", "2026-03-06", 1, ""),
				noData("2026-03-06", "2026-03-08", 3, formulaSystem), noData("2026-03-10", "2026-03-11", 2, formulaSystem)}},
		{name: "complete inside a day", complete: "2026-03-07T15:30:00.5Z", wantUpTo: "2026-03-07T15:30:00Z",
			want: append(before[:3:3], incomplete("2026-03-07", 5, "feed not complete after 2026-03-07T15:30:00Z"))},
		{name: "complete at a day's end", complete: "2026-03-07T00:00:00Z", wantUpTo: "2026-03-07T00:00:00Z",
			want: append(before[:3:3], incomplete("2026-03-07", 5, "feed not complete after 2026-03-07T00:00:00Z"))},
		{name: "complete before the period", complete: "2026-02-01T00:00:00Z", wantUpTo: "2026-02-01T00:00:00Z",
			want: []evidence.DateRange{incomplete("2026-03-02", 10, "feed not complete after 2026-02-01T00:00:00Z")}},
		{name: "none recorded", want: []evidence.DateRange{incomplete("2026-03-02", 10, "feed not complete for any period")}},
	}
	type opened struct {
		src   evidence.Source
		apply applier
	}
	stores := []struct {
		name string
		open func(t *testing.T) opened
	}{
		{"embedded", func(t *testing.T) opened {
			st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db"), Synchronous: "normal"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return opened{st, st}
		}},
		{"clickhouse", func(t *testing.T) opened {
			ch, _ := openClickHouse(t, chtest.Shared(t), nil)
			return opened{ch, ch}
		}},
	}
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ctx := context.Background()
					st := sc.open(t)
					var state []store.StateEntry
					if c.complete != "" {
						at, err := time.Parse(time.RFC3339Nano, c.complete)
						if err != nil {
							t.Fatal(err)
						}
						state = append(state, store.CompletenessEntry("st-martins", at))
					}
					if _, err := st.apply.Apply(ctx, gappyEvents(), nil, func([]event.Event) (store.Effects, error) { return store.Effects{State: state}, nil }); err != nil {
						t.Fatal(err)
					}
					dir := filepath.Join(t.TempDir(), "pack")
					if _, err := evidence.Export(ctx, evidence.ExportOptions{
						Options: evidence.Options{Config: cfg, DPIA: "st-martins-webster-court", From: "2026-03-02", To: "2026-03-11", Source: st.src},
						Dir:     dir, Key: testKey(t), Now: fixedNow,
					}); err != nil {
						t.Fatal(err)
					}
					r := readReport(t, dir)
					want := []evidence.OrgCoverage{{Org: "st-martins", CompleteUpTo: c.wantUpTo, Uncovered: c.want}}
					if !r.Coverage.CompletenessRecorded || !reflect.DeepEqual(r.Coverage.Orgs, want) {
						t.Fatalf("coverage orgs (recorded %v):\n got %+v\nwant %+v", r.Coverage.CompletenessRecorded, r.Coverage.Orgs, want)
					}
					checkRangeFiles(t, dir, c.want)
				})
			}
		})
	}
}

// checkRangeFiles checks coverage_ranges.csv, report.html and report.pdf
// against the ranges of evidence.json.
func checkRangeFiles(t *testing.T, dir string, want []evidence.DateRange) {
	t.Helper()
	rows := readCSV(t, filepath.Join(dir, "coverage_ranges.csv"))
	wantCSV := [][]string{{"org", "from", "to", "days", "system", "reason", "detail"}}
	var wantHTML, wantPDF [][]string
	tz := readReport(t, dir).Period.Timezone
	for _, r := range want {
		sys := r.System
		if strings.HasPrefix(sys, "=") {
			sys = "'" + sys // a cell that begins with = is neutralised; the detail that merely holds it is not
		}
		wantCSV = append(wantCSV, []string{"st-martins", r.From, r.To, strconv.Itoa(r.Days), sys, r.Reason, r.Detail})
		why := r.Detail
		if at, ok := strings.CutPrefix(why, "feed not complete after "); ok {
			why = "feed not complete after " + zoneTime(t, tz, at) // the reports give times in the DPIA's timezone
		}
		wantHTML = append(wantHTML, []string{"st-martins", ukDays(r.From, r.To), strconv.Itoa(r.Days), why})
		wantPDF = append(wantPDF, []string{"st-martins", ukDays(r.From, r.To), strconv.Itoa(r.Days), why})
	}
	if !reflect.DeepEqual(rows, wantCSV) {
		t.Errorf("coverage_ranges.csv:\n got %q\nwant %q", rows, wantCSV)
	}
	if systems := readCSV(t, filepath.Join(dir, "coverage_systems.csv")); len(systems) != 3 || systems[1][1] != "'"+formulaSystem {
		t.Errorf("coverage_systems.csv does not neutralise a formula system name: %q", systems)
	}

	b, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, b)
	equalRows(t, "data not covered", doc.table(t, "Data not covered", 1)[0].rows, wantHTML)

	txt, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftotext is missing: run scripts/install-poppler")
		}
		return
	}
	out, err := exec.Command(txt, filepath.Join(dir, "report.pdf"), "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := strings.Join(strings.Fields(string(out)), " ")
	for _, row := range wantPDF {
		if w := strings.Join(row, " "); !strings.Contains(text, w) {
			t.Errorf("report.pdf lacks the row %q:\n%s", w, text)
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}
