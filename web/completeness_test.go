package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/routineaudit"
)

// TestOverviewCompleteness: every role sees, per org, how far the feed is
// complete in event time (in the org's zone) against the newest stored
// event, and a warning when it is behind or has completed nothing. The
// fixture's newest event is t0+5m (Mon 2 Mar 2026 21:19 in London).
func TestOverviewCompleteness(t *testing.T) {
	cases := []struct {
		name     string
		at       time.Duration // completeness point from t0
		recorded bool
		want     []string
		absent   []string
	}{
		{name: "none recorded",
			want:   []string{"Feed completeness", "not yet complete for any period", "The feed is not yet complete for any period", "Mon 2 Mar 2026 21:19"},
			absent: []string{"behind by", "complete to the newest event"}},
		{name: "behind", at: 0, recorded: true,
			want: []string{"Feed complete up to", "Mon 2 Mar 2026 21:14", "Mon 2 Mar 2026 21:19", "behind by 5 minutes",
				"events up to Mon 2 Mar 2026 21:19 are stored, but it is complete only up to Mon 2 Mar 2026 21:14"},
			absent: []string{"not yet complete for any period", "complete to the newest event"}},
		{name: "behind by hours", at: -3*time.Hour - 20*time.Minute, recorded: true,
			want: []string{"Mon 2 Mar 2026 17:54", "behind by 3 hours 25 minutes"}},
		{name: "complete", at: time.Hour, recorded: true,
			want:   []string{"Mon 2 Mar 2026 22:14", "complete to the newest event", "figures up to Mon 2 Mar 2026 22:14 are final"},
			absent: []string{"behind by", "not yet complete for any period"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			if c.recorded {
				f.complete(t, t0.Add(c.at))
			}
			for _, user := range []string{"ig", "mgr-a", "dpo"} {
				cl, _ := f.login(t, user)
				resp, body := get(t, cl, f.srv.URL+"/overview")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s overview: %s", user, resp.Status)
				}
				// Only the fixture org's block: the other org has no events.
				block, _, _ := strings.Cut(body[strings.Index(body, `id="dpia-`+org+`"`):], `<section`)
				for _, w := range c.want {
					if !strings.Contains(block, w) {
						t.Errorf("%s overview lacks %q", user, w)
					}
				}
				assertAbsent(t, user+" overview", block, c.absent...)
			}
		})
	}
}

// TestRoutineSampleWaitsForTheFeed: once the week has ended, its sample is
// drawn only when the feed is complete up to the week's end; until then
// the sample page and the coverage table say how far the feed is.
func TestRoutineSampleWaitsForTheFeed(t *testing.T) {
	weekEnd := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC) // London is on GMT
	cases := []struct {
		name     string
		at       time.Time // completeness point; zero: none recorded
		wantDraw bool
		want     []string // on the sample page
		index    string   // on the coverage page
	}{
		{name: "none recorded", want: []string{"has ended, but the feed is", "not yet complete for any period",
			"can be drawn once the feed is complete up to the end of the period (Mon 9 Mar 2026 00:00)"},
			index: "waiting for the feed"},
		{name: "behind the week's end", at: weekEnd.Add(-time.Minute), want: []string{"complete only up to <strong>Sun 8 Mar 2026 23:59</strong>",
			"can be drawn once the feed is complete up to the end of the period (Mon 9 Mar 2026 00:00)"},
			index: "complete up to Sun 8 Mar 2026 23:59"},
		{name: "at the week's end", at: weekEnd, wantDraw: true, want: []string{"10 of the team's 12 accesses"}, index: "0%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.now.Add(7 * 24 * time.Hour) // the week has ended
			if !c.at.IsZero() {
				f.complete(t, c.at)
			}
			mgr, _ := f.login(t, "mgr-a")
			resp, body := get(t, mgr, f.srv.URL+sampleURL(teamA))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("sample page: %s", resp.Status)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("sample page lacks %q:\n%s", w, body)
				}
			}
			_, err := f.store.AuditSample(t.Context(), org, teamA, period)
			if drawn := err == nil; drawn != c.wantDraw {
				t.Fatalf("sample drawn: %v (%v), want %v", drawn, err, c.wantDraw)
			}
			if !c.wantDraw && strings.Contains(body, "Save reviews") {
				t.Error("a review form for a sample not drawn")
			}
			_, body = get(t, mgr, f.srv.URL+"/audit/routine")
			if !strings.Contains(body, c.index) {
				t.Errorf("coverage page lacks %q:\n%s", c.index, body)
			}
		})
	}
}

// TestEmptySampleIsNotCoverage: a sample drawn while no accesses of the
// team were stored (as one drawn while the feed was behind was) shows as
// "no accesses in the period", never as 100% reviewed.
func TestEmptySampleIsNotCoverage(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now())
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	drawn := from.AddDate(0, 0, 7).Add(time.Hour)
	if _, err := f.store.PutAuditSample(t.Context(), routineaudit.Sample{Org: org, DPIA: "st-martins-webster-court", Team: teamA, Period: period,
		From: from, To: from.AddDate(0, 0, 7), Seed: "00", DrawnAt: drawn}); err != nil {
		t.Fatal(err)
	}
	ig, _ := f.login(t, "ig")
	_, body := get(t, ig, f.srv.URL+"/audit/routine")
	row := rowOf(t, body, sampleURL(teamA))
	if !strings.Contains(row, "no accesses in the period") || strings.Contains(row, "100%") {
		t.Errorf("coverage row of an empty sample:\n%s", row)
	}
	if strings.Contains(body, "100%") {
		t.Errorf("an empty sample counts as reviewed somewhere on the page:\n%s", body)
	}
	_, body = get(t, ig, f.srv.URL+sampleURL(teamA))
	for _, w := range []string{"No accesses of the team were stored for this period", "Mon 9 Mar 2026 01:00", "does not count as reviewed"} {
		if !strings.Contains(body, w) {
			t.Errorf("empty sample page lacks %q", w)
		}
	}
}

// rowOf returns the table row holding s.
func rowOf(t *testing.T, body, s string) string {
	t.Helper()
	i := strings.Index(body, s)
	if i < 0 {
		t.Fatalf("page lacks %q", s)
	}
	start := strings.LastIndex(body[:i], "<tr")
	end := strings.Index(body[i:], "</tr>")
	if start < 0 || end < 0 {
		t.Fatalf("%q is not in a table row", s)
	}
	return body[start : i+end]
}
