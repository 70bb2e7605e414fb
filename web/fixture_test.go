package web_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alert"
	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/dpia"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/testlog"
	"github.com/dpiawatch/dpiawatch/web"
)

// The fixture: one org, two teams. Worker u-17 (webster-court) and worker
// u-99 (other-house) each have one alert about a different person. Every
// identifier below is what must never leak to the wrong viewer.
const (
	org        = "st-martins"
	teamA      = "webster-court"
	teamB      = "other-house"
	actorA     = "u-17"
	actorA2    = "u-18" // a peer of actorA
	actorB     = "u-99"
	subjectA   = "c-0042"
	subjectB   = "c-0777"
	recordA    = "cp-981"
	recordB    = "cp-555"
	password   = "correct horse battery"
	pseudonymA = "subj-aaaaaaaaaaaa"
)

var (
	alertA = alert.ID(org, "out-of-hours", "out-of-hours", actorA, subjectA, "logmycare", "e-a1")
	alertB = alert.ID(org, "no-business-need", "no-relationship", actorB, subjectB, "logmycare", "e-b1")
	t0     = time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC) // a Monday evening
)

// cheap keeps the tests fast; production uses web.DefaultPasswordParams.
var cheap = web.PasswordParams{Memory: 64, Time: 1, Threads: 1}

func ev(id, actor, team, subject, record string, at time.Time) event.Event {
	return event.Event{ID: id, Time: at, Org: org, System: "logmycare", Action: event.ActionView,
		Actor:   event.Actor{ID: actor, Role: "support-worker", Team: team, Org: org},
		Subject: event.Subject{ID: subject}, Record: event.Record{Type: "care-plan", ID: record},
		Session: event.Session{ID: "s-" + actor, Device: "tab-03", IP: "10.2.0.14"}, Outcome: event.OutcomeSuccess}
}

