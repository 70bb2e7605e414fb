package evidence_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/triage"
)

// openClickHouse opens a ClickHouse store in a database of the test's own,
// emptied first (a test run again with -count starts afresh). wrap, when
// set, stands between the store and the engine.
func openClickHouse(t testing.TB, srv *chtest.Server, wrap func(driver.Conn) driver.Conn) (*clickhouse.Store, string) {
	t.Helper()
	h := sha256.Sum256([]byte(t.Name()))
	db := "dpiawatch_test_" + hex.EncodeToString(h[:8])
	conn := srv.Open(t, "")
	if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	var c driver.Conn = conn
	if wrap != nil {
		c = wrap(conn)
	}
	ch, err := clickhouse.Open(context.Background(), clickhouse.Options{Conn: c, Schema: clickhouse.Schema{Database: db}})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch, db
}

// TestClickHouseEvidenceAgreesWithEmbedded stores the same simulated
// fortnight and the same triage decisions in the embedded store and in
// ClickHouse (chDB, or the server at CLICKHOUSE_ADDR), and checks that the
// two reports are the same but for late data, which only ClickHouse
// records: events per day and system, active staff per day, alerts by
// check, pattern, severity and risk, triage outcomes, time to triage,
// confirmed misuse and the observed likelihood, for the period and the one
// before. An export with identities is recorded in ClickHouse's audit
// trail.
func TestClickHouseEvidenceAgreesWithEmbedded(t *testing.T) {
	srv := chtest.Shared(t)
	cfg := loadConfig(t)
	c := orgCases[0]
	ctx := context.Background()

	ch, _ := openClickHouse(t, srv, nil)
	sq, err := sqlite.Open(ctx, sqlite.Options{Path: t.TempDir() + "/s.db", Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sq.Close() })

	sim := simulateOrg(t, c)
	ingest(t, cfg, sim, sq)
	ingest(t, cfg, sim, ch)
	as, err := sq.Alerts(ctx, store.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ds := decisions(as, sim)
	// Two decisions at the same instant: the later write is the status, in
	// both stores.
	tie := ds[len(ds)-1]
	tie.Outcome, tie.Note = triage.Explained, "second thoughts"
	ds = append(ds, tie)
	addTriages(t, sq, ds)
	addTriages(t, ch, ds)

	loc, _ := time.LoadLocation("Europe/London")
	days := make([]time.Time, 29)
	for i := range days {
		days[i] = time.Date(2026, 3, 2+i, 0, 0, 0, 0, loc) // across the change to summer time on 29 March
	}
	q := evidencequery.CoverageQuery{Org: c.org, Days: days, Location: loc, LateAfter: time.Hour}
	want, err := sq.EvidenceCoverage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ch.EvidenceCoverage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if want.LateRecorded || !got.LateRecorded {
		t.Errorf("late recorded: embedded %v, clickhouse %v", want.LateRecorded, got.LateRecorded)
	}
	var events int64
	for i, d := range got.Days {
		// Stored today, months after March: every event is late.
		if d.Late != d.Events {
			t.Errorf("day %d %s: %d late of %d events stored months later", d.Day, d.System, d.Late, d.Events)
		}
		got.Days[i].Late = 0
		events += d.Events
	}
	if events != int64(len(sim.events)) {
		t.Errorf("clickhouse counted %d events, %d were stored", events, len(sim.events))
	}
	if !reflect.DeepEqual(want.Days, got.Days) || !reflect.DeepEqual(want.Actors, got.Actors) {
		t.Errorf("coverage differs:\nembedded   %+v %v\nclickhouse %+v %v", want.Days, want.Actors, got.Days, got.Actors)
	}

	// The whole reports, late data aside.
	build := func(src evidence.Source) *evidence.Report {
		r, err := evidence.Build(ctx, evidence.Options{Config: cfg, DPIA: c.dpia, From: periodFrom, To: periodTo, Source: src, Pseudonym: pseudonym})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rs, rc := build(sq), build(ch)
	if rs.Alerts.Total == 0 || len(rs.Confirmed) == 0 || rs.Triage.Time.Triaged == 0 || rs.Triage.Time.Later == 0 {
		t.Fatalf("the fixture lacks alerts, triage or confirmed misuse to compare: %+v", rs.Triage)
	}
	if len(rs.Actions.Items) == 0 || rs.Actions.Overdue == 0 || rs.Actions.Done == 0 {
		t.Fatalf("the fixture lacks actions (open, overdue and done) to compare: %+v", rs.Actions)
	}
	if !rc.Triage.Available || !rc.Coverage.LateDataRecorded {
		t.Errorf("clickhouse report: triage available %v, late data recorded %v", rc.Triage.Available, rc.Coverage.LateDataRecorded)
	}
	// Routine audits are compared when both stores record them; a store
	// that does not must say so rather than report zero.
	if !rc.Routine.Available {
		if len(rc.Routine.Orgs) > 0 || !strings.Contains(rc.Routine.Note, "No routine-audit data") {
			t.Errorf("clickhouse report without routine audits: %+v", rc.Routine)
		}
		rc.Routine = rs.Routine
	}
	cs, cc := &rs.Coverage, &rc.Coverage
	cc.LateDataRecorded, cc.LateEvents, cc.DaysWithLateData = cs.LateDataRecorded, cs.LateEvents, cs.DaysWithLateData
	for i := range cc.Days {
		cc.Days[i].Late = 0
	}
	for _, part := range []struct {
		name   string
		sq, ch any
	}{
		{"coverage", rs.Coverage, rc.Coverage},
		{"alerts", rs.Alerts, rc.Alerts},
		{"triage", rs.Triage, rc.Triage},
		{"confirmed misuse", rs.Confirmed, rc.Confirmed},
		{"actions", rs.Actions, rc.Actions},
		{"risks", rs.Risks, rc.Risks},
		{"routine audits", rs.Routine, rc.Routine},
	} {
		if !reflect.DeepEqual(part.sq, part.ch) {
			t.Errorf("%s differ:\nembedded   %+v\nclickhouse %+v", part.name, part.sq, part.ch)
		}
	}
	if !reflect.DeepEqual(rs, rc) {
		t.Error("the reports differ outside the parts compared above")
	}

	// --identities is recorded in ClickHouse's audit trail before anything
	// is read, and in the manifest.
	dir := filepath.Join(t.TempDir(), "pack")
	m, err := evidence.Export(ctx, evidence.ExportOptions{
		Options: evidence.Options{Config: cfg, DPIA: c.dpia, From: periodFrom, To: periodTo, Source: ch, Identities: true},
		Dir:     dir, Key: testKey(t), Store: "clickhouse", RequestedBy: "dpo-1", Now: fixedNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	log, err := ch.AuditLog(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !m.AuditLogged || len(log) != 1 || log[0].Action != "evidence.export-identities" || log[0].Actor != "dpo-1" ||
		log[0].Object != c.dpia || !log[0].At.Equal(fixedNow()) || !strings.Contains(log[0].Detail, `"identities":true`) {
		t.Errorf("identities request not recorded: manifest audit-logged %v, audit trail %+v", m.AuditLogged, log)
	}
	r := readReport(t, dir)
	if len(r.Confirmed) != len(rs.Confirmed) {
		t.Fatalf("identities export: %d confirmed, %d without identities", len(r.Confirmed), len(rs.Confirmed))
	}
	for _, c := range r.Confirmed {
		if c.Actor == "" || c.Actor == "withheld" || strings.HasPrefix(c.Actor, "pseud-") {
			t.Errorf("identities export shows no account id: %+v", c)
		}
	}
}
