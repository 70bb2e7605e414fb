package evidence

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/dpiawatch/dpiawatch/visible"
)

// PDF renders the report as an A4 document (codeberg.org/go-pdf/fpdf, pure
// Go, core fonts only: nothing is fetched or embedded from elsewhere). Its
// dates are pinned to the period's end and its catalogue sorted, so that
// the same report gives the same bytes.
func PDF(r *Report) ([]byte, error) {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCatalogSort(true)
	if end, err := time.Parse(time.RFC3339, r.Period.End); err == nil {
		p.SetCreationDate(end.UTC())
		p.SetModificationDate(end.UTC())
	}
	p.SetTitle("DPIA evidence: "+r.DPIA.Title, true)
	p.SetAuthor("dpiawatch", true)
	p.SetMargins(15, 15, 15)
	p.SetAutoPageBreak(true, 15)
	cp1252 := p.UnicodeTranslatorFromDescriptor("") // the DPIAs' quotes and dashes
	// tr is every text's way in: hidden characters shown as [U+202E]
	// (visible.Text), then the core fonts' code page.
	tr := func(s string) string { return cp1252(visible.Text(s)) }
	p.SetFooterFunc(func() {
		p.SetY(-12)
		p.SetFont("Helvetica", "", 8)
		p.CellFormat(0, 5, tr(fmt.Sprintf("%s, %s to %s - page %d", r.DPIA.ID, r.Period.From, r.Period.To, p.PageNo())), "", 0, "C", false, 0, "")
	})
	p.AddPage()
	const width = 180.0

	h1 := func(s string) {
		p.SetFont("Helvetica", "B", 16)
		p.MultiCell(width, 8, tr(s), "", "L", false)
	}
	h2 := func(s string) {
		p.Ln(3)
		p.SetFont("Helvetica", "B", 13)
		p.SetTextColor(29, 112, 184)
		p.MultiCell(width, 7, tr(s), "", "L", false)
		p.SetTextColor(0, 0, 0)
	}
	h3 := func(s string) {
		p.Ln(1)
		p.SetFont("Helvetica", "B", 11)
		p.MultiCell(width, 6, tr(s), "", "L", false)
	}
	para := func(s string) {
		p.SetFont("Helvetica", "", 10)
		p.MultiCell(width, 5, tr(s), "", "L", false)
	}
	bullet := func(s string) {
		p.SetFont("Helvetica", "", 10)
		p.CellFormat(5, 5, "-", "", 0, "L", false, 0, "")
		p.MultiCell(width-5, 5, tr(s), "", "L", false)
	}
	// row prints one table row with every cell on one line (cut to fit), so
	// that text extraction reads it back as one line.
	row := func(ws []float64, cells []string, bold bool) {
		style := ""
		if bold {
			style = "B"
			p.SetFillColor(243, 242, 241)
		}
		p.SetFont("Helvetica", style, 9)
		for i, c := range cells {
			c = tr(c)
			for p.GetStringWidth(c) > ws[i]-2 && len(c) > 1 {
				c = c[:len(c)-1]
			}
			align := "L"
			if i > 0 && !bold {
				align = "R"
			}
			p.CellFormat(ws[i], 6, c, "1", 0, align, bold, 0, "")
		}
		p.Ln(-1)
	}

	h1("DPIA evidence pack")
	id := r.DPIA.ID
	if r.DPIA.Version != "" {
		id += ", " + r.DPIA.Version
	}
	para(fmt.Sprintf("%s (%s) - %s", r.DPIA.Title, id, r.DPIA.Controller))
	para(fmt.Sprintf("Period %s to %s (%d days, %s), compared with %s to %s. Organisations: %s.",
		r.Period.From, r.Period.To, r.Period.Days, r.Period.Timezone, r.Previous.From, r.Previous.To, strings.Join(r.Orgs, ", ")))
	if r.Identities {
		para("This pack contains staff and client identifiers (exported with identities on request).")
	} else {
		para("People are shown by pseudonyms only.")
	}
	para("The files of this pack are listed with their SHA-256 in manifest.json, which is signed (Ed25519); `dpiawatch evidence verify` checks them.")

	h2("Summary by risk")
	ws := []float64{12, 24, 16, 20, 30, 30, 48}
	row(ws, []string{"Risk", "DPIA residual", "Alerts", "Confirmed", "Rate per 10k staff-days", "Observed", "Against the DPIA"}, true)
	for _, k := range r.Risks {
		confirmed := "-"
		if k.Triage.Available {
			confirmed = fmt.Sprint(k.Confirmed)
		}
		row(ws, []string{k.ID, dashIfEmpty(k.Register.Residual), fmt.Sprint(k.Alerts), confirmed, dashIfEmpty(k.Observed.RatePer10k),
			levelWords(k.Observed.Level), dashIfEmpty(strings.ReplaceAll(versusWords(k.Observed.Versus), "—", ""))}, false)
	}
	p.Ln(2)
	for _, k := range r.Risks {
		para(k.ID + ": " + k.Title)
	}

	h2("What was watched")
	para(fmt.Sprintf("%d access events were examined (%d in the previous period), over %d active staff-days (%d before).",
		r.Coverage.Events, r.Coverage.Previous.Events, r.Coverage.StaffDays, r.Coverage.Previous.StaffDays))
	for _, s := range r.Coverage.Systems {
		bullet(fmt.Sprintf("%s / %s: %d events", s.Org, s.System, s.Events))
	}
	if len(r.Coverage.DaysWithoutData) > 0 {
		var ds []string
		for _, g := range r.Coverage.DaysWithoutData {
			ds = append(ds, gapText(g))
		}
		para("Days with no data: " + strings.Join(ds, "; ") + ".")
	} else {
		para("Every day of the period has data.")
	}
	if !r.Coverage.LateDataRecorded {
		para("Late data: this store does not record when events arrived, so late data cannot be reported.")
	} else if len(r.Coverage.DaysWithLateData) > 0 {
		para(fmt.Sprintf("Late data: %d events arrived late, on %d system-days.", r.Coverage.LateEvents, len(r.Coverage.DaysWithLateData)))
	} else {
		para("No data arrived late.")
	}
	h3("Data not covered")
	if r.Coverage.CompletenessRecorded {
		var fs []string
		for _, o := range r.Coverage.Orgs {
			fs = append(fs, o.Org+" "+completeText(o))
		}
		para("Feeds when this pack was made: " + strings.Join(fs, "; ") + ".")
	} else {
		para("This store does not record how far each feed is complete, so days a feed had not yet completed cannot be told apart from days it had.")
	}
	if anyUncovered(r.Coverage.Orgs) {
		for _, o := range r.Coverage.Orgs {
			for _, u := range o.Uncovered {
				bullet(fmt.Sprintf("%s: %s (%s): %s", o.Org, rangeText(u), plural(u.Days, "day"), u.Detail))
			}
		}
		para("The checks could not see all access on these days: the figures of this pack do not cover them, and those after a feed's completeness point may still grow.")
	} else {
		para("The data covers every day of the period.")
	}
	h3("Checks and their settings")
	for _, c := range r.Checks {
		state := "enabled"
		if !c.Enabled {
			state = "DISABLED"
		}
		risks := strings.Join(c.Risks, ", ")
		if risks == "" {
			risks = "no risk of this DPIA"
		}
		var set []string
		for _, s := range c.Settings {
			set = append(set, s.Key+": "+s.Value)
		}
		bullet(fmt.Sprintf("%s (%s; evidences %s). %s", c.Name, state, risks, strings.Join(set, "; ")))
	}

	h2("Risk by risk")
	for _, k := range r.Risks {
		h3(k.ID + ": " + k.Title)
		effect := ""
		if k.Register.Effect != "" {
			effect = "effect of the measures " + k.Register.Effect + "; "
		}
		para(fmt.Sprintf("In the DPIA: likelihood %s, severity %s, overall risk %s; %sresidual risk after the measures %s.",
			dashIfEmpty(k.Register.Likelihood), dashIfEmpty(k.Register.Severity), dashIfEmpty(k.Register.Score),
			effect, dashIfEmpty(k.Register.Residual)))
		para("Mitigations promised:")
		if len(k.Mitigations) == 0 {
			bullet("None recorded in the DPIA.")
		}
		for _, m := range k.Mitigations {
			bullet(m)
		}
		if len(k.Checks) > 0 {
			para("Evidenced by: " + strings.Join(k.Checks, ", ") + ".")
		} else {
			para("Evidenced by: no enabled check; dpiawatch cannot observe this risk.")
		}
		para(fmt.Sprintf("Alerts: %d, %s the previous period (%d).", k.Alerts, change(k.Alerts, k.Previous.Alerts), k.Previous.Alerts))
		for _, a := range k.AlertsBy {
			bullet(fmt.Sprintf("%s / %s, %s: %d (previous %d)", a.Check, a.Pattern, a.Severity, a.Alerts, a.Previous))
		}
		if k.Triage.Available {
			var os []string
			for _, o := range k.Triage.Outcomes {
				os = append(os, fmt.Sprintf("%s %d", outcomeWords(o.Outcome), o.Alerts))
			}
			t := k.Triage.Time
			s := "Triage: " + strings.Join(os, ", ") + "."
			if t.Triaged > 0 {
				s += fmt.Sprintf(" Time from the first event to the first decision: %d within an hour, %d within a day, %d within a week, %d later (on average %s hours).",
					t.WithinHour, t.WithinDay, t.WithinWeek, t.Later, t.MeanHours)
			}
			para(s)
		} else {
			para("Triage: not recorded by this store.")
		}
		s := "Observed likelihood: " + levelWords(k.Observed.Level)
		if k.Observed.RatePer10k != "" {
			s += fmt.Sprintf(" (%d confirmed in %d active staff-days: %s per 10,000)", k.Observed.ConfirmedEpisodes, k.Observed.StaffDays, k.Observed.RatePer10k)
		}
		s += fmt.Sprintf("; residual risk in the DPIA %s. %s In the previous period: %s", dashIfEmpty(k.Register.Residual), k.Observed.Comparison, levelWords(k.Previous.Level))
		if k.Previous.Rate != "" {
			s += fmt.Sprintf(" (%d confirmed; %s per 10,000)", k.Previous.Confirmed, k.Previous.Rate)
		}
		s += "."
		para(s)
	}

	h2("Alerts not covered by the DPIA")
	para(r.NotCovered.Note)
	if len(r.NotCovered.By) == 0 {
		para("None in this period or the previous one.")
	}
	for _, a := range r.NotCovered.By {
		bullet(fmt.Sprintf("%s / %s (%s): %d (previous period %d)", a.Check, a.Pattern, a.Severity, a.Alerts, a.Previous))
	}

	h2("Confirmed misuse")
	switch {
	case !r.Triage.Available:
		para(r.Triage.Note)
	case len(r.Confirmed) == 0:
		para("No alert of the period was confirmed as misuse.")
	default:
		for _, c := range r.Confirmed {
			bullet(fmt.Sprintf("%s: %s / %s (%s), account %s, person %s, first seen %s, decided %s",
				c.AlertID, c.Check, c.Pattern, risksText(c.Risks, ", "), dashIfEmpty(c.Actor), dashIfEmpty(c.Subject), c.FirstSeen, c.DecidedAt))
		}
	}
	h2("Routine audits")
	if r.Routine.Available {
		for _, o := range r.Routine.Orgs {
			bullet(fmt.Sprintf("%s: %d samples reviewed, %d findings (previous period %d samples)", o.Org, o.Samples, o.Findings, o.Previous))
		}
	} else {
		para(r.Routine.Note)
	}
	h2("Retention of the monitor's data")
	para(r.Retention.Note)
	if r.Retention.Available {
		last := r.Retention.LastRun
		if last == "" {
			last = "never"
		}
		para("Last run: " + last + ".")
		for _, c := range r.Retention.Classes {
			kept := "kept"
			if c.Days > 0 {
				kept = plural(c.Days, "day")
			}
			bullet(fmt.Sprintf("%s, %s: %s (set by %s); oldest held %s; %d deleted in the period",
				c.Org, c.Class, kept, c.Source, dashIfEmpty(c.Oldest), c.Deleted))
		}
	}
	h2("How to read these figures")
	for _, d := range r.Definitions {
		p.SetFont("Helvetica", "B", 10)
		p.MultiCell(width, 5, tr(d.Term), "", "L", false)
		para(d.Meaning)
	}

	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		return nil, fmt.Errorf("evidence: render pdf: %w", err)
	}
	return b.Bytes(), nil
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func dashIfEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func gapText(g Gap) string {
	if g.System == "" {
		return g.Date + " (" + g.Org + ")"
	}
	return g.Date + " (" + g.Org + ", " + g.System + ")"
}
