package evidence_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// TestPatternRisksInThePack (issue 13): with the shipped configuration's
// per-pattern mapping, St Martins' partner access outside the sharing
// agreement is counted under "Alerts not covered by the DPIA: proposed new
// risks", not under R2; R2 counts the shared-credential patterns that
// still cite it; and "What the checks look for" shows the patterns whose
// risks differ from their check's, in evidence.json, checks.csv and the
// HTML.
func TestPatternRisksInThePack(t *testing.T) {
	cfg, diags := config.Load("../configs/dpiawatch.yaml")
	if cfg == nil {
		t.Fatalf("shipped config: %s", diags)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ingest(t, cfg, simulateOrg(t, orgCases[0]), st)
	dir, _ := export(t, cfg, st, "st-martins-webster-court", false)
	r := readReport(t, dir)

	notCovered := map[string]int64{}
	for _, a := range r.NotCovered.By {
		notCovered[a.Check+"/"+a.Pattern] += a.Alerts
	}
	for _, k := range []string{"no-business-need/outside-sharing-agreement", "no-business-need/no-relationship", "out-of-hours/outside-shift"} {
		if notCovered[k] == 0 {
			t.Errorf("not covered by the DPIA lacks %s: %v", k, notCovered)
		}
	}
	for _, k := range r.Risks {
		for _, a := range k.AlertsBy {
			if a.Check == "no-business-need" || a.Check == "out-of-hours" || a.Check == "bulk-access" {
				t.Errorf("risk %s counts %s/%s alerts; the DPIA maps them to no risk", k.ID, a.Check, a.Pattern)
			}
			if a.Pattern == "failed-login-burst" && k.ID != "R2" && k.ID != "R4" {
				t.Errorf("risk %s counts failed-login-burst", k.ID)
			}
		}
		if k.ID == "R2" && !slices.ContainsFunc(k.AlertsBy, func(a evidence.AlertCount) bool { return a.Check == "shared-credential" }) {
			t.Errorf("R2 counts no shared-credential alert: %+v", k.AlertsBy)
		}
		if k.ID == "R4" && (!slices.Equal(k.Checks, []string{"shared-credential"}) ||
			slices.ContainsFunc(k.AlertsBy, func(a evidence.AlertCount) bool { return a.Pattern == "concurrent-sessions" })) {
			t.Errorf("R4: checks %v, alerts %+v; want shared-credential's impossible-travel and failed-login-burst only", k.Checks, k.AlertsBy)
		}
	}

	const sharedCred = "R2 (except impossible-travel: R2, R4; failed-login-burst: R2, R4; external-without-mfa: not covered by the DPIA)"
	for _, c := range r.Checks {
		switch c.Name {
		case "shared-credential":
			if got := c.RisksText(); got != sharedCred {
				t.Errorf("shared-credential risks %q, want %q", got, sharedCred)
			}
		case "no-business-need", "unlocked-session":
			if len(c.PatternRisks) != 0 {
				t.Errorf("%s: pattern risks %+v for St Martins, want none (no pattern differs from the check)", c.Name, c.PatternRisks)
			}
		}
	}
	for file, want := range map[string]string{
		"report.html": "<td>" + sharedCred + "</td>",
		"checks.csv":  "shared-credential,true,R2,pattern_evidences.external-without-mfa,[]\n",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(string(b), "\r\n", "\n"); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q", file, want)
		}
	}
}
