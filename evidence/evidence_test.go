package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var fixedNow = func() time.Time { return time.Date(2026, 4, 2, 9, 30, 0, 0, time.UTC) }

func pseudonym(kind, id string) string { return "pseud-" + kind + "-" + id[len(id)-2:] }

func export(t *testing.T, cfg *config.Config, src evidence.Source, dpiaID string, identities bool) (string, evidence.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pack")
	m, err := evidence.Export(context.Background(), evidence.ExportOptions{
		Options: evidence.Options{Config: cfg, DPIA: dpiaID, From: periodFrom, To: periodTo, Source: src,
			Identities: identities, Pseudonym: pseudonym},
		Dir: dir, Key: testKey(t), Store: "embedded", Generator: "dpiawatch test", RequestedBy: "dpo-1", Now: fixedNow,
	})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return dir, m
}

func readReport(t *testing.T, dir string) evidence.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "evidence.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r evidence.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGoldenReport exports a simulated fortnight of each seed org and
// compares evidence.json and every CSV with testdata/golden; a second
// export of the same data must give the same bytes for every file but the
// manifest.
func TestGoldenReport(t *testing.T) {
	cfg := loadConfig(t)
	for _, c := range orgCases {
		t.Run(c.org, func(t *testing.T) {
			st := embeddedStore(t, cfg, c)
			dir, m := export(t, cfg, st, c.dpia, false)
			again, _ := export(t, cfg, st, c.dpia, false)
			golden := filepath.Join("testdata", "golden", c.org)
			if *update {
				if err := os.MkdirAll(golden, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range m.Files {
				got, err := os.ReadFile(filepath.Join(dir, f.Path))
				if err != nil {
					t.Fatal(err)
				}
				second, err := os.ReadFile(filepath.Join(again, f.Path))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, second) {
					t.Errorf("%s differs between two exports of the same data", f.Path)
				}
				if f.Path == "report.html" || f.Path == "report.pdf" {
					continue // reproducible (checked above), but not golden: layout may change freely
				}
				path := filepath.Join(golden, f.Path)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./evidence -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s (run go test ./evidence -update and review the diff)", f.Path, path)
				}
			}
			r := readReport(t, dir)
			sanity(t, r)
		})
	}
}

// sanity checks what the golden files should show whatever their numbers.
func sanity(t *testing.T, r evidence.Report) {
	t.Helper()
	if r.Coverage.Events == 0 || r.Coverage.Previous.Events == 0 || r.Coverage.StaffDays == 0 {
		t.Errorf("coverage is empty: %+v", r.Coverage)
	}
	if len(r.Coverage.Days) != 14 || r.Period.Days != 14 || r.Previous.From != "2026-03-02" || r.Previous.To != "2026-03-15" {
		t.Errorf("period: %+v previous %+v, %d day rows", r.Period, r.Previous, len(r.Coverage.Days))
	}
	if r.Alerts.Total == 0 || len(r.Confirmed) == 0 {
		t.Errorf("no alerts (%d) or no confirmed misuse (%d): the fixture should hold both", r.Alerts.Total, len(r.Confirmed))
	}
	var sum int64
	for _, a := range r.Alerts.By {
		sum += a.Alerts
	}
	if sum != r.Alerts.Total {
		t.Errorf("alerts by check add up to %d, total %d", sum, r.Alerts.Total)
	}
	var monitored int
	for _, k := range r.Risks {
		var ts int64
		for _, o := range k.Triage.Outcomes {
			ts += o.Alerts
		}
		if ts != k.Alerts {
			t.Errorf("%s: triage outcomes add up to %d, alerts %d", k.ID, ts, k.Alerts)
		}
		if len(k.Checks) > 0 {
			monitored++
			if k.Observed.Level == evidence.LevelNotAssessable {
				t.Errorf("%s: monitored but not assessable: %s", k.ID, k.Observed.Comparison)
			}
		}
	}
	if monitored == 0 {
		t.Error("no risk is evidenced by a check")
	}
	// The embedded store records routine audits (the web UI's), so the
	// report counts them, zero included, for every org; a store that
	// does not says so rather than zero.
	if r.Routine.Available && len(r.Routine.Orgs) != len(r.Orgs) || !r.Routine.Available && !strings.Contains(r.Routine.Note, "No routine-audit data") {
		t.Errorf("routine audits: %+v", r.Routine)
	}
	for _, c := range r.Confirmed {
		if !strings.HasPrefix(c.Actor, "pseud-actor-") || (c.Subject != "" && !strings.HasPrefix(c.Subject, "pseud-subject-")) {
			t.Errorf("confirmed misuse not pseudonymised: %+v", c)
		}
	}
}

