package daemon

import (
	"context"
	"crypto/ed25519"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testlog"
	"github.com/dpiawatch/dpiawatch/testwait"
	"github.com/dpiawatch/dpiawatch/web"
)

// displayRef is the local reference subjects.csv gives c-0042: it must
// reach the web UI of an entitled manager and nothing else (no reference
// of the test, "WC-R…", may).
const displayRef = "WC-R14 Jo Bloggs"

// TestDisplayRefsStayInTheUI runs a daemon whose reference data has a
// subjects.csv, raises an alert about the person it names, and checks that
// the display reference is in the manager's routine-audit sample (the
// daemon hands the web UI the reference data in force) and in none of:
// the JSON Lines notifications, the daemon's log
// (at debug level), the stored reference snapshot, an evidence pack with
// identities.
func TestDisplayRefsStayInTheUI(t *testing.T) {
	dir := t.TempDir()
	const pass = "a long enough passphrase"
	hash, err := web.HashPassword(pass, web.PasswordParams{Memory: 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"accounts.yaml": "users:\n  - {username: mgr, role: manager, teams: [webster-court], password: '" + hash + "'}\n",
		"pseudonym.key": "pseudonym-key-for-tests-0123456789",
		"hook.secret":   "webhook-secret-for-tests",
		// c-0050's reference must not follow the no-business-need alert
		// about them.
		"subjects.csv":      "subject_id,org,display_ref\nc-0042,st-martins," + displayRef + "\nc-0050,st-martins,WC-R22 Sam Smith\n",
		"relationships.csv": "actor_id,team,subject_id,relation,valid_from,valid_to\nu-07,,c-0042,key-worker,2026-01-01T00:00:00Z,\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	jsonl := filepath.Join(dir, "alerts.jsonl")
	dpias, _ := filepath.Abs("../configs/dpia")
	cfgText := `dpias:
  - file: ` + dpias + `/st-martins-webster-court.yaml
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
ingest:
  event_time: {max_age: 876000h}
store:
  embedded: {path: ` + filepath.Join(dir, "d.db") + `}
reference:
  dir: ` + dir + `
checks:
  lateness: 0s
alerting:
  console: {enabled: false}
  jsonl: {path: ` + jsonl + `}
  pseudonym_key: {file: ` + filepath.Join(dir, "pseudonym.key") + `}
web:
  enabled: true
  accounts_file: ` + filepath.Join(dir, "accounts.yaml") + `
  pseudonym_key: {file: ` + filepath.Join(dir, "pseudonym.key") + `}
http:
  listen: 127.0.0.1:0
`
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	var logs testlog.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(ctx, Options{Config: cfg, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Out of hours on a Wednesday night (u-07 has no shifts), then a later
	// access that takes the feed past the end of the week.
	evs := officeWorkerViews(time.Date(2026, 3, 4, 23, 10, 0, 0, time.UTC))
	evs = append(evs, event.Event{ID: "e-later", Time: time.Date(2026, 3, 17, 10, 0, 0, 0, time.UTC), Org: "st-martins", System: "logmycare",
		Action: event.ActionView, Actor: event.Actor{ID: "u-08", Role: "support-worker", Team: "webster-court"},
		Subject: event.Subject{ID: "c-0050"}, Record: event.Record{Type: "care-plan", ID: "cp-2"}, Outcome: event.OutcomeSuccess})
	if _, err := d.stream.Process(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if as, err := d.Store().Alerts(ctx, store.AlertFilter{}); err != nil || len(as) == 0 {
		t.Fatalf("no alert was raised: %v %v", as, err)
	}
	testwait.For(t, 10*time.Second, "the alerts in the JSON Lines file", func() bool {
		b, _ := os.ReadFile(jsonl)
		return strings.Contains(string(b), "no-business-need") && strings.Contains(string(b), "out-of-hours")
	})

	// The feed is complete past the week (the Kafka consumer records it;
	// Process does not).
	if _, err := d.Store().Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{State: []store.StateEntry{store.CompletenessEntry("st-martins", time.Date(2026, 3, 17, 0, 0, 0, 0, time.UTC))}}, nil
	}); err != nil {
		t.Fatal(err)
	}

	// The manager sees the person by their local reference.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		t.Helper()
		resp, err := c.Get(d.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(get("/login"))
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	resp, err := c.PostForm(d.URL()+"/login", url.Values{"csrf": {m[1]}, "username": {"mgr"}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sample := get("/audit/routine/st-martins/webster-court/2026-W10"); !strings.Contains(sample, displayRef) || !strings.Contains(sample, "Key worker") {
		t.Fatalf("the manager's sample lacks the local reference:\n%s", sample)
	}

	// Nothing else holds it.
	pack := t.TempDir()
	if _, err := evidence.Export(ctx, evidence.ExportOptions{Options: evidence.Options{Config: cfg, DPIA: "st-martins-webster-court",
		From: "2026-03-01", To: "2026-03-31", Source: d.Store().(evidence.Source), Identities: true}, RequestedBy: "dpo",
		Dir: filepath.Join(pack, "pack"), Key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), Store: "embedded", Generator: "test"}); err != nil {
		t.Fatal(err)
	}
	var packed strings.Builder
	if err := filepath.WalkDir(pack, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		packed.Write(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := d.Store().(store.ReferenceSnapshots).ReferenceAt(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	notified, _ := os.ReadFile(jsonl)
	for where, text := range map[string]string{"JSON Lines notifications": string(notified), "log": logs.String(), "evidence pack": packed.String()} {
		if text == "" {
			t.Errorf("the %s is empty: the check proves nothing", where)
		}
		if strings.Contains(text, "WC-R") {
			t.Errorf("the %s holds the display reference", where)
		}
	}
	if len(snap.Data.Subjects) != 0 {
		t.Errorf("the stored reference snapshot holds display references: %+v", snap.Data.Subjects)
	}
}
