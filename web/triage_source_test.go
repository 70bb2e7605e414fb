package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/web"
)

// TestTriageShowsItsSource: the alert page and the CSV say where the latest
// decision came from, a web user, an API client or Slack, so that an API
// client cannot pass for a person (issue 16, item 13).
func TestTriageShowsItsSource(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ig, csrf := f.login(t, "ig")
	dpo, _ := f.login(t, "dpo") // the CSV export is the DPO's
	for _, tc := range []struct {
		name  string
		t     *triage.Decision // nil: decided in the UI by "ig"
		page  string
		csvBy string
	}{
		{"web", nil, "Explained (legitimate reason)</strong> by web user ig,", "ig,web"},
		{"api client", &triage.Decision{Actor: "api:soc-bot", Source: "api"}, "</strong> by API client soc-bot,", "api:soc-bot,api"},
		{"slack", &triage.Decision{Actor: "slack:U0IG1", Source: "slack"}, "</strong> by Slack user U0IG1,", "slack:U0IG1,slack"},
		{"api before clients", &triage.Decision{Actor: "ig1", Source: "api"}, "</strong> by the API (shared token) stating &#34;ig1&#34;,", "ig1,api"},
	} {
		if tc.t == nil {
			if resp, _ := post(t, ig, f.srv.URL+"/alerts/"+alertA+"/triage", url.Values{"csrf": {csrf}, "outcome": {web.OutcomeExplained}, "note": {"rota"}}); resp.StatusCode/100 != 3 {
				t.Fatalf("%s: triage: %s", tc.name, resp.Status)
			}
		} else {
			tc.t.AlertID, tc.t.Outcome, tc.t.At = alertA, triage.Acknowledged, f.now.Now()
			if _, err := f.store.AddTriage(t.Context(), *tc.t); err != nil {
				t.Fatal(err)
			}
		}
		if _, body := get(t, ig, f.srv.URL+"/alerts/"+alertA); !strings.Contains(body, tc.page) {
			i := strings.Index(body, "Status</dt>")
			t.Errorf("%s: alert page lacks %q near:\n%s", tc.name, tc.page, body[max(i, 0):min(max(i, 0)+400, len(body))])
		}
		_, csv := get(t, dpo, f.srv.URL+"/alerts.csv")
		if !strings.HasPrefix(csv, "id,") || !strings.Contains(csv, ",triage_source\n") {
			t.Fatalf("%s: CSV header lacks triage_source: %.300s", tc.name, csv)
		}
		var row string
		for _, l := range strings.Split(csv, "\n") {
			if strings.HasPrefix(l, alertA+",") {
				row = l
			}
		}
		// triaged_by, then at the end triage_source.
		if by, src, _ := strings.Cut(tc.csvBy, ","); !strings.Contains(row, ","+by+",") || !strings.HasSuffix(row, ","+src) {
			t.Errorf("%s: CSV row %q lacks triaged_by %q and triage_source %q", tc.name, row, by, src)
		}
	}
}
