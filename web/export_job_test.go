package web_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/web"
)

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

var jobPath = regexp.MustCompile(`^/evidence/jobs/[A-Za-z0-9_-]+$`)

// startExport sends the export form and returns the job page's path.
func (f *fixture) startExport(t *testing.T, c *http.Client, form url.Values) string {
	t.Helper()
	resp, body := post(t, c, f.srv.URL+"/evidence", form)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !jobPath.MatchString(loc) {
		t.Fatalf("export form: %s to %q, want 303 to a job page\n%.500s", resp.Status, loc, body)
	}
	return loc
}

// waitExport polls the job page (as a browser without JavaScript would)
// until the export has ended, and returns the last page.
func (f *fixture) waitExport(t *testing.T, c *http.Client, job string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, body := get(t, c, f.srv.URL+job)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("job page: %s", resp.Status)
		}
		if !strings.Contains(body, "data-running") {
			return body
		}
		if !strings.Contains(body, `<noscript><meta http-equiv="refresh" content="2"></noscript>`) {
			t.Fatal("a running job's page does not refresh itself without JavaScript")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the export still runs after a minute:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exportPack runs an export through the form, its job page and the
// download, and returns the zip.
func (f *fixture) exportPack(t *testing.T, c *http.Client, form url.Values) string {
	t.Helper()
	job := f.startExport(t, c, form)
	page := f.waitExport(t, c, job)
	if !strings.Contains(page, "Evidence pack ready") || !strings.Contains(page, `href="`+job+`/download"`) {
		t.Fatalf("finished job page lacks the download:\n%s", page)
	}
	resp, body := get(t, c, f.srv.URL+job+"/download")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="dpiawatch-evidence-`) {
		t.Fatalf("download: %s %s %s", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	return body
}

// TestExportJob: the export form starts a background job and sends the
// DPO to its page, which shows the stage and step while the export runs
// (refreshing itself without JavaScript) and then the download. One job
// per user at a time; only the user who started it sees its page or
// downloads it; it and its files are gone once it expires.
func TestExportJob(t *testing.T) {
	hash, err := web.HashPassword(password, cheap)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	f := newFixture(t, fixtureOpts{evidence: true, exportGate: gate,
		accounts: []web.Account{{Username: "dpo-2", Role: web.RoleDPO, Password: hash}}})
	dpo, csrf := f.login(t, "dpo")
	other, otherCSRF := f.login(t, "dpo-2")
	ig, _ := f.login(t, "ig")
	form := url.Values{"csrf": {csrf}, "dpia": {"st-martins-webster-court"}, "from": {"2026-03-01"}, "to": {"2026-03-31"}}
	job := f.startExport(t, dpo, form)

	// Held at its first alert query: coverage and completeness are read.
	var page string
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, page = get(t, dpo, f.srv.URL+job)
		if strings.Contains(page, evidence.StageCompleteness+"…") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	step := regexp.MustCompile(`Step (\d+) of (\d+): ` + evidence.StageCompleteness + `…`).FindStringSubmatch(page)
	if step == nil || atoi(step[1]) == 0 || atoi(step[1]) >= atoi(step[2]) || !strings.Contains(page, `role="status"`) ||
		!strings.Contains(page, `<progress class="app-progress" max="`+step[2]+`" value="`+step[1]+`"`) {
		t.Fatalf("running job page shows no step of the total:\n%s", page)
	}
	// A second export of the same user waits for the first.
	resp, body := post(t, dpo, f.srv.URL+"/evidence", form)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `href="`+job+`"`) {
		t.Errorf("second export while one runs: %s, want 409 linking the running one", resp.Status)
	}
	// Nobody else sees it, running or done.
	check := func(when string) {
		t.Helper()
		for who, c := range map[string]*http.Client{"another DPO": other, "the IG team": ig, "signed out": f.client(t)} {
			for _, p := range []string{job, job + "/download"} {
				resp, body := get(t, c, f.srv.URL+p)
				if resp.StatusCode == http.StatusOK || strings.Contains(body, "PK\x03\x04") {
					t.Errorf("%s, %s: GET %s = %s", when, who, p, resp.Status)
				}
			}
		}
	}
	check("running")
	// Another DPO's export is theirs, and runs beside it.
	otherJob := f.startExport(t, other, url.Values{"csrf": {otherCSRF}, "dpia": {"st-martins-webster-court"}, "from": {"2026-03-01"}, "to": {"2026-03-31"}})
	if otherJob == job {
		t.Fatal("two users share a job")
	}

	close(gate)
	page = f.waitExport(t, dpo, job)
	if !strings.Contains(page, "Evidence pack ready") || strings.Contains(page, "refresh") {
		t.Fatalf("finished job page:\n%s", page)
	}
	resp, zip := get(t, dpo, f.srv.URL+job+"/download")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(zip, "PK\x03\x04") {
		t.Fatalf("download: %s", resp.Status)
	}
	check("done")
	f.waitExport(t, other, otherJob)

	// Expired: the page and the download are gone, and the files.
	dirs := func() []string {
		m, _ := filepath.Glob(filepath.Join(f.exportTmp, "dpiawatch-evidence-*"))
		return m
	}
	if n := len(dirs()); n != 2 {
		t.Fatalf("%d job directories for two finished jobs", n)
	}
	f.now.Add(31 * time.Minute)
	dpo, _ = f.login(t, "dpo") // the session idled out meanwhile
	for _, p := range []string{job, job + "/download"} {
		if resp, _ := get(t, dpo, f.srv.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("expired job: GET %s = %s, want 404", p, resp.Status)
		}
	}
	if left := dirs(); len(left) != 0 {
		t.Errorf("expired jobs left %v", left)
	}
	entries, _ := os.ReadDir(f.exportTmp)
	if len(entries) != 0 {
		t.Errorf("export directory holds %d entries after expiry", len(entries))
	}
}
