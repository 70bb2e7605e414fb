package evidence_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/evidence"
)

// hostileReport is a report whose producer-given values (a system name, an
// actor id of an old confirmed alert) hold bidirectional controls.
func hostileReport() *evidence.Report {
	return &evidence.Report{
		Format:     "dpiawatch-evidence/1",
		DPIA:       evidence.DPIAInfo{ID: "st-martins-webster-court", Title: "Webster Court CRM", Controller: "St Martins"},
		Period:     evidence.PeriodInfo{From: "2026-03-01", To: "2026-03-31", Days: 31, Timezone: "Europe/London"},
		Orgs:       []string{"st-martins"},
		Identities: true,
		Coverage: evidence.Coverage2{Events: 1,
			Systems: []evidence.SystemCount{{Org: "st-martins", System: "logmy\u2066care\u2069", Events: 1}}},
		Confirmed: []evidence.Confirmed{{AlertID: "a-1", Org: "st-martins", Check: "out-of-hours", Pattern: "out-of-hours",
			Severity: "medium", Risks: []string{"R4"}, Actor: "u-\u202e71exe.doc", Subject: "c-0042", FirstSeen: "2026-03-02T21:14:05Z",
			Events: 1, DecidedAt: "2026-03-03T09:00:00Z"}},
		Triage: evidence.TriageReport{TriageCounts: evidence.TriageCounts{Available: true}},
	}
}

// TestHiddenCharactersShownInEvidence: the HTML report, the CSV files and
// the PDF show a bidirectional control as [U+202E], never raw (issue 16,
// item 10). evidence.json keeps the exact value: it is the data.
func TestHiddenCharactersShownInEvidence(t *testing.T) {
	r := hostileReport()
	const shown = "u-[U+202E]71exe.doc"
	check := func(where, text string) {
		t.Helper()
		if !strings.Contains(text, shown) {
			t.Errorf("%s does not show the actor as %q", where, shown)
		}
		if i := strings.IndexAny(text, "\u202e\u2066\u2069"); i >= 0 {
			t.Errorf("%s holds a raw bidirectional control: …%q…", where, text[max(0, i-40):min(len(text), i+40)])
		}
	}
	html, err := evidence.HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	check("report.html", string(html))
	if !strings.Contains(string(html), "logmy[U+2066]care[U+2069]") {
		t.Error("report.html does not show the system name's isolates")
	}
	files, err := evidence.DataFiles(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		switch f.Name {
		case "confirmed_misuse.csv":
			check(f.Name, string(f.Data))
		case "coverage_systems.csv":
			if !strings.Contains(string(f.Data), "logmy[U+2066]care[U+2069]") {
				t.Errorf("%s does not show the system name's isolates:\n%s", f.Name, f.Data)
			}
		}
	}
	pdf, err := evidence.PDF(r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(poppler(t, "pdftotext"), path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	check("report.pdf", string(out))
}