// TestVerify: an intact pack verifies; one changed byte, a missing file, an
// extra file, a changed manifest and a foreign key are each named.
func TestVerify(t *testing.T) {
	cfg := loadConfig(t)
	st := embeddedStore(t, cfg, orgCases[0])
	dir, _ := export(t, cfg, st, orgCases[0].dpia, false)
	trusted := testKey(t).Public().(ed25519.PublicKey)
	res, err := evidence.Verify(dir, trusted)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || !res.Trusted {
		t.Fatalf("intact pack: %v", res.Problems)
	}

	cases := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   []string
	}{
		{"one changed byte", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "alerts.csv")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x01
			write(t, p, b)
		}, []string{"altered: alerts.csv"}},
		{"missing file", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "report.pdf")); err != nil {
				t.Fatal(err)
			}
		}, []string{"missing: report.pdf"}},
		{"extra file", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "notes.txt"), []byte("added later"))
		}, []string{"extra: notes.txt"}},
		{"manifest changed", func(t *testing.T, dir string) {
			p := filepath.Join(dir, evidence.ManifestName)
			b, _ := os.ReadFile(p)
			write(t, p, bytes.Replace(b, []byte(`"identities": false`), []byte(`"identities": true`), 1))
		}, []string{"signature: manifest.json"}},
		{"hash rewritten in manifest", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "risks.csv")
			write(t, p, []byte("risk\nforged\n"))
			mp := filepath.Join(dir, evidence.ManifestName)
			var m evidence.Manifest
			b, _ := os.ReadFile(mp)
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for i := range m.Files {
				if m.Files[i].Path == "risks.csv" {
					m.Files[i].SHA256, m.Files[i].Bytes = "0000", 12
				}
			}
			b, _ = m.Encode()
			write(t, mp, b)
		}, []string{"signature: manifest.json", "altered: risks.csv"}},
		// The signature covers the manifest's exact bytes: edits that keep
		// its meaning to a JSON decoder fail all the same.
		{"duplicate key in manifest", func(t *testing.T, dir string) {
			p := filepath.Join(dir, evidence.ManifestName)
			b, _ := os.ReadFile(p)
			write(t, p, bytes.Replace(b, []byte("{\n"), []byte("{\n  \"dpia\": \"another-dpia\",\n"), 1))
		}, []string{"signature: manifest.json"}},
		{"changed case of a key in manifest", func(t *testing.T, dir string) {
			p := filepath.Join(dir, evidence.ManifestName)
			b, _ := os.ReadFile(p)
			write(t, p, bytes.Replace(b, []byte(`"dpia":`), []byte(`"DPIA":`), 1))
		}, []string{"signature: manifest.json"}},
		{"space added to manifest", func(t *testing.T, dir string) {
			p := filepath.Join(dir, evidence.ManifestName)
			b, _ := os.ReadFile(p)
			write(t, p, append(b, ' '))
		}, []string{"signature: manifest.json"}},
		{"re-signed with another key", func(t *testing.T, dir string) {
			resign(t, dir, otherKey(t))
		}, []string{"key: manifest.json"}},
		{"signature removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, evidence.SignatureName)); err != nil {
				t.Fatal(err)
			}
		}, []string{"signature: manifest.json"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := copyDir(t, dir)
			c.change(t, d)
			res, err := evidence.Verify(d, trusted)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Fatal("verified a changed pack")
			}
			var got []string
			for _, p := range res.Problems {
				got = append(got, p.String())
			}
			for _, w := range c.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w)
				}
				if !found {
					t.Errorf("problems %q do not name %q", got, w)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("problems %q, want exactly %q", got, c.want)
			}
		})
	}

	// Without a trusted key no pack verifies, not even an intact one: the
	// key a manifest carries is whoever signed it last.
	t.Run("no trusted key", func(t *testing.T) {
		resigned := copyDir(t, dir)
		resign(t, resigned, otherKey(t))
		for _, d := range []string{dir, resigned} {
			res, err := evidence.Verify(d, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() || res.Trusted || len(res.Problems) != 1 || res.Problems[0].Kind != "key" {
				t.Errorf("%s verified without a trusted key: %v", filepath.Base(d), res.Problems)
			}
		}
	})

	t.Run("foreign key", func(t *testing.T) {
		_, pubPEM, err := evidence.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := evidence.ParsePublicKey(string(pubPEM))
		if err != nil {
			t.Fatal(err)
		}
		res, err := evidence.Verify(dir, foreign)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() || res.Problems[0].Kind != "key" {
			t.Errorf("verified against a foreign key: %v", res.Problems)
		}
	})
}

