package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/silence"
)

// apiAs calls the API with the given bearer token.
func apiAs(t *testing.T, h http.Handler, token, method, path, body string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result(), w.Body.String()
}

// TestAPITriageIsRecordedAsTheClient: a body naming a person ("by ig1") is
// never taken as the identity; the decision is the token holder's, and the
// stated name is kept only as text attributed by it (issue 16, item 13).
func TestAPITriageIsRecordedAsTheClient(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	a := numbered(1)
	putAlerts(t, st, a)
	api := NewAPI(APIOptions{Store: st, Token: apiToken})
	resp, body := apiDo(t, api, http.MethodPost, "/api/v1/alerts/"+a.ID+"/triage", `{"outcome":"confirmed-misuse","actor":"ig1","note":"checked with the manager"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("triage: %d %s", resp.StatusCode, body)
	}
	ts, err := st.Triages(ctx, a.ID)
	if err != nil || len(ts) != 1 {
		t.Fatalf("triages: %v %v", ts, err)
	}
	if ts[0].Actor != "api:"+SharedTokenClient || ts[0].Source != "api" {
		t.Errorf("triage recorded as actor %q source %q, want api:%s from api", ts[0].Actor, ts[0].Source, SharedTokenClient)
	}
	if !strings.Contains(ts[0].Note, `on behalf of "ig1"`) || !strings.Contains(ts[0].Note, "checked with the manager") {
		t.Errorf("note %q lacks the stated person as attributed text", ts[0].Note)
	}
	log, _ := st.AuditLog(ctx, 0)
	if len(log) != 1 || log[0].Actor != "api:"+SharedTokenClient {
		t.Errorf("audit: %+v", log)
	}
}

// TestAPIClientsAreRecordedUnderTheirOwnNames: two named clients, each
// token recorded as its own client in triage, silences and audit.
func TestAPIClientsAreRecordedUnderTheirOwnNames(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	clock := newFakeClock()
	a := numbered(1)
	putAlerts(t, st, a)
	api := NewAPI(APIOptions{Store: st, Clock: clock, Clients: []APIClient{{Name: "soc-bot", Token: "tok-soc"}, {Name: "siem", Token: "tok-siem-longer"}}})
	if resp, body := apiAs(t, api, "tok-soc", http.MethodPost, "/api/v1/alerts/"+a.ID+"/triage", `{"outcome":"acknowledged"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("soc-bot triage: %d %s", resp.StatusCode, body)
	}
	ends := clock.Now().Add(2 * time.Hour).Format(time.RFC3339)
	resp, body := apiAs(t, api, "tok-siem-longer", http.MethodPost, "/api/v1/silences", `{"matchers":["check=\"out-of-hours\""],"ends_at":"`+ends+`","comment":"rota change"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("siem silence: %d %s", resp.StatusCode, body)
	}
	var s silence.Silence
	_ = json.Unmarshal([]byte(body), &s)
	if s.CreatedBy != "api:siem" {
		t.Errorf("silence created_by %q, want api:siem", s.CreatedBy)
	}
	for _, tok := range []string{"tok-soc-", "tok-so", "", "tok-siem"} {
		if resp, _ := apiAs(t, api, tok, http.MethodGet, "/api/v1/silences", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", tok, resp.StatusCode)
		}
	}
	ts, _ := st.Triages(ctx, a.ID)
	if len(ts) != 1 || ts[0].Actor != "api:soc-bot" {
		t.Errorf("triages: %+v", ts)
	}
	log, _ := st.AuditLog(ctx, 0)
	var got []string
	for _, e := range log {
		got = append(got, e.Actor+" "+e.Action)
	}
	if strings.Join(got, ", ") != "api:siem silence.create, api:soc-bot triage.acknowledged" {
		t.Errorf("audit = %v", got)
	}
}

// TestAPISilenceBounds: a silence until 2099, one without a comment and one
// matching every alert are refused with a JSON reason (issue 16, item 13).
func TestAPISilenceBounds(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	api := NewAPI(APIOptions{Store: st, Token: apiToken, Clock: clock})
	day := clock.Now().Add(24 * time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"until 2099", `{"created_by":"ig1","matchers":["check=\"out-of-hours\""],"ends_at":"2099-12-31T00:00:00Z","comment":"quiet please"}`, "longer than the maximum of 720h0m0s"},
		{"starts far ahead", `{"created_by":"ig1","matchers":["check=\"out-of-hours\""],"starts_at":"2099-01-01T00:00:00Z","ends_at":"2099-01-02T00:00:00Z","comment":"later"}`, "starts more than 720h0m0s from now"},
		{"no comment", `{"created_by":"ig1","matchers":["check=\"out-of-hours\""],"ends_at":"` + day + `"}`, "comment is required"},
		{"blank comment", `{"created_by":"ig1","matchers":["check=\"out-of-hours\""],"ends_at":"` + day + `","comment":"  \t"}`, "comment is required"},
		{"match-all regexp", `{"created_by":"ig1","matchers":["check=~\".*\""],"ends_at":"` + day + `","comment":"x"}`, "would match every alert"},
		{"match-all negative", `{"created_by":"ig1","matchers":["org!=\"nowhere\""],"ends_at":"` + day + `","comment":"x"}`, "would match every alert"},
	} {
		resp, body := apiDo(t, api, http.MethodPost, "/api/v1/silences", tc.body)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %s, want 422 with %q", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	if ss, _ := st.ListSilences(context.Background(), time.Time{}); len(ss) != 0 {
		t.Errorf("refused silences stored: %+v", ss)
	}
	// Within the bounds: accepted; with allow_match_all, the match-all one too.
	if resp, body := apiDo(t, api, http.MethodPost, "/api/v1/silences", `{"created_by":"ig1","matchers":["check=\"out-of-hours\"","org!=\"x\""],"ends_at":"`+day+`","comment":"rota"}`); resp.StatusCode != http.StatusCreated {
		t.Errorf("bounded silence: %d %s", resp.StatusCode, body)
	}
	open := NewAPI(APIOptions{Store: st, Token: apiToken, Clock: clock, Silences: SilenceLimits{MaxDuration: 100 * 365 * 24 * time.Hour, AllowMatchAll: true}})
	if resp, body := apiDo(t, open, http.MethodPost, "/api/v1/silences", `{"created_by":"ig1","matchers":["check=~\".*\""],"ends_at":"2099-12-31T00:00:00Z","comment":"maintenance"}`); resp.StatusCode != http.StatusCreated {
		t.Errorf("allowed match-all: %d %s", resp.StatusCode, body)
	}
}

// TestStoredSilencesOutOfBoundsAreReported: silences stored before the
// bounds existed are reported at start, not rewritten.
func TestStoredSilencesOutOfBoundsAreReported(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	clock := newFakeClock()
	now := clock.Now()
	for _, s := range []silence.Silence{
		{ID: "sil-ok", Matchers: []string{`check="out-of-hours"`}, StartsAt: now, EndsAt: now.Add(time.Hour), CreatedBy: "ig-jo", Comment: "rota"},
		{ID: "sil-2099", Matchers: []string{`check="out-of-hours"`}, StartsAt: now, EndsAt: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), CreatedBy: "ig1", Comment: "x"},
		{ID: "sil-all", Matchers: []string{`severity=~".*"`}, StartsAt: now, EndsAt: now.Add(time.Hour), CreatedBy: "ig1", Comment: "x"},
		{ID: "sil-ended", Matchers: []string{`severity=~".*"`}, StartsAt: now.Add(-48 * time.Hour), EndsAt: now.Add(-24 * time.Hour), CreatedBy: "ig1"},
	} {
		if err := st.PutSilence(ctx, s, audit.Entry{At: now, Actor: s.CreatedBy, Action: "silence.create", Object: s.ID}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := SilencesOutOfBounds(ctx, st, SilenceLimits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range got {
		ids = append(ids, o.Silence.ID+": "+o.Problem)
	}
	want := []string{
		"sil-2099: lasts 638463h0m0s, longer than the maximum of 720h0m0s",
		`sil-all: its matchers would match every alert (at least one must not match an empty label, e.g. check="out-of-hours")`,
	}
	if strings.Join(ids, "\n") != strings.Join(want, "\n") {
		t.Errorf("reported:\n%s\nwant:\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
	if s, _ := st.Silence(ctx, "sil-2099"); !s.EndsAt.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("stored silence rewritten: %+v", s)
	}
}

// TestAPIClientPermissions: a client may do only what its permissions name
// (none named: all); anything else is 403 with a JSON reason.
func TestAPIClientPermissions(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	a := numbered(1)
	putAlerts(t, st, a)
	api := NewAPI(APIOptions{Store: st, Clock: clock, Clients: []APIClient{
		{Name: "reader", Token: "tok-read", Permissions: []string{PermissionRead}},
		{Name: "triager", Token: "tok-triage", Permissions: []string{PermissionTriage}},
		{Name: "all", Token: "tok-all"},
	}})
	ends := clock.Now().Add(time.Hour).Format(time.RFC3339)
	silence := `{"matchers":["check=\"out-of-hours\""],"ends_at":"` + ends + `","comment":"rota"}`
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/audit", ""},
		{http.MethodGet, "/api/v1/silences", ""},
		{http.MethodGet, "/api/v1/alerts/" + a.ID + "/triage", ""},
		{http.MethodPost, "/api/v1/alerts/" + a.ID + "/triage", `{"outcome":"acknowledged"}`},
		{http.MethodPost, "/api/v1/silences", silence},
	}
	for _, tc := range []struct {
		token string
		want  []int // per request
	}{
		{"tok-read", []int{200, 200, 200, 403, 403}},
		{"tok-triage", []int{403, 403, 403, 201, 403}},
		{"tok-all", []int{200, 200, 200, 201, 201}},
	} {
		for i, req := range requests {
			resp, body := apiAs(t, api, tc.token, req.method, req.path, req.body)
			if resp.StatusCode != tc.want[i] {
				t.Errorf("%s %s %s: %d %s, want %d", tc.token, req.method, req.path, resp.StatusCode, body, tc.want[i])
			}
			if resp.StatusCode == http.StatusForbidden && !strings.Contains(body, `"error":"API client `) {
				t.Errorf("403 without a JSON reason: %s", body)
			}
		}
	}
}

