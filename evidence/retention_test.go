package evidence_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// TestRetentionSection: the pack states each org's retention per class,
// where the period comes from, the oldest data held, the last run and what
// retention deleted in the period — in evidence.json, retention.csv and the
// HTML report alike (issue 16, item 15).
func TestRetentionSection(t *testing.T) {
	cfg := loadConfig(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "r.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	day := 24 * time.Hour
	// The run happens inside the period (2026-03-16 … 29): on the 20th,
	// with a 400-day events period, the two events of early 2025 go.
	run := time.Date(2026, 3, 20, 3, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i, t0 := range []time.Time{run.Add(-500 * day), run.Add(-401 * day), run.Add(-399 * day), run.Add(-day)} {
		evs = append(evs, event.Event{ID: "e" + string(rune('0'+i)), Time: t0, Org: "st-martins", System: "logmycare",
			Action: event.ActionView, Actor: event.Actor{ID: "u-1"}, Subject: event.Subject{ID: "c-1"}, Outcome: event.OutcomeSuccess})
	}
	if _, err := st.Apply(ctx, evs, nil, nil); err != nil {
		t.Fatal(err)
	}
	res, err := st.Retain(ctx, store.RetentionPolicy{Default: store.RetentionPeriods{store.RetainEvents: 400 * day}}, run)
	if err != nil || res.Total(store.RetainEvents) != 2 {
		t.Fatalf("Retain: %+v, %v; want 2 events deleted", res, err)
	}

	dir, _ := export(t, cfg, st, "st-martins-webster-court", false)
	r := readReport(t, dir)
	if !r.Retention.Available || r.Retention.LastRun != "2026-03-20T03:00:00Z" {
		t.Errorf("retention: available %v, last run %q; want true, 2026-03-20T03:00:00Z", r.Retention.Available, r.Retention.LastRun)
	}
	wantCSV := `org,class,days,source,oldest_held,deleted_in_period,last_run
st-martins,events,400,config store.retention.default.events_days,2025-02-14T03:00:00Z,2,2026-03-20T03:00:00Z
st-martins,check_state,30,config store.retention.default.check_state_days,,0,2026-03-20T03:00:00Z
st-martins,view_logs,400,config store.retention.default.view_logs_days,,0,2026-03-20T03:00:00Z
st-martins,alerts,2190,config store.retention.default.alerts_days,,0,2026-03-20T03:00:00Z
`
	b, err := os.ReadFile(filepath.Join(dir, "retention.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(b), "\r\n", "\n"); got != wantCSV {
		t.Errorf("retention.csv:\n%s\nwant\n%s", got, wantCSV)
	}

	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, html)
	var want [][]string
	for _, c := range r.Retention.Classes {
		kept := "kept"
		if c.Days > 0 {
			kept = itoa(int64(c.Days)) + " days"
		}
		oldest := "nothing held"
		if c.Oldest != "" {
			oldest = zoneTime(t, r.Period.Timezone, c.Oldest) // UK local time, as the whole report
		}
		want = append(want, []string{c.Org, c.Class, kept, c.Source, oldest, itoa(c.Deleted)})
	}
	equalRows(t, "retention", doc.table(t, "Retention of the monitor's data", 1)[0].rows, want)
	if ps := doc.paras["Retention of the monitor's data"]; len(ps) == 0 || !strings.Contains(ps[0], "Last run: 20 Mar 2026, 03:00 GMT.") {
		t.Errorf("retention paragraph %q lacks the last run", ps)
	}
	pdf, err := os.ReadFile(filepath.Join(dir, "report.pdf"))
	if err != nil || len(pdf) == 0 {
		t.Fatalf("report.pdf: %v", err)
	}
}
