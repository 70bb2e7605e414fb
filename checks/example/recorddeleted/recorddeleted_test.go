package recorddeleted_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/checks"
	"github.com/dpiawatch/dpiawatch/checks/example/recorddeleted"
	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks, beside the example
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

// The example is not installed in the shipped binary: its tests register
// it, as checks/install would with one line.
func init() { checks.Register(recorddeleted.Check) }

// TestRecordDeleted: the registered example check is configured from YAML
// like a shipped one, and the engine built from that configuration runs it:
// a delete raises an alert at the configured severity, an exempt role's
// and a failed delete do not.
func TestRecordDeleted(t *testing.T) {
	cfg, diags := config.Load("testdata/record_deleted.yaml")
	if cfg == nil {
		t.Fatalf("load: %s", diags)
	}
	sec := checks.SectionOf[*recorddeleted.Config](cfg, recorddeleted.Name)
	if sec == nil || !sec.Enabled || sec.Severity != "high" || len(sec.Overrides) != 1 {
		t.Fatalf("section = %+v", sec)
	}
	o, err := checkconfig.EngineOptions(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	o.Lateness = rules.NoLateness
	e, err := rules.New(o)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday, in working hours
	ev := func(id, actor, role string, a event.Action, outcome event.Outcome) event.Event {
		return event.Event{ID: id, Time: at, Org: "st-martins", System: "logmycare", Action: a, Outcome: outcome,
			Actor:   event.Actor{ID: actor, Role: role},
			Subject: event.Subject{ID: "c-0042"}, Record: event.Record{Type: "care-plan", ID: "cp-981"}}
	}
	fx, err := e.Process([]event.Event{
		ev("e1", "u-7", "support-worker", event.ActionView, event.OutcomeSuccess),
		ev("e2", "u-7", "support-worker", event.ActionDelete, event.OutcomeSuccess),
		ev("e3", "u-9", "records-officer", event.ActionDelete, event.OutcomeSuccess),
		ev("e4", "u-8", "support-worker", event.ActionDelete, event.OutcomeFailure),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []alert.Alert
	for _, a := range append(fx.Alerts, e.Flush().Alerts...) {
		if a.Check == recorddeleted.Name {
			got = append(got, a)
		}
	}
	if len(got) != 1 {
		t.Fatalf("got %d record-deleted alerts, want 1 (u-7's delete): %+v", len(got), got)
	}
	a := got[0]
	if a.Pattern != recorddeleted.Name || a.ActorID != "u-7" || a.Severity != alert.SeverityHigh ||
		len(a.EventIDs) != 1 || a.EventIDs[0] != "e2" || len(a.Risks) != 1 || a.Risks[0] != "R1" ||
		!strings.Contains(a.Explanation, "who deleted a record") {
		t.Errorf("alert = %+v", a)
	}
}

// TestRecordDeletedRefused: check-config refuses every bad value of the
// example's section at its file:line:col, as it does a shipped check's.
func TestRecordDeletedRefused(t *testing.T) {
	const file = "testdata/record_deleted_bad.yaml"
	cfg, diags := config.Load(file)
	if cfg != nil {
		t.Fatalf("loaded; want refused")
	}
	rulestest.CheckGolden(t, "record_deleted_bad.golden", diags.String())
}

// TestWalkthroughIsTheCode: docs/checks/adding-a-check.md shows this
// package's files whole, and the one line that would install it, so that
// the walkthrough cannot drift from code that compiles and runs.
func TestWalkthroughIsTheCode(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/checks/adding-a-check.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"recorddeleted.go", "check.go", "config.go"} {
		code, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), "```go\n"+string(code)+"```\n") {
			t.Errorf("the walkthrough does not show %s as it is", f)
		}
	}
	if !strings.Contains(string(doc), "\tchecks.Register(recorddeleted.Check)\n") {
		t.Error("the walkthrough does not show the registration line")
	}
}