// otherKey is a signing key other than testKey.
func otherKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// resign does what someone who altered a pack would: sign its manifest
// again with a key of their own.
func resign(t *testing.T, dir string, key ed25519.PrivateKey) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, evidence.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m evidence.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	b, sig, err := m.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, evidence.ManifestName), b)
	write(t, filepath.Join(dir, evidence.SignatureName), sig)
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dst, e.Name()), b)
	}
	return dst
}

// poppler returns the path of a poppler tool; without it the test is
// skipped locally and fails under CI (scripts/install-poppler installs it).
func poppler(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: run scripts/install-poppler", tool)
		}
		t.Skipf("%s not installed (scripts/install-poppler)", tool)
	}
	return p
}

// TestPDF renders the PDF with pdftoppm (its pages kept in
// $DPIAWATCH_ARTIFACTS/evidence when set, for a person to look at) and
// checks that page 1's risk table, as pdftotext reads it, says what
// evidence.json says, cell by cell, with no heading cut off.
func TestPDF(t *testing.T) {
	ppm, txt := poppler(t, "pdftoppm"), poppler(t, "pdftotext")
	cfg := loadConfig(t)
	for _, c := range orgCases {
		t.Run(c.org, func(t *testing.T) {
			st := embeddedStore(t, cfg, c)
			dir, _ := export(t, cfg, st, c.dpia, false)
			pdf := filepath.Join(dir, "report.pdf")
			png := filepath.Join(t.TempDir(), "page")
			if art := os.Getenv("DPIAWATCH_ARTIFACTS"); art != "" {
				png = filepath.Join(art, "evidence", c.org+"-page")
				if err := os.MkdirAll(filepath.Dir(png), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := exec.Command(ppm, "-png", "-r", "60", pdf, png).CombinedOutput(); err != nil {
				t.Fatalf("pdftoppm: %v\n%s", err, out)
			}
			pages, _ := filepath.Glob(png + "*.png")
			if len(pages) < 3 {
				t.Fatalf("pdftoppm rendered %d pages", len(pages))
			}
			for _, p := range pages {
				if fi, err := os.Stat(p); err != nil || fi.Size() < 1000 {
					t.Errorf("page %s is empty", p)
				}
			}
			out, err := exec.Command(txt, "-layout", "-f", "1", "-l", "1", pdf, "-").Output()
			if err != nil {
				t.Fatalf("pdftotext: %v", err)
			}
			page1 := string(out)
			r := readReport(t, dir)
			rows := pdfRows(page1, r)
			for _, k := range r.Risks {
				got, ok := rows[k.ID]
				if !ok {
					t.Errorf("risk %s is not in page 1's risk table:\n%s", k.ID, page1)
					continue
				}
				if want := pdfWantRow(k); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s: PDF row %q\nJSON      %q", k.ID, got, want)
				}
			}
			// Every header word of the table is on the page whole (a cell
			// is wrapped, never cut).
			for _, w := range []string{"Residual risk", "Since last", "Rate per 10,000", "interval)", "Undecided"} {
				if !strings.Contains(page1, w) {
					t.Errorf("page 1 lacks %q:\n%s", w, page1)
				}
			}
			var undecided int64
			for _, k := range r.Risks {
				undecided += k.Backlog.Alerts
			}
			if undecided > 0 && !strings.Contains(page1, "Lower bound: ") {
				t.Errorf("%d undecided alerts, but page 1 does not say the statuses are a lower bound:\n%s", undecided, page1)
			}
			all, err := exec.Command(txt, pdf, "-").Output()
			if err != nil {
				t.Fatalf("pdftotext: %v", err)
			}
			if bad := pdfBad.FindAllString(string(all), -1); len(bad) > 0 {
				t.Errorf("the PDF holds %q: raw configuration, an ISO time or a wrong plural", bad)
			}
		})
	}
}

// pdfBad is what the board's PDF must not hold: the configuration's
// keys, UTC ISO times, "1" with a plural.
var pdfBad = regexp.MustCompile(`overrides\[|latitude|\dT\d\d:\d\d|\b1 (samples|days|alerts|findings|events|ranges)\b`)

// pdfCellGap splits a line of pdftotext -layout into cells.
var pdfCellGap = regexp.MustCompile(`\s{2,}`)

// pdfRows reads page 1's risk table as pdftotext -layout lays it out: a
// row starts with a risk id and its cells are apart by two spaces or more.
func pdfRows(page string, r evidence.Report) map[string][]string {
	ids := map[string]bool{}
	for _, k := range r.Risks {
		ids[k.ID] = true
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(page, "\n") {
		cells := pdfCellGap.Split(strings.TrimSpace(line), -1)
		if len(cells) >= 2 && ids[cells[0]] {
			if _, seen := rows[cells[0]]; !seen {
				rows[cells[0]] = cells
			}
		}
	}
	return rows
}

// pdfWantRow is a risk's page-1 row from evidence.json.
func pdfWantRow(k evidence.RiskReport) []string {
	status := map[string]string{evidence.StatusRed: "Red", evidence.StatusAmber: "Amber", evidence.StatusGreen: "Green", evidence.StatusGrey: "Not rated"}[k.Status.RAG]
	direction := map[string]string{evidence.DirectionWorse: "worse", evidence.DirectionBetter: "better", evidence.DirectionSame: "no change", "": "n/a"}[k.Status.Direction]
	residual := k.Register.Residual
	if residual == "" {
		residual = evidence.NotScored
	}
	confirmed, backlog := "not recorded", "not recorded"
	if k.Triage.Available {
		confirmed, backlog = itoa(k.Confirmed), "none"
		if n := k.Backlog.Alerts; n > 0 {
			backlog = itoa(n) + ", oldest " + itoa(int64(k.Backlog.AgeDays)) + " days"
			if k.Backlog.AgeDays == 1 {
				backlog = itoa(n) + ", oldest 1 day"
			}
		}
	}
	rate := "not assessable"
	if o := k.Observed; o.RatePer10k != "" {
		rate = o.RatePer10k + " (" + o.RateLow + "–" + o.RateHigh + ")"
	}
	return []string{k.ID, status, residual, direction, itoa(k.Alerts), confirmed, rate, backlog}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestIdentities: ids appear only when asked for, and the request is in
// the store's audit trail and the manifest.
func TestIdentities(t *testing.T) {
	cfg := loadConfig(t)
	st := embeddedStore(t, cfg, orgCases[0])
	dir, m := export(t, cfg, st, orgCases[0].dpia, true)
	if !m.Identities || m.RequestedBy != "dpo-1" || !m.AuditLogged {
		t.Errorf("manifest does not record the identities request: %+v", m)
	}
	log, err := st.AuditLog(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Action != "evidence.export-identities" || log[0].Actor != "dpo-1" || log[0].Object != orgCases[0].dpia {
		t.Errorf("audit trail: %+v", log)
	}
	r := readReport(t, dir)
	if len(r.Confirmed) == 0 {
		t.Fatal("no confirmed misuse to show")
	}
	for _, c := range r.Confirmed {
		if strings.HasPrefix(c.Actor, "pseud-") || c.Actor == "" {
			t.Errorf("identities export shows a pseudonym: %+v", c)
		}
	}
	if _, err := evidence.Export(context.Background(), evidence.ExportOptions{
		Options: evidence.Options{Config: cfg, DPIA: orgCases[0].dpia, From: periodFrom, To: periodTo, Source: st, Identities: true},
		Dir:     t.TempDir(), Key: testKey(t),
	}); err == nil {
		t.Error("an identities export with nobody named as requester was allowed")
	}
}

// TestBuildErrors: bad periods and unknown DPIAs are refused with reasons.
func TestBuildErrors(t *testing.T) {
	cfg := loadConfig(t)
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct{ dpia, from, to, want string }{
		{"nope", "2026-01-01", "2026-01-31", "unknown DPIA"},
		{"wiltshire-childrens-cms", "2026-02-01", "2026-01-31", "ends"},
		{"wiltshire-childrens-cms", "01/01/2026", "2026-01-31", "not a date"},
		{"wiltshire-childrens-cms", "2025-01-01", "2026-06-30", "at most"},
	} {
		_, err := evidence.Build(context.Background(), evidence.Options{Config: cfg, DPIA: c.dpia, From: c.from, To: c.to, Source: st})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c, err, c.want)
		}
	}
	// An empty store still exports: every day is a day without data.
	r, err := evidence.Build(context.Background(), evidence.Options{Config: cfg, DPIA: "wiltshire-childrens-cms", From: "2026-03-28", To: "2026-03-29", Source: st})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Coverage.DaysWithoutData) != 2 || r.Coverage.Days[1].Date != "2026-03-29" {
		t.Errorf("empty store: %+v", r.Coverage)
	}
}
