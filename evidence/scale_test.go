package evidence_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

// countingConn counts the rows each query returns to Go: the evidence
// export's promise is that this grows with days × systems × checks, never
// with events.
type countingConn struct {
	driver.Conn
	mu      sync.Mutex
	queries []*countedQuery
}

type countedQuery struct {
	sql  string
	rows int
}

func (c *countingConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	rows, err := c.Conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	cq := &countedQuery{sql: q}
	c.mu.Lock()
	c.queries = append(c.queries, cq)
	c.mu.Unlock()
	return &countingRows{Rows: rows, q: cq}, nil
}

func (c *countingConn) QueryRow(ctx context.Context, q string, args ...any) driver.Row {
	c.mu.Lock()
	c.queries = append(c.queries, &countedQuery{sql: q, rows: 1})
	c.mu.Unlock()
	return c.Conn.QueryRow(ctx, q, args...)
}

func (c *countingConn) Select(context.Context, any, string, ...any) error {
	panic("countingConn: Select is not counted; the store does not use it")
}

// reset forgets what was counted and returns it.
func (c *countingConn) reset() []*countedQuery {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queries
	c.queries = nil
	return q
}

type countingRows struct {
	driver.Rows
	q *countedQuery
}

func (r *countingRows) Next() bool {
	ok := r.Rows.Next()
	if ok {
		r.q.rows++
	}
	return ok
}

// The synthetic quarter: the Wiltshire DPIA's org, three systems, 2,000
// staff, spread evenly over the period and the one before (2 × 90 days).
const (
	scaleFrom    = "2026-01-01"
	scaleTo      = "2026-03-31"
	scaleDays    = 90
	scaleSystems = 3
	scaleOrg     = "wiltshire-council"
	scaleDPIA    = "wiltshire-childrens-cms"
)

// scaleBounds are the previous period's first local midnight and the
// period's last one (both in summer time).
func scaleBounds(tb testing.TB) (lo, hi time.Time) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		tb.Fatal(err)
	}
	return time.Date(2025, 10, 3, 0, 0, 0, 0, loc), time.Date(2026, 4, 1, 0, 0, 0, 0, loc)
}

// loadSynthetic inserts n events (ids prefixed by tag) spread over both
// periods, and alerts alerts with triage decisions, all inside ClickHouse
// (INSERT … SELECT from numbers()): the events never pass through Go.
// confirmEvery > 0 confirms one alert in confirmEvery as misuse.
func loadSynthetic(ctx context.Context, tb testing.TB, conn driver.Conn, db, tag string, n, alerts, seqBase, confirmEvery int) {
	tb.Helper()
	first, end := scaleBounds(tb)
	lo := first.UnixNano()
	span := end.UnixNano() - lo
	step := span / int64(n)
	phase := step / 2 // a second load falls between the first one's events
	if tag == "a" {
		phase = 0
	}
	ns := func(expr string) string {
		return "fromUnixTimestamp64Nano(toInt64(" + expr + "), 'UTC')"
	}
	stmts := []string{
		`INSERT INTO ` + db + `.events (org, system, id, t, action, actor, actor_role, actor_team, actor_org, subject, outcome, batch)
SELECT '` + scaleOrg + `', ['mosaic', 'eclipse', 'liquidlogic'][number % ` + strconv.Itoa(scaleSystems) + ` + 1],
	concat('syn-` + tag + `-', toString(number)), ` + ns(fmt.Sprintf("%d + %d + number * %d", lo, phase, step)) + `,
	'view', concat('u-', toString(number % 2000)), 'social-worker', concat('team-', toString(number % 40)), '` + scaleOrg + `',
	concat('c-', toString(number % 100000)), 'success', 'synthetic'
FROM numbers(` + strconv.Itoa(n) + `)`,
		`INSERT INTO ` + db + `.alerts (id, org, check_name, pattern, severity, dpia, actor, subject, first_seen, last_seen, version, change_seq, updated_at, batch, body)
SELECT id, '` + scaleOrg + `', chk, pat, sev, '` + scaleDPIA + `', actor, 'c-1', first, first, 1, number, now64(3), 'synthetic',
	concat('{"id":"', id, '","check":"', chk, '","pattern":"', pat, '","severity":"', sev, '","org":"` + scaleOrg + `","actor_id":"', actor,
		'","subject_id":"c-1","dpia":"` + scaleDPIA + `","risks":["R1","R4"],"event_count":3}')
FROM (SELECT number, concat('al-` + tag + `-', toString(number)) AS id,
	['out-of-hours', 'no-business-need', 'shared-credential'][number % 3 + 1] AS chk, ['night', 'weekend'][number % 2 + 1] AS pat,
	['low', 'medium', 'high'][intDiv(number, 6) % 3 + 1] AS sev, concat('u-', toString(number % 2000)) AS actor,
	` + ns(fmt.Sprintf("%d + number * %d", lo, span/int64(alerts))) + ` AS first
	FROM numbers(` + strconv.Itoa(alerts) + `))`,
		// Three in four alerts triaged, some within the hour, some days later.
		`INSERT INTO ` + db + `.audit (seq, at, org, actor, action, object, kind, outcome, source)
SELECT ` + strconv.Itoa(seqBase) + ` + number, ` + ns(fmt.Sprintf("%d + number * %d + (number %% 5) * 40000000000000", lo, span/int64(alerts))) + `,
	'` + scaleOrg + `', 'ig-1', concat('triage.', oc), concat('al-` + tag + `-', toString(number)), 'triage', oc, 'api'
FROM (SELECT number, if(` + strconv.Itoa(confirmEvery) + ` > 0 AND number % ` + strconv.Itoa(max(confirmEvery, 1)) + ` = 0, 'confirmed-misuse',
	['false-positive', 'explained', 'acknowledged'][number % 3 + 1]) AS oc FROM numbers(` + strconv.Itoa(alerts) + `) WHERE number % 4 != 3)`,
	}
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("load synthetic data: %v\n%s", err, s)
		}
	}
}

