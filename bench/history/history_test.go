package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/bench/history"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

// TestFill fills a week (Monday to Sunday) at a small volume into chDB
// and checks what the evidence export and backtest will rely on: the
// events are the store's own (ScanEvents decodes every one, in the
// period, of the org), the volumes follow the weekday pattern, office
// hours dominate, the roster and caseloads bound actors and subjects, and
// the alerts and their triage read back through the store's own queries.
func TestFill(t *testing.T) {
	srv := chtest.Shared(t)
	ctx := context.Background()
	const db = "dpiawatch_test_history_fill"
	conn := srv.Open(t, "")
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	st, err := clickhouse.Open(ctx, clickhouse.Options{Conn: conn, Schema: clickhouse.Schema{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 23, 0, 0, 0, 0, loc) // a Monday; BST starts on Sunday 29th
	var days []history.Day
	res, err := history.Fill(ctx, conn, history.Options{
		Database: db, Location: loc, From: from, Days: 7, EventsPerDay: 5_450, Staff: 500, Subjects: 4_000,
		EventsPerAlert: 100, Progress: func(d history.Day) { days = append(days, d) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// A weekday holds 7/5.45 of the mean: 7,000; Saturday 1,750, Sunday 1,400.
	want := []int64{7000, 7000, 7000, 7000, 7000, 1750, 1400}
	if len(days) != len(want) {
		t.Fatalf("%d days reported, want %d", len(days), len(want))
	}
	var total int64
	for i, d := range days {
		if d.Events != want[i] {
			t.Errorf("%s: %d events, want %d", d.Date.Format("Mon 2 Jan"), d.Events, want[i])
		}
		total += d.Events
	}
	if res.Events != total || res.Alerts != total/100 {
		t.Errorf("result %+v, want %d events and %d alerts", res, total, total/100)
	}
	if res.Triaged < res.Alerts*8/10 || res.Triaged >= res.Alerts {
		t.Errorf("%d of %d alerts triaged, want about nine in ten", res.Triaged, res.Alerts)
	}

	end := from.AddDate(0, 0, 7)
	var (
		n, office int64
		actors    = map[string]bool{}
		subjects  = map[string]bool{}
		perDay    = map[string]int64{}
	)
	if err := st.ScanEvents(ctx, store.EventFilter{Org: "wiltshire-council", From: from, To: end}, func(e event.Event) error {
		n++
		if h := e.Time.In(loc).Hour(); h >= 8 && h < 18 {
			office++
		}
		if e.Actor.Team == "" || e.Actor.Role == "" || e.Subject.ID == "" || e.Action == "" {
			t.Fatalf("event %s lacks actor, team, role, subject or action: %+v", e.ID, e)
		}
		actors[e.Actor.ID], subjects[e.Subject.ID] = true, true
		perDay[e.Time.In(loc).Format(time.DateOnly)]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != total {
		t.Fatalf("ScanEvents read %d events, %d were filled", n, total)
	}
	for i, w := range want {
		if d := from.AddDate(0, 0, i).Format(time.DateOnly); perDay[d] != w {
			t.Errorf("%s holds %d events by local time, want %d (the day's events stay within its local bounds)", d, perDay[d], w)
		}
	}
	if office*10 < n*8 {
		t.Errorf("%d of %d events in office hours, want at least 80%%", office, n)
	}
	if len(actors) > 500 || len(actors) < 250 || len(subjects) > 4_000 {
		t.Errorf("%d actors (roster 500), %d subjects (4,000)", len(actors), len(subjects))
	}

	// A second fill continuing from the next Monday writes rows of its own:
	// ids are keyed by date, not by the day's place in its fill.
	more, err := history.Fill(ctx, conn, history.Options{
		Database: db, Location: loc, From: end, Days: 2, EventsPerDay: 5_450, Staff: 500, Subjects: 4_000, EventsPerAlert: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids, keyed uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(id), uniqExact(org, system, id, t) FROM "+db+".events").Scan(&ids, &keyed); err != nil {
		t.Fatal(err)
	}
	if int64(ids) != total+more.Events || ids != keyed {
		t.Errorf("%d distinct event ids and %d distinct keys for %d events filled", ids, keyed, total+more.Events)
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(id) FROM "+db+".alerts").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if int64(ids) != res.Alerts+more.Alerts {
		t.Errorf("%d distinct alert ids for %d alerts filled", ids, res.Alerts+more.Alerts)
	}

	alerts, err := st.Alerts(ctx, store.AlertFilter{Org: "wiltshire-council", Since: from})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(alerts)) != res.Alerts+more.Alerts {
		t.Fatalf("the store lists %d alerts, %d were filled", len(alerts), res.Alerts+more.Alerts)
	}
	for _, a := range alerts {
		if !a.FirstSeen.Before(end) {
			continue // the second fill's
		}
		if a.FirstSeen.Before(from) || !a.FirstSeen.Before(end) || a.LastSeen.Before(a.FirstSeen) || a.DPIA != "wiltshire-childrens-cms" ||
			len(a.Risks) == 0 || a.Severity == alert.Severity("") || a.EventCount < 1 {
			t.Fatalf("alert not as filled: %+v", a)
		}
	}
}
