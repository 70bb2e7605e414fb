package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/viewlog"
	"github.com/dpiawatch/dpiawatch/web"
)

// webFixture is two teams of one org over two weeks, with three alerts.
func webFixture() ([]event.Event, []alert.Alert) {
	const org = "st-martins"
	t0 := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC) // Monday
	var evs []event.Event
	for i := range 140 {
		actor, team := fmt.Sprintf("u-%d", i%4), "webster-court"
		if i%4 >= 2 {
			team = "other-house"
		}
		evs = append(evs, event.Event{ID: fmt.Sprintf("e-%03d", i), Time: t0.Add(time.Duration(i) * 137 * time.Minute), Org: org,
			System: []string{"logmycare", "pcs"}[i%2], Action: event.ActionView,
			Actor:   event.Actor{ID: actor, Role: "support-worker", Team: team, Org: org},
			Subject: event.Subject{ID: fmt.Sprintf("c-%d", i%7)}, Record: event.Record{Type: "care-plan", ID: fmt.Sprintf("cp-%d", i)},
			Session: event.Session{ID: "s-" + actor}, Outcome: event.OutcomeSuccess})
	}
	mk := func(check string, e event.Event, sev alert.Severity, risks ...string) alert.Alert {
		a := alert.Alert{ID: alert.ID(org, check, check, e.Actor.ID, e.Subject.ID, e.System, e.ID), Check: check, Pattern: check, Severity: sev,
			Org: org, ActorID: e.Actor.ID, SubjectID: e.Subject.ID, DPIA: "st-martins-webster-court", Risks: risks, Explanation: "why"}
		a.AddEvent(e.ID, e.Time)
		return a
	}
	return evs, []alert.Alert{
		mk("out-of-hours", evs[8], alert.SeverityMedium, "R4"),
		mk("no-business-need", evs[31], alert.SeverityHigh, "R3", "R4"),
		mk("out-of-hours", evs[89], alert.SeverityLow, "R4"),
	}
}

type webRoutineStore interface {
	web.Store
	evidence.RoutineAuditSource
}

