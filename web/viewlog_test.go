package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/viewlog"
	"github.com/dpiawatch/dpiawatch/web"
)

// TestViewLogCoversPersonalData (issue 16, item 9): every route that shows
// or exports personal data (subject ids, worker ids, who viewed what)
// writes exactly one view-log entry per request, naming who, their role,
// what they looked at (kind, org, target), when, and how many rows it
// listed; a request refused for the role writes none.
func TestViewLogCoversPersonalData(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	const before = -1 // rows: the view log's entries before the request
	tests := []struct {
		user, path string
		code       int
		kind       string // "": no entry
		org        string
		target     string
		rows       int
	}{
		{"ig", "/alerts?status=open", http.StatusOK, "queue", org, "status=open", 2},
		{"mgr-a", "/alerts?status=open", http.StatusOK, "queue", org, "status=open", 1},
		// The queue lists open alerts unless told otherwise, and says so.
		{"mgr-none", "/alerts", http.StatusOK, "queue", "", "status=open", 0},
		{"dpo", "/alerts", http.StatusOK, "queue", org, "status=open", 2},
		{"dpo", "/alerts?status=all", http.StatusOK, "queue", org, "status=all", 2},
		{"admin", "/alerts?org=" + org, http.StatusOK, "queue", org, "org=" + org + "&status=open", 2},
		{"other-org", "/alerts", http.StatusOK, "queue", "wiltshire-council", "status=open", 0},
		{"dpo", "/alerts.csv", http.StatusOK, "alerts-csv", org, "", 2},
		{"dpo", "/alerts.csv?risk=R4", http.StatusOK, "alerts-csv", org, "risk=R4", 1},
		{"ig", "/alerts.csv", http.StatusNotFound, "", "", "", 0},
		{"admin", "/alerts.csv", http.StatusNotFound, "", "", "", 0},
		{"ig", "/alerts/" + alertA, http.StatusOK, "alert", org, alertA, 6},
		{"admin", "/alerts/" + alertB, http.StatusOK, "alert", org, alertB, 6},
		{"mgr-a", "/alerts/" + alertB, http.StatusNotFound, "", "", "", 0},
		{"mgr-a", "/actors/" + org + "/" + actorA, http.StatusOK, "actor", org, actorA, 1},
		{"dpo", "/actors/" + org + "/" + actorB, http.StatusOK, "actor", org, actorB, 1},
		{"admin", "/actors/" + org + "/" + actorA, http.StatusNotFound, "", "", "", 0},
		{"dpo", "/audit/views", http.StatusOK, "views", "", "", before},
		{"ig", "/audit/views", http.StatusNotFound, "", "", "", 0},
	}
	clients := map[string]*http.Client{}
	for _, tc := range tests {
		t.Run(tc.user+" "+tc.path, func(t *testing.T) {
			c := clients[tc.user]
			if c == nil {
				c, _ = f.login(t, tc.user)
				clients[tc.user] = c
			}
			prev, err := f.store.WebViews(t.Context(), 10_000)
			if err != nil {
				t.Fatal(err)
			}
			if resp, body := get(t, c, f.srv.URL+tc.path); resp.StatusCode != tc.code {
				t.Fatalf("%s: %s, want %d\n%s", tc.path, resp.Status, tc.code, body)
			}
			views, err := f.store.WebViews(t.Context(), 10_000)
			if err != nil {
				t.Fatal(err)
			}
			added := len(views) - len(prev)
			if tc.kind == "" {
				if added != 0 {
					t.Fatalf("a refused request wrote %d view-log entries: %+v", added, views[0])
				}
				return
			}
			if added != 1 {
				t.Fatalf("%d view-log entries written, want exactly 1", added)
			}
			want := viewlog.View{At: f.now.Now().UTC(), User: tc.user, Role: roleOf(tc.user), Kind: tc.kind, Org: tc.org, Target: tc.target, Rows: tc.rows}
			if tc.rows == before {
				want.Rows = len(prev)
			}
			if got := views[0]; !got.At.Equal(want.At) || got.User != want.User || got.Role != want.Role || got.Kind != want.Kind ||
				got.Org != want.Org || got.Target != want.Target || got.Rows != want.Rows {
				t.Errorf("entry %+v\nwant  %+v", got, want)
			}
		})
	}
	// The DPO's log links each list view back to what was seen.
	dpo := clients["dpo"]
	_, body := get(t, dpo, f.srv.URL+"/audit/views")
	for _, link := range []string{`href="/alerts?status=open"`, `href="/alerts?risk=R4"`} {
		if !strings.Contains(body, link) {
			t.Errorf("the view log lacks %s", link)
		}
	}
}

func roleOf(user string) string {
	switch user {
	case "mgr-a", "mgr-none":
		return web.RoleManager
	case "dpo":
		return web.RoleDPO
	case "admin":
		return web.RoleAdmin
	}
	return web.RoleIGTeam
}
