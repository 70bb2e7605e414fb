package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// RequireChromiumEnv makes a missing chromium a failure rather than a skip
// (CI sets it, as does CI=true).
const requireChromiumEnv = "DPIAWATCH_REQUIRE_CHROMIUM"

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" || os.Getenv(requireChromiumEnv) == "1" {
		t.Fatal("chromium is not installed; run scripts/install-chromium")
	}
	t.Skip("chromium is not installed (scripts/install-chromium); set " + requireChromiumEnv + "=1 to fail instead")
	return ""
}

// artifacts is where screenshots go: $DPIAWATCH_ARTIFACTS or a fresh temp
// directory that outlives the test, so a person can look at them.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DPIAWATCH_ARTIFACTS")
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "dpiawatch-web-screenshots-")
	} else {
		dir = filepath.Join(dir, "web")
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser is a headless chromium for one test, and what its console
// reported: script errors, CSP violations, failed loads.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	stop     func()
}

// startBrowser starts chromium at width × height; it is stopped when the
// test ends, and b.consoleProblems says what its console reported.
func startBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	b := &browser{ctx: bctx}
	cctx, ccancel := context.WithCancel(bctx)
	done := make(chan struct{})
	messages := chromedp.Console(cctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				b.mu.Lock()
				b.problems = append(b.problems, m.String()+" "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			ccancel()
			<-done
			bcancel()
			acancel()
			cancel()
		})
	}
	t.Cleanup(b.stop)
	return b
}

// consoleProblems stops listening and returns what the console reported.
func (b *browser) consoleProblems() []string {
	b.stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.problems
}

// screenshot writes the whole page as dir/name.png.
func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// step runs actions and keeps a screenshot of where they led.
func (b *browser) step(t *testing.T, dir, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v (screenshots so far in %s)", name, err, dir)
	}
	b.screenshot(t, dir, name)
}