// TestClickHouseWebStoreAgrees runs every web.Store query, triage and
// routine-audit method against ClickHouse and the embedded store over the
// same data, and requires the same answers: the UI works alike on both.
func TestClickHouseWebStoreAgrees(t *testing.T) {
	srv := chtest.Shared(t)
	ch := openStore(t, srv, clickhouse.Options{})
	t.Cleanup(func() { _ = ch.Close() })
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "web.db"), Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sq.Close() })
	sqw, err := sq.Web(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]webRoutineStore{"clickhouse": ch.Web(), "sqlite": sqw}
	evs, as := webFixture()
	// The feed is complete up to its newest event, past the sampled week.
	done := store.Effects{Alerts: as, State: []store.StateEntry{store.CompletenessEntry("st-martins", evs[len(evs)-1].Time)}}
	for _, st := range []store.Writer{ch, sq} {
		if _, err := st.Apply(ctx, evs, nil, func([]event.Event) (store.Effects, error) { return done, nil }); err != nil {
			t.Fatal(err)
		}
	}
	at := evs[len(evs)-1].Time.Add(time.Hour)
	week := func(n int) (time.Time, time.Time) {
		from := time.Date(2026, 3, 2+7*n, 0, 0, 0, 0, time.UTC)
		return from, from.AddDate(0, 0, 7)
	}
	w0, w1 := week(0)
	for name, st := range stores {
		if _, err := st.AddTriage(ctx, triage.Decision{AlertID: as[1].ID, Outcome: triage.Acknowledged, Actor: "ig-1", At: at, Source: "web"}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := st.AddTriage(ctx, triage.Decision{AlertID: as[1].ID, Outcome: triage.ConfirmedMisuse, Actor: "ig-2", At: at.Add(time.Minute), Note: "n", Source: "slack"}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := st.WebRecordView(ctx, viewlog.View{At: at, User: "dpo", Role: "dpo", Kind: "alert", Org: "st-martins", Target: as[0].ID, Rows: 6}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, team := range []string{"webster-court", "other-house"} {
			s, err := routineaudit.DrawSample(ctx, st, "st-martins", "st-martins-webster-court", team, "2026-W10", w0, w1, 5)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			s.DrawnAt = at
			if _, err := st.PutAuditSample(ctx, s); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// A second draw (another manager at once) changes nothing.
			s.DrawnAt, s.Items = at.Add(time.Minute), s.Items[:1]
			if _, err := st.PutAuditSample(ctx, s); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		// A team with no accesses in the week: an empty sample.
		empty, err := routineaudit.DrawSample(ctx, st, "st-martins", "st-martins-webster-court", "empty-team", "2026-W10", w0, w1, 5)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		empty.DrawnAt = at
		if _, err := st.PutAuditSample(ctx, empty); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The next week ends after the feed's completeness point: no draw.
		next, err := routineaudit.DrawSample(ctx, st, "st-martins", "st-martins-webster-court", "webster-court", "2026-W11", w1, w1.AddDate(0, 0, 7), 5)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := st.PutAuditSample(ctx, next); !errors.Is(err, store.ErrFeedIncomplete) {
			t.Errorf("%s: a sample of a week the feed has not completed: %v", name, err)
		}
		for i, o := range []string{routineaudit.ReviewQuery, routineaudit.ReviewReasonable, routineaudit.ReviewRefer} {
			if _, err := st.AddAuditReview(ctx, routineaudit.Review{Org: "st-martins", Team: "webster-court", Period: "2026-W10", N: []int{0, 1, 0}[i],
				Outcome: o, Reviewer: "mgr", At: at.Add(time.Duration(i) * time.Minute), Note: o}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if _, err := st.AddAuditReview(ctx, routineaudit.Review{Org: "st-martins", Team: "webster-court", Period: "2026-W10", N: 99, Outcome: routineaudit.ReviewRefer}); err == nil {
			t.Errorf("%s: a review of an item not in the sample was stored", name)
		}
	}

	scopes := []alertview.AlertQuery{
		{}, {Teams: []string{"webster-court"}}, {Teams: []string{}}, {Orgs: []string{"other"}}, {Status: alertview.StatusOpen},
		{Status: alertview.StatusTriaged}, {Status: triage.ConfirmedMisuse}, {Risk: "R3"}, {Check: "out-of-hours", Severity: alert.SeverityLow},
		{ActorID: "u-0"}, {Team: "other-house"},
		// The work queue's order and its pages; a risk of one DPIA.
		{Order: alertview.OrderWork}, {Order: alertview.OrderWork, Limit: 1, Offset: 1}, {Limit: 2, Offset: 1},
		{DPIA: "st-martins-webster-court", Risk: "R3"}, {DPIA: "other", Risk: "R3"},
	}
	type answers struct {
		Alerts    [][]alertview.AlertRow
		Alert     alertview.AlertRow
		Counts    [][]alertview.AlertCount
		Statuses  [][]alertview.StatusCount
		Trend     []alertview.TrendCount
		Hours     [][]alertview.HourCount
		Actors    []int
		Team      string
		Feeds     []alertview.Feed
		Views     []viewlog.View
		Teams     []string
		Samples   []routineaudit.Sample
		Reviews   []routineaudit.Review
		Coverage  []routineaudit.Coverage
		Evidence  []evidencequery.RoutineAuditGroup
		Evidence2 []evidencequery.RoutineAuditGroup
	}
	got := map[string]answers{}
	for name, st := range stores {
		var a answers
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for _, q := range scopes {
			rows, err := st.WebAlerts(ctx, q)
			must(err)
			for i := range rows {
				rows[i].Version = 0 // stores count versions alike, but only content is compared
			}
			a.Alerts = append(a.Alerts, rows)
			c, err := st.WebAlertCounts(ctx, q)
			must(err)
			a.Counts = append(a.Counts, c)
			sc, err := st.WebStatusCounts(ctx, q)
			must(err)
			a.Statuses = append(a.Statuses, sc)
		}
		a.Alert, err = st.WebAlert(ctx, as[1].ID)
		must(err)
		a.Alert.Version = 0
		if _, err := st.WebAlert(ctx, "a-none"); err == nil {
			t.Errorf("%s: unknown alert found", name)
		}
		a.Trend, err = st.WebAlertTrend(ctx, alertview.AlertQuery{}, w0, w1.AddDate(0, 0, 7))
		must(err)
		for _, q := range []alertview.ActivityQuery{{ActorID: "u-1"}, {Team: "other-house"}, {}} {
			q.Org, q.From, q.To = "st-martins", w0, w1
			h, n, err := st.WebHourlyActivity(ctx, q)
			must(err)
			a.Hours, a.Actors = append(a.Hours, h), append(a.Actors, n)
		}
		a.Team, err = st.WebActorTeam(ctx, "st-martins", "u-3")
		must(err)
		a.Feeds, err = st.WebFeeds(ctx, nil, w0, evs[len(evs)-1].Time.Add(-24*time.Hour))
		must(err)
		a.Views, err = st.WebViews(ctx, 10)
		must(err)
		a.Teams, err = st.AuditTeams(ctx, "st-martins", w0, w1)
		must(err)
		for _, team := range []string{"webster-court", "other-house", "empty-team"} {
			s, err := st.AuditSample(ctx, "st-martins", team, "2026-W10")
			must(err)
			a.Samples = append(a.Samples, s)
		}
		a.Reviews, err = st.AuditReviews(ctx, "st-martins", "webster-court", "2026-W10")
		must(err)
		for i := range a.Reviews {
			a.Reviews[i].Seq = 0
		}
		a.Coverage, err = st.AuditCoverage(ctx, []string{"st-martins"}, w0, w1)
		must(err)
		a.Evidence, err = st.EvidenceRoutineAudits(ctx, evidencequery.AlertQuery{DPIA: "st-martins-webster-court", From: w0, To: w1})
		must(err)
		a.Evidence2, err = st.EvidenceRoutineAudits(ctx, evidencequery.AlertQuery{DPIA: "st-martins-webster-court", From: w1, To: w1.AddDate(0, 0, 7)})
		must(err)
		got[name] = a
	}
	c, s := got["clickhouse"], got["sqlite"]
	cv, sv := reflect.ValueOf(c), reflect.ValueOf(s)
	for i := range cv.NumField() {
		if !reflect.DeepEqual(cv.Field(i).Interface(), sv.Field(i).Interface()) {
			t.Errorf("%s differ:\nclickhouse %+v\nsqlite     %+v", cv.Type().Field(i).Name, cv.Field(i).Interface(), sv.Field(i).Interface())
		}
	}
	// The answers are right, not only alike.
	if s.Alert.Triage == nil || s.Alert.Triage.Outcome != triage.ConfirmedMisuse || s.Alert.Triage.By != "ig-2" || s.Alert.Triage.Source != "slack" || s.Alert.Team != "other-house" {
		t.Errorf("alert with triage: %+v team %q", s.Alert.Triage, s.Alert.Team)
	}
	if len(s.Alerts[1]) != 2 || len(s.Alerts[2]) != 0 || len(s.Alerts[5]) != 1 || len(s.Alerts[7]) != 1 {
		t.Errorf("scoped alerts: %d %d %d %d", len(s.Alerts[1]), len(s.Alerts[2]), len(s.Alerts[5]), len(s.Alerts[7]))
	}
	if ids := alertIDs(s.Alerts[11]); !reflect.DeepEqual(ids, []string{as[1].ID, as[0].ID, as[2].ID}) {
		t.Errorf("work order (high, medium, low) %v", ids)
	}
	if ids := alertIDs(s.Alerts[12]); !reflect.DeepEqual(ids, []string{as[0].ID}) {
		t.Errorf("second page of one in the work order %v", ids)
	}
	if ids := alertIDs(s.Alerts[13]); !reflect.DeepEqual(ids, []string{as[1].ID, as[0].ID}) {
		t.Errorf("recent order from the second %v", ids)
	}
	if len(s.Alerts[14]) != 1 || len(s.Alerts[15]) != 0 {
		t.Errorf("a risk of one DPIA: %d, of another %d", len(s.Alerts[14]), len(s.Alerts[15]))
	}
	if want := []alertview.StatusCount{{Status: triage.ConfirmedMisuse, Count: 1}, {Status: alertview.StatusOpen, Count: 2}}; !reflect.DeepEqual(s.Statuses[0], want) ||
		!reflect.DeepEqual(s.Statuses[4], want) {
		t.Errorf("status counts %+v, with a status filter %+v", s.Statuses[0], s.Statuses[4])
	}
	if len(s.Samples) != 3 || len(s.Samples[0].Items) != 5 || s.Samples[0].Population == 0 || s.Samples[0].DrawnAt != at ||
		len(s.Samples[2].Items) != 0 || s.Samples[2].Population != 0 {
		t.Errorf("samples: %+v", s.Samples)
	}
	if len(s.Coverage) != 3 || s.Coverage[2].Team != "webster-court" || s.Coverage[2].Reviewed != 2 || s.Coverage[2].Refer != 1 || s.Coverage[2].Query != 0 ||
		s.Coverage[2].Population != s.Samples[0].Population || s.Coverage[0].Team != "empty-team" || s.Coverage[0].Population != 0 || s.Coverage[0].Sampled != 0 || s.Coverage[0].Reviewed != 0 {
		t.Errorf("coverage: %+v", s.Coverage)
	}
	if len(s.Evidence) != 1 || s.Evidence[0].Samples != 2 || s.Evidence[0].Findings != 1 || len(s.Evidence2) != 0 {
		t.Errorf("evidence: %+v then %+v", s.Evidence, s.Evidence2)
	}
	if len(s.Teams) != 2 || s.Team != "other-house" {
		t.Errorf("teams %v, team of u-3 %q", s.Teams, s.Team)
	}
}

func alertIDs(rows []alertview.AlertRow) []string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}