// TestClickHouseEvidenceScale proves the shape of a ClickHouse export: the
// rows each query returns to Go do not grow with events (nor with alerts
// beyond the confirmed ones, which are listed), and are bounded by days ×
// systems for coverage and by the grouping keys for alerts and triage.
// Five times the events and alerts give exactly the same rows to Go.
func TestClickHouseEvidenceScale(t *testing.T) {
	srv := chtest.Shared(t)
	cfg := loadConfig(t)
	ctx := context.Background()
	var counter *countingConn
	ch, db := openClickHouse(t, srv, func(c driver.Conn) driver.Conn { counter = &countingConn{Conn: c}; return counter })
	raw := srv.Open(t, "")

	build := func() (*evidence.Report, []*countedQuery) {
		counter.reset()
		r, err := evidence.Build(ctx, evidence.Options{Config: cfg, DPIA: scaleDPIA, From: scaleFrom, To: scaleTo, Source: ch})
		if err != nil {
			t.Fatal(err)
		}
		return r, counter.reset()
	}
	const events, alerts, confirmEvery = 60_000, 600, 50
	loadSynthetic(ctx, t, raw, db, "a", events, alerts, 1, confirmEvery)
	small, qs := build()
	loadSynthetic(ctx, t, raw, db, "b", 4*events, 4*alerts, 1_000_000, 0) // no more confirmed misuse
	large, ql := build()

	if got := small.Coverage.Events + small.Coverage.Previous.Events; got != events {
		t.Fatalf("the report examined %d events, %d were loaded", got, events)
	}
	if got := large.Coverage.Events + large.Coverage.Previous.Events; got != 5*events {
		t.Fatalf("the report examined %d events, %d were loaded", got, 5*events)
	}
	if large.Alerts.Total+large.Alerts.Previous != 5*alerts || len(large.Confirmed) == 0 {
		t.Fatalf("alerts %d+%d, confirmed %d; want %d alerts and some confirmed", large.Alerts.Total, large.Alerts.Previous, len(large.Confirmed), 5*alerts)
	}
	if len(qs) != len(ql) {
		t.Fatalf("%d queries, then %d", len(qs), len(ql))
	}
	var total int
	for i := range ql {
		s, l := qs[i], ql[i]
		total += l.rows
		if s.rows != l.rows {
			t.Errorf("query %d returned %d rows over %d events, %d over %d: it grows with the data\n%s", i, s.rows, events, l.rows, 5*events, l.sql)
		}
		// Coverage: one row per day and system, and one per day (its
		// distinct actors), at most; anything else is grouped by org,
		// check, pattern, severity, risks (and outcome): 3 × 2 × 3 × 5
		// here, or lists confirmed misuse.
		bound := scaleDays * (scaleSystems + 1)
		if strings.Contains(l.sql, "confirmed-misuse") {
			bound = len(small.Confirmed)
		}
		if l.rows > bound {
			t.Errorf("query %d returned %d rows, more than %d\n%s", i, l.rows, bound, l.sql)
		}
	}
	// The events are read once per period with coverage (this one and the
	// one before): a county's year is hundreds of millions of rows, and
	// each read with FINAL costs three plain ones.
	var scans int
	for _, q := range ql {
		if strings.Contains(q.sql, ".events FINAL") {
			scans++
		}
	}
	if scans != 2 {
		t.Errorf("the events were read %d times for two periods, want once each", scans)
	}
	t.Logf("%d queries returned %d rows in all for %d events and %d alerts", len(ql), total, 5*events, 5*alerts)
	if total*100 > 5*events {
		t.Errorf("%d rows reached Go for %d events", total, 5*events)
	}
}

// BenchmarkClickHouseEvidenceExport loads a synthetic quarter and the one
// before into ClickHouse (DPIAWATCH_BENCH_EVENTS events, default 2,000,000,
// by INSERT … SELECT), then times whole exports (every query, the HTML,
// the PDF, the signed manifest). It reports events examined per second and
// the peak resident memory of this process and of the chDB engine.
//
//	go test ./evidence -run '^$' -bench ClickHouseEvidenceExport -benchtime 3x
func BenchmarkClickHouseEvidenceExport(b *testing.B) {
	n := 2_000_000
	if v := os.Getenv("DPIAWATCH_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	srv := chtest.Shared(b)
	cfg := loadConfig(b)
	ctx := context.Background()
	ch, db := openClickHouse(b, srv, nil)
	start := time.Now()
	loadSynthetic(ctx, b, srv.Open(b, ""), db, "a", n, 20_000, 1, 200)
	b.Logf("loaded %d events and 20,000 alerts in %s", n, time.Since(start).Round(time.Millisecond))

	b.ResetTimer()
	for b.Loop() {
		if _, err := evidence.Export(ctx, evidence.ExportOptions{
			Options: evidence.Options{Config: cfg, DPIA: scaleDPIA, From: scaleFrom, To: scaleTo, Source: ch},
			Dir:     filepath.Join(b.TempDir(), "pack"), Key: testKey(b), Store: "clickhouse",
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(peakRSS(os.Getpid())), "go-peak-rss-KiB")
	if pid := childPID(); pid > 0 {
		b.ReportMetric(float64(peakRSS(pid)), "chdb-peak-rss-KiB")
	}
}

// peakRSS is a process's high-water resident set (VmHWM), in KiB; 0 when
// unknown.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// childPID finds the chDB front this process started (its only child).
func childPID() int {
	entries, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so cut at the last ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == me {
				return pid
			}
		}
	}
	return 0
}
