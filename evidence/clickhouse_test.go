package evidence_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// TestClickHouseEvidenceAgreesWithEmbedded stores the same simulated
// fortnight in the embedded store and in ClickHouse (chDB, or the server at
// CLICKHOUSE_ADDR), and checks that every aggregate both can answer is the
// same: events per day and system, active staff per day, and alerts by
// check, pattern, severity and risk, for the period and the one before.
func TestClickHouseEvidenceAgreesWithEmbedded(t *testing.T) {
	srv := chtest.Shared(t)
	cfg := loadConfig(t)
	c := orgCases[0]
	ctx := context.Background()

	h := sha256.Sum256([]byte(t.Name()))
	o := clickhouse.Options{Addr: []string{srv.Addr}, Username: srv.Username, Password: srv.Password, Protocol: "native",
		Schema: clickhouse.Schema{Database: "dpiawatch_test_" + hex.EncodeToString(h[:8])}}
	if srv.Engine == "chdb" {
		o.Protocol = "http"
	}
	ch, err := clickhouse.Open(ctx, o)
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	sq, err := sqlite.Open(ctx, sqlite.Options{Path: t.TempDir() + "/s.db", Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sq.Close() })

	sim := simulateOrg(t, c)
	ingest(t, cfg, sim, sq)
	ingest(t, cfg, sim, ch)

	loc, _ := time.LoadLocation("Europe/London")
	days := make([]time.Time, 29)
	for i := range days {
		days[i] = time.Date(2026, 3, 2+i, 0, 0, 0, 0, loc) // across the change to summer time on 29 March
	}
	q := evidence.CoverageQuery{Org: c.org, Days: days, Location: loc, LateAfter: time.Hour}
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

	// The reports' shared figures.
	build := func(src evidence.Source) *evidence.Report {
		r, err := evidence.Build(ctx, evidence.Options{Config: cfg, DPIA: c.dpia, From: periodFrom, To: periodTo, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rs, rc := build(sq), build(ch)
	if rs.Alerts.Total == 0 {
		t.Fatal("no alerts to compare")
	}
	if !reflect.DeepEqual(rs.Alerts, rc.Alerts) {
		t.Errorf("alerts differ:\nembedded   %+v\nclickhouse %+v", rs.Alerts, rc.Alerts)
	}
	for i := range rs.Risks {
		s, k := rs.Risks[i], rc.Risks[i]
		if s.Alerts != k.Alerts || !reflect.DeepEqual(s.AlertsBy, k.AlertsBy) || s.Previous.Alerts != k.Previous.Alerts {
			t.Errorf("%s: alerts differ: embedded %d %+v, clickhouse %d %+v", s.ID, s.Alerts, s.AlertsBy, k.Alerts, k.AlertsBy)
		}
		if k.Triage.Available || (len(k.Checks) > 0 && k.Observed.Level != evidence.LevelNotAssessable) {
			t.Errorf("%s: clickhouse keeps no triage, yet the report claims it: %+v", s.ID, k.Observed)
		}
	}
	cs, cc := rs.Coverage, rc.Coverage
	cc.LateDataRecorded, cc.LateEvents, cc.DaysWithLateData = cs.LateDataRecorded, cs.LateEvents, cs.DaysWithLateData
	for i := range cc.Days {
		cc.Days[i].Late = 0
	}
	if !reflect.DeepEqual(cs, cc) {
		t.Errorf("report coverage differs:\nembedded   %+v\nclickhouse %+v", cs, cc)
	}
	if rc.Routine.Available || rc.Triage.Available {
		t.Error("clickhouse report claims routine audits or triage")
	}
}
