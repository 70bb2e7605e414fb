package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// addQueueAlerts stores n more alerts of worker actorA (team A): severities
// low, medium, high in turn, each first seen a minute after the one
// before; the first two are triaged.
func addQueueAlerts(t *testing.T, f *fixture, n int) []string {
	t.Helper()
	var (
		as  []alert.Alert
		ids []string
	)
	for i := range n {
		id := fmt.Sprintf("a-q%03d", i)
		a := alert.Alert{ID: id, Check: "no-business-need", Pattern: "outside-sharing-agreement", Org: org,
			Severity: alert.Severities[i%3], ActorID: actorA, SubjectID: subjectA, DPIA: "st-martins-webster-court", Risks: []string{"R3"},
			Explanation: "Opened a record outside the sharing agreement."}
		a.AddEvent(fmt.Sprintf("e-a%d", i%6+1), t0.Add(time.Duration(i)*time.Minute))
		as, ids = append(as, a), append(ids, id)
	}
	if _, err := f.sq.Apply(context.Background(), nil, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: as}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:2] {
		if _, err := f.store.AddTriage(context.Background(), triage.Decision{AlertID: id, Outcome: triage.Acknowledged, Actor: "ig", At: t0, Source: "web"}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

var queueLink = regexp.MustCompile(`href="/alerts/(a-[^"]+)"`)

// shown lists the alert ids a queue page links to, in order.
func shown(body string) []string {
	var ids []string
	for _, m := range queueLink.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// TestWorkQueue: the queue lists open alerts by default, the most severe
// first and the longest waiting first within a severity, fifty to a page
// with links that keep the filters; it counts every status, names the
// organisation, the risks by title and the checks in words (issue 13).
func TestWorkQueue(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ids := addQueueAlerts(t, f, 120) // with the fixture's two: 122, 120 open
	c, _ := f.login(t, "ig")
	var seen []string
	for page, tc := range []struct {
		url  string
		want int
	}{
		{"/alerts", 50},
		{"/alerts?page=2&status=open", 50},
		{"/alerts?page=3&status=open", 20},
	} {
		resp, body := get(t, c, f.srv.URL+tc.url)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", tc.url, resp.Status)
		}
		got := shown(body)
		if len(got) != tc.want {
			t.Errorf("%s lists %d alerts, want %d", tc.url, len(got), tc.want)
		}
		seen = append(seen, got...)
		if want := fmt.Sprintf("Page %d of 3", page+1); !strings.Contains(body, want) {
			t.Errorf("%s does not say %q", tc.url, want)
		}
		if page < 2 && !strings.Contains(body, fmt.Sprintf(`href="/alerts?page=%d&amp;status=open"`, page+2)) {
			t.Errorf("%s has no link to the next page", tc.url)
		}
	}
	// Every open alert once, none triaged; the high ones first, oldest
	// first within a severity.
	if slices.Contains(seen, ids[0]) || slices.Contains(seen, ids[1]) {
		t.Error("the default queue lists triaged alerts")
	}
	sorted := slices.Clone(seen)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != 120 {
		t.Errorf("three pages list %d distinct alerts, want 120", len(slices.Compact(sorted)))
	}
	// alertB (high, first seen at t0) waited longest; then the open high
	// ones from ids[2] (t0+2m) on.
	if len(seen) < 3 || seen[0] != alertB || seen[1] != ids[2] || seen[2] != ids[5] {
		t.Errorf("order starts %v, want %s (high, oldest), %s, %s", seen[:min(3, len(seen))], alertB, ids[2], ids[5])
	}
	// The last page ends with the newest low alert.
	if last := seen[len(seen)-1]; last != ids[117] {
		t.Errorf("last alert %s, want the newest low one %s", last, ids[117])
	}

	_, body := get(t, c, f.srv.URL+"/alerts?risk=st-martins-webster-court:R3&status=all")
	for _, want := range []string{
		"Open <span class=\"app-count\">119</span>", "Acknowledged <span class=\"app-count\">2</span>", "All <span class=\"app-count\">121</span>",
		"St Martins", "R3: Access with no business need", "No business need", "Outside the sharing agreement",
		`href="/alerts?risk=st-martins-webster-court%3AR3&amp;status=open"`, "Page 1 of 3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the queue filtered on R3 lacks %s", want)
		}
	}
	if slices.Contains(shown(body), alertA) {
		t.Error("the queue filtered on R3 lists an R4 alert")
	}
	// A risk id of another DPIA matches nothing.
	if _, body := get(t, c, f.srv.URL+"/alerts?risk=wiltshire-childrens-cms:R3"); len(shown(body)) != 0 || !strings.Contains(body, "No alerts match") {
		t.Errorf("another DPIA's R3 lists %v", shown(body))
	}
	// A page past the end shows the last one.
	if _, body := get(t, c, f.srv.URL+"/alerts?page=99"); !strings.Contains(body, "Page 3 of 3") || len(shown(body)) != 20 {
		t.Errorf("page 99: %d alerts", len(shown(body)))
	}
}

// TestNotCoveredByTheDPIA: an alert whose behaviour no risk of the DPIA
// names says so on the queue and on its page, rather than showing an empty
// risk cell (issue 13: "show the alert as not covered by the DPIA").
func TestNotCoveredByTheDPIA(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	a := alert.Alert{ID: "a-uncovered", Check: "shared-credential", Pattern: "unknown-account", Org: org,
		Severity: alert.SeverityHigh, ActorID: actorA, DPIA: "st-martins-webster-court",
		Explanation: "An account on no staff list signed in."}
	a.AddEvent("e-a1", t0)
	if _, err := f.sq.Apply(context.Background(), nil, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{Alerts: []alert.Alert{a}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	c, _ := f.login(t, "ig")
	for _, url := range []string{"/alerts", "/alerts/a-uncovered"} {
		resp, body := get(t, c, f.srv.URL+url)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", url, resp.Status)
		}
		if !strings.Contains(body, "Not covered by the DPIA") {
			t.Errorf("%s does not say the alert is not covered by the DPIA", url)
		}
	}
}
