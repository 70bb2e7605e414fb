package evidence_test

import (
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// TestActionsLog: the pack's actions log lists every alert of the period
// whose latest decision records a follow-up, with its owner, due day and
// status as the store holds them, open ones due by the period's last day
// marked overdue; evidence.json, actions.csv, the HTML and the PDF all
// show them, and the old "records no owner or due date" caveat is gone.
func TestActionsLog(t *testing.T) {
	txt := poppler(t, "pdftotext")
	cfg := loadConfig(t)
	c := orgCases[0]
	st := embeddedStore(t, cfg, c)
	dir, _ := export(t, cfg, st, c.dpia, false)
	r := readReport(t, dir)
	if !r.Actions.Available || r.Actions.AsOf != periodTo {
		t.Fatalf("actions: available %v, as of %q; want true, %s", r.Actions.Available, r.Actions.AsOf, periodTo)
	}

	// What the store says: each alert of the period and its latest
	// decision's action.
	ctx := context.Background()
	loc, _ := time.LoadLocation("Europe/London")
	from, _ := time.ParseInLocation(time.DateOnly, periodFrom, loc)
	to, _ := time.ParseInLocation(time.DateOnly, periodTo, loc)
	as, err := st.Alerts(ctx, store.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]triage.Action{}
	for _, a := range as {
		if a.DPIA != c.dpia || a.FirstSeen.Before(from) || !a.FirstSeen.Before(to.AddDate(0, 0, 1)) {
			continue
		}
		ts, err := st.Triages(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var latest *triage.Decision
		for i := range ts {
			if latest == nil || !ts[i].At.Before(latest.At) {
				latest = &ts[i]
			}
		}
		if latest != nil && latest.Action != nil {
			want[a.ID] = *latest.Action
		}
	}
	if len(want) == 0 {
		t.Fatal("the fixture records no action in the period")
	}
	if len(r.Actions.Items) != len(want) {
		t.Errorf("%d actions in the pack, %d in the store", len(r.Actions.Items), len(want))
	}
	var open, overdue, done int
	prevDue := ""
	for _, it := range r.Actions.Items {
		w, ok := want[it.AlertID]
		if !ok {
			t.Errorf("%s is in the actions log without an action in the store", it.AlertID)
			continue
		}
		if it.Owner != w.Owner || it.Due != w.Due || it.Status != cmp.Or(w.Status, triage.ActionOpen) {
			t.Errorf("%s: owner %q due %q status %q; the store has %+v", it.AlertID, it.Owner, it.Due, it.Status, w)
		}
		wantOverdue := it.Status == triage.ActionOpen && it.Due != "" && it.Due <= periodTo
		if it.Overdue != wantOverdue {
			t.Errorf("%s due %s, %s: overdue %v, want %v", it.AlertID, it.Due, it.Status, it.Overdue, wantOverdue)
		}
		if it.Due != "" && it.Due < prevDue || it.Due != "" && prevDue == "none" {
			t.Errorf("actions not in due order: %s after %s", it.Due, prevDue)
		}
		prevDue = cmp.Or(it.Due, "none")
		switch {
		case it.Status == triage.ActionDone:
			done++
		case it.Overdue:
			overdue++
			open++
		default:
			open++
		}
	}
	if open != r.Actions.Open || overdue != r.Actions.Overdue || done != r.Actions.Done || overdue == 0 || done == 0 {
		t.Errorf("counts open %d overdue %d done %d; items give %d, %d, %d (the fixture must hold overdue and done)",
			r.Actions.Open, r.Actions.Overdue, r.Actions.Done, open, overdue, done)
	}

	csv, err := os.ReadFile(filepath.Join(dir, "actions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(csv), "\n"); n != len(r.Actions.Items)+1 {
		t.Errorf("actions.csv has %d lines for %d actions", n, len(r.Actions.Items))
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(txt, filepath.Join(dir, "report.pdf"), "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	pdf := strings.Join(strings.Fields(string(out)), " ")
	for _, it := range r.Actions.Items {
		if !strings.Contains(string(html), "<td>"+it.AlertID+"</td>") {
			t.Errorf("the HTML actions log lacks %s", it.AlertID)
		}
	}
	for _, w := range []string{"Actions from triage", "Owner Due Status", "Registered manager", "Open, overdue", "Done",
		"Follow-up actions: " + itoa(int64(open)) + " open, " + itoa(int64(overdue)) + " of them overdue on 29 Mar 2026; " + itoa(int64(done)) + " done."} {
		if !strings.Contains(pdf, w) {
			t.Errorf("the PDF lacks %q", w)
		}
	}
	if strings.Contains(pdf, "no owner or due date") || strings.Contains(string(html), "no owner or due date") {
		t.Error("the pack still says triage records no owner or due date")
	}
}

// TestActionsNotRecorded: a source that keeps no actions says so rather
// than listing none.
func TestActionsNotRecorded(t *testing.T) {
	cfg := loadConfig(t)
	st := embeddedStore(t, cfg, orgCases[0])
	r, err := evidence.Build(context.Background(), evidence.Options{Config: cfg, DPIA: orgCases[0].dpia, From: periodFrom, To: periodTo,
		Source: struct{ evidence.Source }{st}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Actions.Available || len(r.Actions.Items) != 0 || !strings.Contains(r.Actions.Note, "does not record") {
		t.Errorf("actions from a source without them: %+v", r.Actions)
	}
}