type fixture struct {
	logs  testlog.Buffer // what the server logged, at debug level
	srv   *httptest.Server
	web   *web.Server
	store sqlite.WebStore
	now   *clock
	reg   *prometheus.Registry
	sq    *sqlite.Store
	wakes atomic.Int64 // OnTriage calls
	// exportTmp is where evidence exports are built.
	exportTmp string
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixtureOpts struct {
	externalURL string
	oidc        *web.OIDCConfig
	evidence    bool // let the DPO export evidence packs
	// trustedProxies: X-Forwarded-For from these is believed.
	trustedProxies []netip.Prefix
	accounts       []web.Account // more accounts, their passwords already hashed
	// accountsFile: the accounts come from this file instead, reloaded
	// every few milliseconds while Run runs.
	accountsFile string
	// inForce: the reference data in force (web.Options.InForce); nil:
	// none.
	inForce *reference.Data
	// exportGate, when set, holds every evidence export at its first
	// alert query until it is closed.
	exportGate chan struct{}
}

// evidenceConfig is a minimal configuration for evidence.Export: the
// fixture's org and its DPIA register as shipped.
func evidenceConfig(t *testing.T) *config.Config {
	t.Helper()
	reg, err := filepath.Abs(filepath.Join("..", "configs", "dpia", "st-martins-webster-court.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "dpiawatch.yaml")
	yaml := "dpias:\n  - file: " + reg + "\norgs:\n  - {id: " + org + ", name: St Martins, dpia: st-martins-webster-court, timezone: Europe/London}\n" +
		"store:\n  embedded: {path: " + filepath.Join(dir, "unused.db") + "}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path)
	if cfg == nil {
		t.Fatalf("evidence config: %v", diags)
	}
	return cfg
}

func newFixture(t *testing.T, fo fixtureOpts) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "web.db"), Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var evs []event.Event
	for i := range 6 {
		evs = append(evs, ev(fmt.Sprintf("e-a%d", i+1), actorA, teamA, subjectA, recordA, t0.Add(time.Duration(i)*time.Minute)))
		evs = append(evs, ev(fmt.Sprintf("e-b%d", i+1), actorB, teamB, subjectB, recordB, t0.Add(time.Duration(i)*time.Minute)))
		evs = append(evs, ev(fmt.Sprintf("e-p%d", i+1), actorA2, teamA, "c-0001", "cp-1", t0.Add(-10*time.Hour+time.Duration(i)*time.Minute)))
	}
	mk := func(id, check, pattern, actor, subject string, sev alert.Severity, risks []string, first string) alert.Alert {
		a := alert.Alert{ID: id, Check: check, Pattern: pattern, Severity: sev, Org: org, ActorID: actor, SubjectID: subject,
			DPIA: "st-martins-webster-court", Risks: risks, RiskTitles: []string{"Misuse by users"},
			Explanation: "Opened a care plan at 21:14 on a Monday, outside their shifts."}
		for i := range 3 {
			a.AddEvent(fmt.Sprintf("%s%d", first, i+1), t0.Add(time.Duration(i)*time.Minute))
		}
		return a
	}
	as := []alert.Alert{
		mk(alertA, "out-of-hours", "out-of-hours", actorA, subjectA, alert.SeverityMedium, []string{"R4"}, "e-a"),
		mk(alertB, "no-business-need", "no-relationship", actorB, subjectB, alert.SeverityHigh, []string{"R3"}, "e-b"),
	}
	if _, err := st.Apply(ctx, evs, nil, func([]event.Event) (store.Effects, error) { return store.Effects{Alerts: as}, nil }); err != nil {
		t.Fatal(err)
	}
	ws, err := st.Web(ctx)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := web.ParseAccounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []web.Account{
		{Username: "ig", Role: web.RoleIGTeam},
		{Username: "mgr-a", Role: web.RoleManager, Teams: []string{teamA}},
		{Username: "mgr-none", Role: web.RoleManager, Teams: []string{"no-such-team"}},
		{Username: "dpo", Role: web.RoleDPO},
		{Username: "admin", Role: web.RoleAdmin},
		{Username: "other-org", Role: web.RoleIGTeam, Orgs: []string{"wiltshire-council"}},
	} {
		if a.Password, err = web.HashPassword(password, cheap); err != nil {
			t.Fatal(err)
		}
		if err := accts.Put(a); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range fo.accounts {
		if err := accts.Put(a); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{store: ws, now: &clock{t: t0.Add(2 * time.Hour)}, reg: prometheus.NewRegistry(), sq: st}
	var ev *web.EvidenceOptions
	if fo.evidence {
		f.exportTmp = t.TempDir()
		var src evidence.Source = st
		if fo.exportGate != nil {
			src = gatedSource{st, fo.exportGate}
		}
		ev = &web.EvidenceOptions{Config: evidenceConfig(t), Source: src, Key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)),
			StoreKind: "embedded", Generator: "dpiawatch test", TempDir: f.exportTmp,
			Pseudonym: func(kind, id string) string { return "pseud-" + kind }}
	}
	f.srv = httptest.NewUnstartedServer(nil)
	ext := fo.externalURL
	if ext == "" {
		ext = "http://" + f.srv.Listener.Addr().String()
	}
	london, _ := time.LoadLocation("Europe/London")
	if fo.accountsFile != "" {
		accts = nil
	}
	var inForce func() web.ReferenceIndex
	if fo.inForce != nil {
		x := reference.NewIndex(fo.inForce)
		inForce = func() web.ReferenceIndex { return x }
	}
	f.web, err = web.New(ctx, web.Options{
		Store: ws, Accounts: accts, AccountsFile: fo.accountsFile, AccountsReloadInterval: 5 * time.Millisecond,
		OIDC: fo.oidc, ExternalURL: ext,
		Orgs:       []web.Org{{ID: org, Name: "St Martins", DPIA: "st-martins-webster-court", Location: london}, {ID: "wiltshire-council", DPIA: "wiltshire-childrens-cms"}},
		DPIAs:      []*dpia.Register{{ID: "st-martins-webster-court", Title: "Webster Court CRM", Risks: []dpia.Risk{{ID: "R3", Title: "Access with no business need"}, {ID: "R4", Title: "Misuse by users"}}}},
		RiskChecks: map[string]map[string][]string{"st-martins-webster-court": {"R4": {"out-of-hours"}}},
		Pseudonym: func(s string) string {
			if s == subjectA {
				return pseudonymA
			}
			return "subj-bbbbbbbbbbbb"
		},
		Registerer: f.reg, Now: f.now.Now, Reference: st, Evidence: ev,
		OnTriage:       func() { f.wakes.Add(1) },
		TrustedProxies: fo.trustedProxies, InForce: inForce,
		Logger: slog.New(slog.NewTextHandler(&f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.web.Close) // running exports end before their directory goes
	f.srv.Config.Handler = f.web
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// gatedSource is the store as an evidence source whose alert queries wait
// for gate to close (or the export to end): an export caught half-way.
type gatedSource struct {
	*sqlite.Store
	gate chan struct{}
}

func (g gatedSource) EvidenceAlerts(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.AlertGroup, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Store.EvidenceAlerts(ctx, q)
}

// client is a browser-like client: a cookie jar, redirects not followed so
// that tests see them.
func (f *fixture) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", body)
	}
	return m[1]
}

// login signs user in and returns the client and a page's CSRF token.
func (f *fixture) login(t *testing.T, user string) (*http.Client, string) {
	t.Helper()
	c := f.client(t)
	return c, f.loginAs(t, c, user, password)
}

// loginAs signs user in on c with pass and returns a page's CSRF token.
func (f *fixture) loginAs(t *testing.T, c *http.Client, user, pass string) string {
	t.Helper()
	_, body := get(t, c, f.srv.URL+"/login")
	resp, body := post(t, c, f.srv.URL+"/login", url.Values{"csrf": {csrfOf(t, body)}, "username": {user}, "password": {pass}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/overview" {
		t.Fatalf("login %s: %s\n%s", user, resp.Status, body)
	}
	_, body = get(t, c, f.srv.URL+"/overview")
	return csrfOf(t, body)
}

func assertAbsent(t *testing.T, where, body string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("%s: body contains %q", where, s)
		}
	}
}

// complete records the fixture org's feed as complete up to at, as the
// daemon does with a batch.
func (f *fixture) complete(t *testing.T, at time.Time) {
	t.Helper()
	if _, err := f.sq.Apply(t.Context(), nil, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{State: []store.StateEntry{store.CompletenessEntry(org, at)}}, nil
	}); err != nil {
		t.Fatal(err)
	}
}
