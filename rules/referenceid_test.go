package rules_test

import (
	"testing"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

// TestAlertNamesReference: each alert a batch returns names the reference
// data that batch judged against; an episode that grows under newer data
// names the newest; unnamed data names none.
func TestAlertNamesReference(t *testing.T) {
	data := &reference.Data{Staff: []reference.Staff{rulestest.Staff("u-40", "manager", "office")}}
	e := rulestest.NewPromptEngine(t, rulestest.Policy(), reference.NewNamedIndex(data, "ref-1"))
	var alertID string
	for _, c := range []struct {
		name   string
		roster rules.Roster // nil: keep the one in force
		event  string
		clock  string
		want   string
	}{
		{"opened under the first data", nil, "e1", "23:00", "ref-1"},
		{"grown under a reload", reference.NewNamedIndex(data, "ref-2"), "e2", "23:01", "ref-2"},
		{"grown under unnamed data", reference.NewIndex(data), "e3", "23:02", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.roster != nil {
				e.SetRoster(c.roster)
			}
			fx, err := e.Process([]event.Event{rulestest.Event(c.event, "u-40", rulestest.Sat(c.clock), event.ActionView)})
			if err != nil || len(fx.Alerts) != 1 {
				t.Fatalf("want one alert, got %+v, %v", fx.Alerts, err)
			}
			a := fx.Alerts[0]
			if alertID == "" {
				alertID = a.ID
			}
			if a.ID != alertID || a.ReferenceID != c.want {
				t.Errorf("alert %s names reference %q, want alert %s naming %q", a.ID, a.ReferenceID, alertID, c.want)
			}
		})
	}

	// What Flush releases (the end of a replay) names its data too.
	e = rulestest.NewTestEngine(t, rulestest.Policy(), reference.NewNamedIndex(data, "ref-1"))
	if _, err := e.Process([]event.Event{rulestest.Event("f1", "u-40", rulestest.Sat("23:00"), event.ActionView)}); err != nil {
		t.Fatal(err)
	}
	fx := e.Flush()
	if len(fx.Alerts) != 1 || fx.Alerts[0].ReferenceID != "ref-1" {
		t.Fatalf("Flush: want one alert naming ref-1, got %+v", fx.Alerts)
	}
}
