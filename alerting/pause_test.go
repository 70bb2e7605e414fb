package alerting

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestBrokenSlackPausesInsteadOfDraining (issue 16, item 14): Slack answers
// token_revoked for ten minutes of simulated time while alerts keep
// arriving. No alert is given up; every one is posted once the token works
// again, in order, none twice.
func TestBrokenSlackPausesInsteadOfDraining(t *testing.T) {
	for _, code := range []string{"token_revoked", "invalid_auth", "channel_not_found", "not_in_channel", "account_inactive"} {
		t.Run(code, func(t *testing.T) {
			st := openStore(t, "")
			clock := newFakeClock()
			f := newThreadSlack(t)
			end := clock.Now().Add(10 * time.Minute)
			f.fail = func(string) func(http.ResponseWriter) {
				if clock.Now().Before(end) {
					return apiError(code)
				}
				return nil
			}
			s := newThreadedSlack(t, f, st, clock, nil, "C1")
			p := newTestPipeline(t, st, singleRoute(s.Name(), 0, time.Second), clock, s)
			var want []string
			for i := range 12 {
				a := numbered(i)
				want = append(want, a.ID)
				putAlerts(t, st, a)
				if i%4 == 3 {
					drive(t, p, clock, 2)
				}
			}
			drive(t, p, clock, 3)
			var got []string
			for _, c := range f.posts() {
				got = append(got, alertIDOf(c))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("posted %v\nwant %v", got, want)
			}
			if n := pendingCount(t, st, s.Name()); n != 0 {
				t.Fatalf("%d still pending", n)
			}
		})
	}
}

// TestDispatcherBrokenSlackPauses: the plain dispatcher behaves as the
// pipeline does: a revoked token gives up on nothing.
func TestDispatcherBrokenSlackPauses(t *testing.T) {
	f := newFakeSlack(t, apiError("token_revoked"), apiError("token_revoked"), apiError("token_revoked"), apiError("invalid_auth"))
	s := newTestSlack(t, f, nil)
	ob := newMemOutbox()
	var want []string
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		ob.put(testAlert(id))
		want = append(want, "https://dpiawatch.example/alerts/"+id)
	}
	d := NewDispatcher(fastOptions(ob, s))
	runDispatcher(t, d)
	waitFor(t, "queue drained", func() bool { return ob.pendingCount(s.Name()) == 0 })
	var got []string
	for _, v := range f.delivered() {
		got = append(got, dashboardOf(t, v.Get("blocks")))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if n := counter(d, s.Name(), OutcomeFailed); n != 0 {
		t.Errorf("failed = %v, want 0", n)
	}
}

// dashboardOf finds the dashboard link in a message's blocks.
func dashboardOf(t *testing.T, blocks string) string {
	t.Helper()
	id := alertIDOf(slackCall{Values: map[string][]string{"blocks": {blocks}}})
	if id == "" {
		t.Fatalf("no dashboard link in %.200s", blocks)
	}
	return "https://dpiawatch.example/alerts/" + id
}
