package evidence_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/evidence"
)

// htmlTable is one table of report.html, its cells' text with spaces
// collapsed, and the heading (h2 or h3) it falls under.
type htmlTable struct {
	heading string
	rows    [][]string // body rows only
}

// htmlDoc is report.html as the tests read it: its tables, and the text of
// each paragraph under its heading.
type htmlDoc struct {
	tables []htmlTable
	paras  map[string][]string
}

// parseHTML reads report.html with encoding/xml in its HTML mode (void
// elements closed, HTML entities known).
func parseHTML(t *testing.T, b []byte) htmlDoc {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	doc := htmlDoc{paras: map[string][]string{}}
	var (
		heading            strings.Builder
		inHeading, inTable bool
		inHead             bool
		cur                string
		tbl                *htmlTable
		row                []string
		cell, para         *strings.Builder
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("report.html does not parse: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			switch x.Name.Local {
			case "h2", "h3":
				inHeading = true
				heading.Reset()
			case "table":
				inTable, tbl = true, &htmlTable{heading: cur}
			case "thead":
				inHead = true
			case "tr":
				row = nil
			case "td", "th":
				cell = &strings.Builder{}
			case "p":
				if !inTable {
					para = &strings.Builder{}
				}
			case "br":
				for _, w := range []*strings.Builder{cell, para} {
					if w != nil {
						w.WriteByte(' ')
					}
				}
			}
		case xml.EndElement:
			switch x.Name.Local {
			case "h2", "h3":
				inHeading, cur = false, collapse(heading.String())
			case "table":
				doc.tables = append(doc.tables, *tbl)
				inTable, tbl = false, nil
			case "thead":
				inHead = false
			case "tr":
				if inTable && !inHead {
					tbl.rows = append(tbl.rows, row)
				}
			case "td", "th":
				row = append(row, collapse(cell.String()))
				cell = nil
			case "p":
				if para != nil {
					doc.paras[cur] = append(doc.paras[cur], collapse(para.String()))
					para = nil
				}
			}
		case xml.CharData:
			switch {
			case inHeading:
				heading.Write(x)
			case cell != nil:
				cell.Write(x)
			case para != nil:
				para.Write(x)
			}
		}
	}
	return doc
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// table returns the tables under heading, failing when there are not n.
func (d htmlDoc) table(t *testing.T, heading string, n int) []htmlTable {
	t.Helper()
	var out []htmlTable
	for _, tb := range d.tables {
		if tb.heading == heading {
			out = append(out, tb)
		}
	}
	if len(out) != n {
		t.Fatalf("%d tables under %q, want %d", len(out), heading, n)
	}
	return out
}

func equalRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows in the HTML, %d in the JSON:\nhtml %q\njson %q", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		if strings.Join(got[i], " | ") != strings.Join(want[i], " | ") {
			t.Errorf("%s row %d:\nhtml %q\njson %q", what, i, got[i], want[i])
		}
	}
}

func htmlDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// htmlOutcome is the web UI's words for each outcome (web/pages.go's
// outcomeLabel shows the same).
var htmlOutcome = map[string]string{"acknowledged": "Acknowledged", "explained": "Explained (legitimate reason)",
	"confirmed-misuse": "Confirmed misuse", "false-positive": "False positive", "untriaged": "Open"}

// ukTime is an RFC 3339 time as the reports write it: UK local time.
func ukTime(t *testing.T, s string) string {
	t.Helper()
	return zoneTime(t, "Europe/London", s)
}

// zoneTime is an RFC 3339 time as the reports write it in timezone tz.
func zoneTime(t *testing.T, tz, s string) string {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	x, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("%q is not RFC 3339: %v", s, err)
	}
	return x.In(loc).Format("2 Jan 2006, 15:04 MST")
}

// ukDays is a range of days as the reports write it.
func ukDays(from, to string) string {
	f, _ := time.Parse(time.DateOnly, from)
	l, _ := time.Parse(time.DateOnly, to)
	switch {
	case from == to:
		return f.Format("2 Jan 2006")
	case f.Year() == l.Year() && f.Month() == l.Month():
		return f.Format("2") + " – " + l.Format("2 Jan 2006")
	case f.Year() == l.Year():
		return f.Format("2 Jan") + " – " + l.Format("2 Jan 2006")
	}
	return f.Format("2 Jan 2006") + " – " + l.Format("2 Jan 2006")
}

var htmlVersus = map[string]string{evidence.VersusAbove: "higher than expected", evidence.VersusInLine: "as expected",
	evidence.VersusBelow: "lower than expected", "": "—"}