// TestBrowser drives Debian's chromium through the UI as an IG officer:
// sign in, overview, filter the queue, open an alert, triage it, open the
// worker's page; and checks keyboard access and that nothing the CSP
// blocks (or any script error) shows up in the console.
func TestBrowser(t *testing.T) {
	br := startBrowser(t, 1280, 900)
	f := newFixture(t, fixtureOpts{})
	dir := artifacts(t)
	bctx := br.ctx
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		br.step(t, dir, name, actions...)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	base := f.srv.URL

	// Not signed in: any page lands on the login page.
	step("01-login", chromedp.Navigate(base+"/alerts"), chromedp.WaitVisible(chromedp.ID("username")))
	// Keyboard: the first Tab reaches the skip link.
	if err := chromedp.Do(bctx, chromedp.KeyEvent(kb.Tab)); err != nil {
		t.Fatal(err)
	}
	focused := eval(`document.activeElement.className`)
	step("02-overview",
		chromedp.SendKeys(chromedp.ID("username"), "ig"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(`//h1[text()="Overview"]`),
	)
	bodyClass := eval(`document.body.className`)

	step("03-queue-filtered",
		chromedp.Click(`//a[text()="Alerts"]`),
		chromedp.WaitVisible(chromedp.ID("f-check")),
		chromedp.SetValue(chromedp.ID("f-check"), "no-business-need"),
		chromedp.Click(`//button[text()="Apply filters"]`),
		chromedp.WaitReady(`//select[@id="f-check"]/option[@value="no-business-need" and @selected]`),
	)
	queueText := text("main")

	step("04-alert",
		chromedp.Click(`//table//a[starts-with(@href, "/alerts/a-")]`),
		chromedp.WaitVisible(`//h2[text()="Evidence timeline"]`),
	)
	alertText := text("main")
	step("05-alert-triaged",
		chromedp.Click(`//label[text()="Confirmed misuse"]`),
		chromedp.SendKeys(chromedp.ID("note"), "discussed with the worker's manager"),
		chromedp.Click(`//button[text()="Record outcome"]`),
		chromedp.WaitVisible(`//dd/strong[text()="Confirmed misuse"]`),
	)
	status, err := chromedp.Run(bctx, chromedp.Text(`//dt[text()="Status"]/following-sibling::dd/strong`))
	if err != nil {
		t.Fatal(err)
	}

	step("06-actor",
		chromedp.Click(`//dd/a[starts-with(@href, "/actors/")]`),
		chromedp.WaitVisible(chromedp.CSS("svg.app-heatmap")),
	)
	actorText := text("main")
	problems := br.consoleProblems()

	if !strings.Contains(focused, "govuk-skip-link") {
		t.Errorf("first Tab focused %q, want the skip link", focused)
	}
	if !strings.Contains(bodyClass, "govuk-frontend-supported") {
		t.Errorf("GOV.UK Frontend's script did not run under the CSP (body class %q)", bodyClass)
	}
	if !strings.Contains(queueText, actorB) || strings.Contains(queueText, actorA) {
		t.Errorf("filtered queue shows the wrong alerts:\n%s", queueText)
	}
	for _, want := range []string{"no-business-need", subjectB, recordB, "evidence"} {
		if !strings.Contains(alertText, want) {
			t.Errorf("alert page lacks %q", want)
		}
	}
	if status != "Confirmed misuse" {
		t.Errorf("status after triage %q", status)
	}
	if got, err := f.store.WebAlert(t.Context(), alertB); err != nil || got.Triage == nil || got.Triage.By != "ig" {
		t.Errorf("triage not stored: %+v %v", got.Triage, err)
	}
	if !strings.Contains(actorText, "Worker "+actorB) {
		t.Errorf("actor page:\n%s", actorText)
	}
	if len(problems) > 0 {
		t.Errorf("browser console:\n%s", strings.Join(problems, "\n"))
	}
}

// TestBrowserRoutineAudit drives chromium through a manager's routine
// audit: sign in, open the week's coverage, open their team's sample,
// record a review, and see it counted.
func TestBrowserRoutineAudit(t *testing.T) {
	br := startBrowser(t, 1280, 900)
	f := newFixture(t, fixtureOpts{})
	f.now.Add(7 * 24 * time.Hour) // the fixture's week has ended
	f.complete(t, f.now.Now())    // and the feed is complete up to its end
	dir := artifacts(t)
	bctx := br.ctx
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		br.step(t, dir, name, actions...)
	}
	base := f.srv.URL
	step("11-manager-login", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "mgr-a"), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(`//h1[text()="Overview"]`))
	step("12-routine-audits", chromedp.Click(`//a[text()="Routine audits"]`), chromedp.WaitVisible(`//h1[text()="Routine audits"]`))
	step("13-sample", chromedp.Click(`//table//a[text()="`+teamA+`"]`), chromedp.WaitVisible(chromedp.ID("save")))
	step("14-reviewed",
		chromedp.Click(`//label[@for="review-0-1"]`),
		chromedp.SendKeys(chromedp.ID("note-0"), "asked the worker's supervisor"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(`//div[@id="saved"]//p[normalize-space()="Reviews saved: 1 access"]`),
		chromedp.WaitVisible(`//strong[@id="outcome-0" and normalize-space()="Not reasonable: referred to the IG team"]`),
	)
	step("15-coverage", chromedp.Click(`//a[text()="Back to routine audits"]`), chromedp.WaitVisible(chromedp.CSS("svg.app-bars")))
	coverage, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	problems := br.consoleProblems()
	rs, err := f.store.AuditReviews(t.Context(), org, teamA, "2026-W10")
	if err != nil || len(rs) != 1 || rs[0].N != 0 || rs[0].Outcome != "refer" || rs[0].Reviewer != "mgr-a" || rs[0].Note != "asked the worker's supervisor" {
		t.Errorf("review stored: %+v %v", rs, err)
	}
	if !strings.Contains(coverage, "10%") {
		t.Errorf("coverage after one review of ten:\n%s", coverage)
	}
	if len(problems) > 0 {
		t.Errorf("browser console:\n%s", strings.Join(problems, "\n"))
	}
}
