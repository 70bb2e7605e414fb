package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// hostileActor reads "u-17" followed by "cod.exe" written backwards; stored
// before the boundaries refused such ids, it must show as what it is.
const (
	hostileActor = "u-\u202e71exe.doc"
	shownActor   = "u-[U+202E]71exe.doc"
)

// addHostileAlert stores an alert whose actor id, team and explanation hold
// bidirectional controls, as an old database may.
func addHostileAlert(t *testing.T, f *fixture) string {
	t.Helper()
	e := ev("e-h1", hostileActor, teamA+"\u2066", "c-0099", "cp-9", t0)
	id := alert.ID(org, "out-of-hours", "out-of-hours", hostileActor, "c-0099", "logmycare", "e-h1")
	a := alert.Alert{ID: id, Check: "out-of-hours", Pattern: "out-of-hours", Severity: alert.SeverityMedium, Org: org,
		ActorID: hostileActor, SubjectID: "c-0099", DPIA: "st-martins-webster-court", Risks: []string{"R4"},
		Explanation: "Opened a care plan\u202e at 21:14."}
	a.AddEvent("e-h1", t0)
	if _, err := f.sq.Apply(context.Background(), []event.Event{e}, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: []alert.Alert{a}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestHiddenCharactersShownInTheUI: every page and the CSV export show a
// bidirectional control as [U+202E], never raw (issue 16, item 10).
func TestHiddenCharactersShownInTheUI(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	id := addHostileAlert(t, f)
	c, _ := f.login(t, "dpo")
	for _, path := range []string{
		"/alerts",
		"/alerts/" + url.PathEscape(id),
		"/actors/" + org + "/" + url.PathEscape(hostileActor),
		"/alerts.csv",
	} {
		resp, body := get(t, c, f.srv.URL+path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", path, resp.StatusCode)
			continue
		}
		if !strings.Contains(body, shownActor) {
			t.Errorf("%s does not show the actor as %q", path, shownActor)
		}
		if i := strings.IndexAny(body, "\u202e\u2066"); i >= 0 {
			t.Errorf("%s holds a raw bidirectional control: …%q…", path, body[max(0, i-40):min(len(body), i+40)])
		}
	}
}