// TestHTMLMatchesJSON parses report.html and checks every table, and the
// figures in the prose about coverage, alerts, triage and the observed
// likelihood, against evidence.json.
func TestHTMLMatchesJSON(t *testing.T) {
	cfg := loadConfig(t)
	for _, c := range orgCases {
		t.Run(c.org, func(t *testing.T) {
			st := embeddedStore(t, cfg, c)
			dir, _ := export(t, cfg, st, c.dpia, false)
			b, err := os.ReadFile(filepath.Join(dir, "report.html"))
			if err != nil {
				t.Fatal(err)
			}
			doc := parseHTML(t, b)
			r := readReport(t, dir)

			var want [][]string
			for _, k := range r.Risks {
				checks := strings.Join(k.Checks, ", ")
				if checks == "" {
					checks = "none: needs other evidence"
				}
				pdf := pdfWantRow(k) // the PDF's page 1 puts the same cells the same way
				level := strings.ReplaceAll(k.Observed.Level, "-", " ")
				want = append(want, []string{k.ID + " " + k.Title, pdf[1], pdf[2], pdf[3], checks, itoa(k.Alerts), pdf[5],
					pdf[6], level, htmlVersus[k.Observed.Versus], pdf[7]})
			}
			equalRows(t, "summary by risk", doc.table(t, "Summary by risk", 1)[0].rows, want)

			want = nil
			for _, s := range r.Coverage.Systems {
				want = append(want, []string{s.Org, s.System, itoa(s.Events)})
			}
			watched := doc.table(t, "What was watched", 1)[0].rows
			equalRows(t, "events by system", watched, want)
			wantWatched := itoa(r.Coverage.Events) + " access events were examined (" + itoa(r.Coverage.Previous.Events) +
				" in the previous period), over " + itoa(r.Coverage.StaffDays) + " active staff-days (" + itoa(r.Coverage.Previous.StaffDays) + " before)."
			if ps := doc.paras["What was watched"]; len(ps) == 0 || ps[0] != wantWatched {
				t.Errorf("coverage sentence %q, want %q", ps, wantWatched)
			}

			want = nil
			var feeds []string
			for _, o := range r.Coverage.Orgs {
				for _, u := range o.Uncovered {
					why := u.Detail
					if u.Reason == evidence.UncoveredFeedIncomplete && o.CompleteUpTo != "" {
						why = "feed not complete after " + ukTime(t, o.CompleteUpTo)
					}
					want = append(want, []string{o.Org, ukDays(u.From, u.To), itoa(int64(u.Days)), why})
				}
				feed := o.Org + " complete up to " + ukTime(t, o.CompleteUpTo)
				if o.CompleteUpTo == "" {
					feed = o.Org + " not complete for any period"
				}
				feeds = append(feeds, feed)
			}
			if len(r.Coverage.Orgs) != len(r.Orgs) || len(want) == 0 {
				t.Errorf("the fixture should leave days uncovered for every org: %+v", r.Coverage.Orgs)
			}
			equalRows(t, "data not covered", doc.table(t, "Data not covered", 1)[0].rows, want)
			if ps := doc.paras["Data not covered"]; len(ps) == 0 || ps[0] != "Feeds when this pack was made: "+strings.Join(feeds, "; ")+"." {
				t.Errorf("feeds sentence %q, want it to name %q", ps, feeds)
			}

			want = nil
			for _, ck := range r.Checks {
				enabled := "no"
				if ck.Enabled {
					enabled = "yes"
				}
				risks := strings.Join(ck.Risks, ", ")
				want = append(want, []string{ck.Name, enabled, htmlDash(risks), ck.Summary})
			}
			equalRows(t, "checks", doc.table(t, "What the checks look for", 1)[0].rows, want)

			alertsLine := regexp.MustCompile(`^Alerts: (\d+), (?:the same as|(\d+) (more|fewer) than) the previous period \((\d+)\)\.$`)
			for _, k := range r.Risks {
				h := k.ID + ": " + k.Title
				if len(k.AlertsBy) > 0 {
					want = nil
					for _, a := range k.AlertsBy {
						want = append(want, []string{a.Check, a.Pattern, a.Severity, itoa(a.Alerts), itoa(a.Previous)})
					}
					equalRows(t, k.ID+" alerts", doc.table(t, h, 1)[0].rows, want)
				}
				var found int
				for _, p := range doc.paras[h] {
					switch {
					case strings.HasPrefix(p, "Alerts:"):
						found++
						m := alertsLine.FindStringSubmatch(p)
						if m == nil || m[1] != itoa(k.Alerts) || m[4] != itoa(k.Previous.Alerts) || m[2] != diffText(k.Alerts, k.Previous.Alerts, m[3]) {
							t.Errorf("%s: %q, JSON %d alerts, %d before", k.ID, p, k.Alerts, k.Previous.Alerts)
						}
					case strings.HasPrefix(p, "Triage:") && k.Triage.Available:
						found++
						var os []string
						for _, o := range k.Triage.Outcomes {
							os = append(os, htmlOutcome[o.Outcome]+" "+itoa(o.Alerts))
						}
						w := "Triage: " + strings.Join(os, ", ") + "."
						if tt := k.Triage.Time; tt.Triaged > 0 {
							w += " Time from the first event to the first decision: " + itoa(tt.WithinHour) + " within an hour, " + itoa(tt.WithinDay) +
								" within a day, " + itoa(tt.WithinWeek) + " within a week, " + itoa(tt.Later) + " later (on average " + tt.MeanHours + " hours)."
						}
						if p != w {
							t.Errorf("%s: %q\nwant %q", k.ID, p, w)
						}
					case strings.HasPrefix(p, "Observed likelihood:"):
						found++
						o := k.Observed
						w := "Observed likelihood: " + strings.ReplaceAll(o.Level, "-", " ")
						if o.RatePer10k != "" {
							w += " (" + itoa(o.ConfirmedEpisodes) + " confirmed in " + itoa(o.StaffDays) + " active staff-days: " + o.RatePer10k +
								" per 10,000; 95% interval " + o.RateLow + " to " + o.RateHigh + ")"
						}
						w += "; residual risk in the DPIA " + pdfWantRow(k)[2] + ". " + o.Comparison +
							" In the previous period: " + strings.ReplaceAll(htmlDash(k.Previous.Level), "-", " ")
						if k.Previous.Rate != "" {
							w += " (" + itoa(k.Previous.Confirmed) + " confirmed; " + k.Previous.Rate + " per 10,000)"
						}
						if w += "."; p != w {
							t.Errorf("%s: %q\nwant %q", k.ID, p, w)
						}
					}
				}
				if want := 2 + btoi(k.Triage.Available); found != want {
					t.Errorf("%s: %d of the alerts, triage and observed-likelihood paragraphs found, want %d", k.ID, found, want)
				}
			}

			want = nil
			for _, cm := range r.Confirmed {
				risks := strings.Join(cm.Risks, ", ")
				if len(cm.Risks) == 0 {
					risks = evidence.NotCoveredRisks
				}
				want = append(want, []string{cm.AlertID, cm.Check + " / " + cm.Pattern, risks, htmlDash(cm.Actor),
					htmlDash(cm.Subject), ukTime(t, cm.FirstSeen), ukTime(t, cm.DecidedAt)})
			}
			equalRows(t, "confirmed misuse", doc.table(t, "Confirmed misuse", 1)[0].rows, want)

			if len(r.NotCovered.By) > 0 {
				want = nil
				for _, a := range r.NotCovered.By {
					want = append(want, []string{a.Check, a.Pattern, a.Severity, itoa(a.Alerts), itoa(a.Previous)})
				}
				equalRows(t, "not covered by the DPIA", doc.table(t, "Alerts not covered by the DPIA", 1)[0].rows, want)
			}

			want = nil
			for _, o := range r.Triage.Outcomes {
				want = append(want, []string{htmlOutcome[o.Outcome], itoa(o.Alerts)})
			}
			equalRows(t, "triage across the DPIA", doc.table(t, "Triage across the DPIA", 1)[0].rows, want)

			if r.Routine.Available {
				want = nil
				for _, o := range r.Routine.Orgs {
					want = append(want, []string{o.Org, itoa(o.Samples), itoa(o.Findings), itoa(o.Previous)})
				}
				equalRows(t, "routine audits", doc.table(t, "Routine audits", 1)[0].rows, want)
			} else {
				doc.table(t, "Routine audits", 0)
			}
		})
	}
}

// diffText is the difference the alerts sentence shows ("" when equal).
func diffText(cur, prev int64, dir string) string {
	switch {
	case cur > prev && dir == "more":
		return itoa(cur - prev)
	case cur < prev && dir == "fewer":
		return itoa(prev - cur)
	case cur == prev && dir == "":
		return ""
	}
	return "inconsistent"
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
