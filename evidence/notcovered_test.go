package evidence_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/triage"
)

// TestAlertsNotCoveredByTheDPIA (issue 16, item 5): a feed-integrity alert
// evidences no risk of the DPIA (risks: []). The pack shows it as not
// covered by the DPIA — its own section in evidence.json, alerts.csv,
// triage.csv, the HTML and the PDF, and "not covered by the DPIA" for its
// risks when it is confirmed misuse — rather than dropping it or filing it
// under a risk.
func TestAlertsNotCoveredByTheDPIA(t *testing.T) {
	cfg := loadConfig(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "n.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 3, 18, 10, 0, 0, 0, time.UTC) // in the period
	kept := event.Event{ID: "lmc-1", Time: t0, Org: "st-martins", System: "logmycare", Action: event.ActionView,
		Actor: event.Actor{ID: "u-17"}, Subject: event.Subject{ID: "c-0042"}, Outcome: event.OutcomeSuccess}
	other := kept
	other.Actor.ID, other.Time = "u-99", t0.Add(time.Hour)
	a := rules.ConflictAlert(store.Conflict{Event: other, Kept: kept, Fields: []string{"time", "actor.id"}}, "st-martins-webster-court")
	if _, err := st.Apply(ctx, []event.Event{kept}, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: []alert.Alert{a}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	addTriages(t, st, []triage.Decision{{AlertID: a.ID, Outcome: triage.ConfirmedMisuse, Actor: "ig-1", At: t0.Add(2 * time.Hour), Source: "web"}})

	dir, _ := export(t, cfg, st, "st-martins-webster-court", false)
	r := readReport(t, dir)
	nc := r.NotCovered
	if nc.Alerts != 1 || len(nc.By) != 1 || nc.By[0].Check != rules.CheckFeedIntegrity || nc.By[0].Alerts != 1 || !strings.Contains(nc.Note, "no risk") {
		t.Errorf("not_covered_by_dpia = %+v, want the feed-integrity alert", nc)
	}
	for _, k := range r.Risks {
		if k.Alerts != 0 {
			t.Errorf("risk %s counts %d alerts, want none (the only alert evidences no risk)", k.ID, k.Alerts)
		}
	}
	if r.Alerts.Total != 1 {
		t.Errorf("alerts total %d, want 1", r.Alerts.Total)
	}
	if len(r.Confirmed) != 1 || len(r.Confirmed[0].Risks) != 0 {
		t.Fatalf("confirmed misuse %+v, want the alert with no risk", r.Confirmed)
	}

	for file, want := range map[string]string{
		"alerts.csv":           "not_covered_by_dpia,feed-integrity,conflicting-duplicate,high,1,0\n",
		"triage.csv":           "not_covered_by_dpia,confirmed-misuse,1\n",
		"confirmed_misuse.csv": ",st-martins,feed-integrity,conflicting-duplicate,high,not covered by the DPIA,",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(string(b), "\r\n", "\n"); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", file, want, got)
		}
	}

	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, html)
	equalRows(t, "not covered", doc.table(t, "Alerts not covered by the DPIA", 1)[0].rows,
		[][]string{{"feed-integrity", "conflicting-duplicate", "high", "1", "0"}})
	if ps := doc.paras["Alerts not covered by the DPIA"]; len(ps) == 0 || ps[0] != nc.Note {
		t.Errorf("HTML note %q, want %q", ps, nc.Note)
	}
	if rows := doc.table(t, "Confirmed misuse", 1)[0].rows; len(rows) != 1 || rows[0][2] != "not covered by the DPIA" {
		t.Errorf("HTML confirmed misuse rows %q, want risks \"not covered by the DPIA\"", rows)
	}

	txt := poppler(t, "pdftotext")
	out, err := exec.Command(txt, filepath.Join(dir, "report.pdf"), "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := collapse(string(out))
	for _, want := range []string{"Alerts not covered by the DPIA", "feed-integrity conflicting-duplicate high 1 0",
		"feed-integrity / conflicting-duplicate (not covered by the DPIA)"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF lacks %q:\n%s", want, text)
		}
	}
}
