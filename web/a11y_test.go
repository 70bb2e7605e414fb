package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeVersion is the axe-core release scripts/install-axe pins (with its
// integrity); TestAxePinMatchesTheInstaller keeps the two in step.
const axeVersion = "4.14.1"

// axeSource returns axe.min.js: $DPIAWATCH_AXE, or what scripts/install-axe
// put in .cache. Without it the accessibility test skips, and fails under
// CI or DPIAWATCH_REQUIRE_CHROMIUM=1 as the browser tests do.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("DPIAWATCH_AXE")
	if path == "" {
		path = filepath.Join("..", ".cache", "axe-core", axeVersion, "package", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv(requireChromiumEnv) == "1" {
			t.Fatalf("axe-core is not installed (%v); run scripts/install-axe", err)
		}
		t.Skipf("axe-core is not installed (%v); run scripts/install-axe, or set %s=1 to fail instead", err, requireChromiumEnv)
	}
	return string(b)
}

func TestAxePinMatchesTheInstaller(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "scripts", "install-axe"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`AXE_CORE_VERSION:-([0-9.]+)\}`).FindSubmatch(b)
	if m == nil || string(m[1]) != axeVersion {
		t.Errorf("scripts/install-axe pins %q, the test %q", m, axeVersion)
	}
}

// axeRun runs axe-core over the page (WCAG 2.2 A and AA, and axe's best
// practices) and returns its violations as "rule (impact): help — nodes".
const axeRun = `(async () => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}});
  return JSON.stringify(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(', ')));
})()`

// narrow is the phone width every page must fit (issue 13).
const narrow = 390

// a11yPage is one page a role sees: how to reach it from wherever the
// browser is, and what shows it is there.
type a11yPage struct {
	name   string
	reach  []chromedp.Action[chromedp.Void]
	marker string // an XPath that is visible once the page is there
}

func visit(base, path, marker string) a11yPage {
	name := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(path), "-"), "-")
	return a11yPage{name: name, reach: []chromedp.Action[chromedp.Void]{chromedp.Navigate(base + path)}, marker: marker}
}