// TestAPIReadsAreInTheViewLog: every read of triage notes, silences or the
// audit trail over the API is recorded, under the client's own name, before
// the answer is sent; a read the view log refuses shows nothing.
func TestAPIReadsAreInTheViewLog(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	a := numbered(1)
	putAlerts(t, st, a)
	var (
		reads  []APIRead
		refuse bool
	)
	api := NewAPI(APIOptions{Store: st, Clock: clock, Clients: []APIClient{{Name: "soc-bot", Token: "tok"}},
		RecordRead: func(_ context.Context, r APIRead) error {
			if refuse {
				return errors.New("disk full")
			}
			reads = append(reads, r)
			return nil
		}})
	ends := clock.Now().Add(time.Hour).Format(time.RFC3339)
	if resp, body := apiAs(t, api, "tok", http.MethodPost, "/api/v1/silences", `{"matchers":["check=\"out-of-hours\""],"ends_at":"`+ends+`","comment":"rota"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create silence: %d %s", resp.StatusCode, body)
	}
	if len(reads) != 0 {
		t.Fatalf("a write recorded as a read: %+v", reads)
	}
	for _, tc := range []struct {
		path, kind, target string
		rows               int
	}{
		{"/api/v1/alerts/" + a.ID + "/triage", APIReadTriage, a.ID, 0},
		{"/api/v1/silences?all=true", APIReadSilences, "all=true", 1},
		{"/api/v1/audit?limit=5", APIReadAudit, "", 1},
	} {
		reads = nil
		resp, body := apiAs(t, api, "tok", http.MethodGet, tc.path, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", tc.path, resp.StatusCode, body)
		}
		want := APIRead{At: clock.Now().UTC(), Client: "api:soc-bot", Kind: tc.kind, Target: tc.target, Rows: tc.rows}
		if len(reads) != 1 || reads[0] != want {
			t.Errorf("GET %s recorded %+v, want exactly %+v", tc.path, reads, want)
		}
		refuse = true
		resp, body = apiAs(t, api, "tok", http.MethodGet, tc.path, "")
		refuse = false
		if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "rota") || strings.Contains(body, "out-of-hours") {
			t.Errorf("GET %s with the view log refusing: %d %s, want 503 and nothing shown", tc.path, resp.StatusCode, body)
		}
	}
}