// TestAccessibilityByRole signs in as the IG team, a manager and the DPO
// in chromium and, on every page each of them reaches (error pages and
// forms sent back with errors included), runs axe-core at 1280 px and at
// 390 px and requires no violation, and no sideways scrolling of the page
// at 390 px (document.documentElement.scrollWidth ≤ 390: tables scroll in
// their own container). Screenshots of every page at both widths go to the
// artifacts directory (docs/testing.md).
func TestAccessibilityByRole(t *testing.T) {
	axe := axeSource(t)
	chromium(t)
	gate := make(chan struct{})                                                                   // holds the DPO's export half-way, for its progress page
	f := newFixture(t, fixtureOpts{evidence: true, exportGate: gate, inForce: sampleReference()}) // samples show local references
	addQueueAlerts(t, f, 60)                                                                      // two pages of queue
	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now()) // the week has ended: samples are drawn
	base := f.srv.URL
	sample := sampleURL(teamA)
	h1 := func(text string) string { return `//h1[contains(normalize-space(), "` + text + `")]` }
	common := []a11yPage{
		visit(base, "/overview", h1("Overview")),
		visit(base, "/alerts", h1("Alerts")),
		visit(base, "/alerts?status=all&page=2", h1("Alerts")),
		visit(base, "/alerts/"+alertA, `//h2[text()="Evidence timeline"]`),
		visit(base, "/actors/"+org+"/"+actorA, h1("Worker")),
		visit(base, "/audit/routine", h1("Routine audits")),
		visit(base, sample, h1("Team")),
		visit(base, "/no/such/page", h1("Page not found")),
	}
	roles := []struct {
		user  string
		pages []a11yPage
	}{
		{"ig", append(common,
			a11yPage{name: "triage-errors", reach: []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(base + "/alerts/" + alertB), chromedp.WaitVisible(chromedp.ID("note")),
				chromedp.SendKeys(chromedp.ID("note"), "no outcome chosen"), chromedp.Click(`//button[text()="Record outcome"]`),
			}, marker: `//div[contains(@class, "govuk-error-summary")]`},
			a11yPage{name: "triage-action-errors", reach: []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(base + "/alerts/" + alertB), chromedp.WaitVisible(chromedp.ID("owner")),
				chromedp.Click(chromedp.ID("outcome-2")), chromedp.SendKeys(chromedp.ID("owner"), "Registered manager"),
				chromedp.SendKeys(chromedp.ID("due-day"), "31"), chromedp.SendKeys(chromedp.ID("due-month"), "4"), chromedp.SendKeys(chromedp.ID("due-year"), "2026"),
				chromedp.Click(`//button[text()="Record outcome"]`),
			}, marker: `//a[@href="#due-day"]`},
			a11yPage{name: "triage-action", reach: []chromedp.Action[chromedp.Void]{
				chromedp.SetValue(chromedp.ID("due-day"), "2"), chromedp.Click(`//button[text()="Record outcome"]`),
			}, marker: `//h2[@id="history"]/following-sibling::ol//strong[text()="Confirmed misuse"]`},
		)},
		{"mgr-a", append(common,
			a11yPage{name: "review-errors", reach: []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(base + sample), chromedp.WaitVisible(chromedp.ID("save")),
				chromedp.SendKeys(chromedp.ID("note-1"), "no decision chosen"), chromedp.Click(chromedp.ID("save")),
			}, marker: `//div[contains(@class, "govuk-error-summary")]`},
			a11yPage{name: "review-saved", reach: []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(base + sample), chromedp.WaitVisible(chromedp.ID("save")),
				chromedp.Click(`//label[@for="review-0-0"]`), chromedp.Click(`//label[@for="review-2-1"]`), chromedp.Click(chromedp.ID("save")),
			}, marker: `//div[@id="saved"]`},
			a11yPage{name: "note-errors", reach: []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(base + "/alerts/" + alertA), chromedp.WaitVisible(chromedp.ID("context-note")),
				chromedp.Click(`//button[text()="Add note"]`),
			}, marker: `//a[@href="#context-note"]`},
			a11yPage{name: "note-added", reach: []chromedp.Action[chromedp.Void]{
				chromedp.SendKeys(chromedp.ID("context-note"), "Expected: covering a colleague's caseload that evening."),
				chromedp.Click(`//button[text()="Add note"]`),
			}, marker: `//p[contains(@class, "app-history__text")]`},
		)},
		{"dpo", append(common,
			visit(base, "/evidence", h1("Export evidence")),
			visit(base, "/audit/views", h1("Who viewed")),
			visit(base, "/alerts.csv/x", h1("Page not found")),
			a11yPage{name: "export-errors", reach: []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(base + "/evidence"), chromedp.WaitVisible(chromedp.ID("from")),
				chromedp.SendKeys(chromedp.ID("from"), "1 March"), chromedp.Click(`//button[text()="Export evidence pack"]`),
			}, marker: `//div[contains(@class, "govuk-error-summary")]`},
			a11yPage{name: "export-running", reach: []chromedp.Action[chromedp.Void]{
				chromedp.SetValue(chromedp.ID("from"), "2026-03-01"), chromedp.SetValue(chromedp.ID("to"), "2026-03-31"),
				chromedp.Click(`//button[text()="Export evidence pack"]`),
			}, marker: `//p[@id="export-status" and contains(., "Step 3 of")]`},
			a11yPage{name: "export-ready", reach: []chromedp.Action[chromedp.Void]{
				chromedp.Func(func(context.Context, *chromedp.Target) error { close(gate); return nil }),
			}, marker: `//h2[text()="Evidence pack ready"]`},
		)},
	}
	dir := filepath.Join(artifacts(t), "a11y")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, role := range roles {
		t.Run(role.user, func(t *testing.T) {
			br := startBrowser(t, 1280, 900)
			check := func(name string) {
				t.Helper()
				for _, width := range []int{1280, narrow} {
					if err := chromedp.Do(br.ctx, chromedp.EmulateViewport(int64(width), 900), chromedp.Evaluate[chromedp.Void](axe)); err != nil {
						t.Fatalf("%s at %d px: %v", name, width, err)
					}
					out, err := chromedp.Run(br.ctx, chromedp.Evaluate[string](axeRun, chromedp.EvalAwaitPromise))
					if err != nil {
						t.Fatalf("%s at %d px: axe: %v", name, width, err)
					}
					var violations []string
					if err := json.Unmarshal([]byte(out), &violations); err != nil {
						t.Fatal(err)
					}
					for _, v := range violations {
						t.Errorf("%s at %d px: %s", name, width, v)
					}
					if width == narrow {
						sw, err := chromedp.Run(br.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
						if err != nil {
							t.Fatal(err)
						}
						if sw > narrow {
							wide, _ := chromedp.Run(br.ctx, chromedp.Evaluate[string](widest))
							t.Errorf("%s at %d px is %d px wide (%s)", name, narrow, sw, wide)
						}
					}
					br.screenshot(t, dir, fmt.Sprintf("%s-%s-%d", role.user, name, width))
				}
				// A full-page screenshot under an emulated viewport leaves
				// chromium's input misplaced until the viewport is set again.
				if err := chromedp.Do(br.ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(br.ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
				t.Fatal(err)
			}
			check("login")
			if err := chromedp.Do(br.ctx, chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(`//div[contains(@class, "govuk-error-summary")]`)); err != nil {
				t.Fatal(err)
			}
			check("login-errors")
			if err := chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.ID("username"), role.user), chromedp.SendKeys(chromedp.ID("password"), password),
				chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(h1("Overview"))); err != nil {
				t.Fatal(err)
			}
			for _, p := range role.pages {
				if err := chromedp.Do(br.ctx, append(append([]chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(1280, 900)}, p.reach...), chromedp.WaitVisible(p.marker))...); err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				check(p.name)
			}
			var problems []string
			for _, p := range br.consoleProblems() {
				// The error pages and forms sent back with errors answer
				// 4xx on purpose; chromium logs each.
				if !regexp.MustCompile(`Failed to load resource: the server responded with a status of 40[034] `).MatchString(p) {
					problems = append(problems, p)
				}
			}
			if len(problems) > 0 {
				t.Errorf("browser console:\n%s", strings.Join(problems, "\n"))
			}
		})
	}
}

// widest names the elements that stick out past the viewport (outside the
// containers that scroll on their own), for the failure message.
const widest = `(() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.app-scroll, .app-figure')) continue;
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 1 && out.length < 6) out.push(el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') + ' ' + Math.round(r.right) + 'px');
  }
  return out.join('; ');
})()`
