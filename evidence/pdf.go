package evidence

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/dpiawatch/dpiawatch/visible"
)

// PDF renders the report as the board's quarterly review pack, A4
// (codeberg.org/go-pdf/fpdf, pure Go, core fonts only: nothing is fetched
// or embedded from elsewhere). Page 1 is the risks at a glance; page 2 the
// charts; then the actions, gaps, unmonitored and proposed risks and the
// sign-off; the detail follows for whoever wants it. Its dates are pinned
// to the period's end and its catalogue sorted, so that the same report
// gives the same bytes.
func PDF(r *Report) ([]byte, error) {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCatalogSort(true)
	if end, err := time.Parse(time.RFC3339, r.Period.End); err == nil {
		p.SetCreationDate(end.UTC())
		p.SetModificationDate(end.UTC())
	}
	p.SetTitle("DPIA review pack: "+r.DPIA.Title, true)
	p.SetAuthor("dpiawatch", true)
	p.SetMargins(15, 15, 15)
	p.SetAutoPageBreak(true, 15)
	p.AliasNbPages("{nb}")
	cp1252 := p.UnicodeTranslatorFromDescriptor("") // the DPIAs' quotes and dashes
	d := &pdfDoc{p: p, r: r, tr: func(s string) string { return cp1252(visible.Text(s)) }}
	p.SetFooterFunc(func() {
		p.SetY(-12)
		p.SetFont("Helvetica", "", 8)
		p.CellFormat(0, 5, d.tr(fmt.Sprintf("%s, %s - page %d of {nb}", r.DPIA.ID, daySpan(r.Period.From, r.Period.To), p.PageNo())), "", 0, "C", false, 0, "")
	})
	p.AddPage()
	d.glance()
	p.AddPage()
	d.charts()
	d.board()
	d.detail()
	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		return nil, fmt.Errorf("evidence: render pdf: %w", err)
	}
	return b.Bytes(), nil
}

// pdfLeft is the left margin and pdfWidth the text width of an A4 page
// inside 15 mm margins.
const pdfLeft = 15.0

const pdfWidth = 180.0

// rgb is a colour of the GOV.UK palette the web UI uses.
type rgb struct{ r, g, b int }

var (
	colBlue   = rgb{29, 112, 184}
	colRed    = rgb{212, 53, 28}
	colAmber  = rgb{244, 119, 56}
	colGreen  = rgb{0, 112, 60}
	colGrey   = rgb{177, 180, 182}
	colLight  = rgb{243, 242, 241}
	colText   = rgb{11, 12, 12}
	colSubtle = rgb{80, 90, 95}
)

// statusColour is a status's fill and whether its text is white.
func statusColour(rag string) (rgb, bool) {
	switch rag {
	case StatusRed:
		return colRed, true
	case StatusAmber:
		return colAmber, false
	case StatusGreen:
		return colGreen, true
	}
	return colGrey, false
}

type pdfDoc struct {
	p  *fpdf.Fpdf
	r  *Report
	tr func(string) string // every text's way in: visible.Text, then cp1252
}

func (d *pdfDoc) fill(c rgb) { d.p.SetFillColor(c.r, c.g, c.b) }
func (d *pdfDoc) ink(c rgb)  { d.p.SetTextColor(c.r, c.g, c.b) }
func (d *pdfDoc) pen(c rgb)  { d.p.SetDrawColor(c.r, c.g, c.b) }

func (d *pdfDoc) h1(s string) {
	d.p.SetFont("Helvetica", "B", 18)
	d.p.MultiCell(pdfWidth, 8, d.tr(s), "", "L", false)
}

// h2 starts a section; one that would begin in the last few centimetres
// of a page starts on the next, so that a heading is never left alone.
func (d *pdfDoc) h2(s string) {
	if _, h := d.p.GetPageSize(); d.p.GetY() > h-45 {
		d.p.AddPage()
	}
	d.p.Ln(3)
	d.p.SetFont("Helvetica", "B", 13)
	d.ink(colBlue)
	d.p.MultiCell(pdfWidth, 7, d.tr(s), "", "L", false)
	d.ink(colText)
}

func (d *pdfDoc) h3(s string) {
	if _, h := d.p.GetPageSize(); d.p.GetY() > h-35 {
		d.p.AddPage()
	}
	d.p.Ln(1)
	d.p.SetFont("Helvetica", "B", 11)
	d.p.MultiCell(pdfWidth, 6, d.tr(s), "", "L", false)
}

func (d *pdfDoc) para(s string) {
	d.p.SetFont("Helvetica", "", 10)
	d.p.MultiCell(pdfWidth, 5, d.tr(s), "", "L", false)
}

func (d *pdfDoc) small(s string) {
	d.p.SetFont("Helvetica", "", 8)
	d.ink(colSubtle)
	d.p.MultiCell(pdfWidth, 4, d.tr(s), "", "L", false)
	d.ink(colText)
}

func (d *pdfDoc) bullet(s string) {
	d.p.SetFont("Helvetica", "", 10)
	d.p.CellFormat(5, 5, "-", "", 0, "L", false, 0, "")
	d.p.MultiCell(pdfWidth-5, 5, d.tr(s), "", "L", false)
}

// header draws a table's header row, each cell's text wrapped within its
// width (never cut), all cells as tall as the tallest.
func (d *pdfDoc) header(ws []float64, cells []string) {
	p := d.p
	// The size at which every word fits its cell: SplitText breaks a
	// word wider than the cell ("Confirme/d"), so none may be.
	size := 8.5
	for fits := false; !fits && size > 5; {
		p.SetFont("Helvetica", "B", size)
		fits = true
		for i, c := range cells {
			for _, w := range strings.Fields(d.tr(c)) {
				fits = fits && p.GetStringWidth(w) <= ws[i]-2.5
			}
		}
		if !fits {
			size -= 0.5
		}
	}
	const line = 4.0
	lines := 1
	for i, c := range cells {
		lines = max(lines, len(p.SplitText(d.tr(c), ws[i]-2)))
	}
	h := float64(lines)*line + 2
	if _, ph := p.GetPageSize(); p.GetY()+h+7 > ph-15 {
		p.AddPage()
	}
	x, y := p.GetX(), p.GetY()
	d.fill(colLight)
	for i, c := range cells {
		p.Rect(x, y, ws[i], h, "FD")
		p.SetXY(x+1, y+1)
		p.MultiCell(ws[i]-2, line, d.tr(c), "", "L", false)
		x += ws[i]
	}
	p.SetXY(pdfLeft, y+h)
}

// row draws one body row on one line, so that text extraction reads it
// back as one line; a cell too long for its width is set smaller rather
// than cut. colour, when set, fills the second cell (the status).
func (d *pdfDoc) row(ws []float64, cells []string, status string) {
	p := d.p
	if _, ph := p.GetPageSize(); p.GetY()+6 > ph-15 {
		p.AddPage()
	}
	for i, c := range cells {
		c = d.tr(c)
		size := 9.0
		p.SetFont("Helvetica", "", size)
		for p.GetStringWidth(c) > ws[i]-4 && size > 5 { // 2 mm clear of the next cell, so that text extraction keeps cells apart
			size -= 0.5
			p.SetFont("Helvetica", "", size)
		}
		fill := false
		if i == 1 && status != "" {
			bg, white := statusColour(status)
			d.fill(bg)
			if white {
				d.ink(rgb{255, 255, 255})
			}
			p.SetFont("Helvetica", "B", size)
			fill = true
		}
		p.CellFormat(ws[i], 6, c, "1", 0, "L", fill, 0, "")
		d.ink(colText)
	}
	p.Ln(-1)
}

// glance is page 1: the risks at a glance and what the board must know
// to read them.
func (d *pdfDoc) glance() {
	r := d.r
	d.h1("DPIA review pack")
	id := r.DPIA.ID
	if r.DPIA.Version != "" {
		id += ", " + r.DPIA.Version
	}
	d.para(fmt.Sprintf("%s (%s), %s.", r.DPIA.Title, id, r.DPIA.Controller))
	d.para(fmt.Sprintf("Period %s (%s), compared with %s. Times are UK local time (%s). Organisations: %s.",
		daySpan(r.Period.From, r.Period.To), plural(r.Period.Days, "day"), daySpan(r.Previous.From, r.Previous.To),
		r.Period.Timezone, strings.Join(r.Orgs, ", ")))

	d.h2("Risks at a glance")
	ws := []float64{11, 20, 33, 18, 14, 19, 37, 28}
	d.header(ws, []string{"Risk", "Status", "Residual risk in the DPIA", "Since last period", "Alerts", "Confirmed misuse",
		"Rate per 10,000 staff-days (95% interval)", "Undecided alerts"})
	for _, k := range r.Risks {
		confirmed := "not recorded"
		if k.Triage.Available {
			confirmed = fmt.Sprint(k.Confirmed)
		}
		d.row(ws, []string{k.ID, statusWords(k.Status.RAG), residualText(k.Register.Residual), directionWords(k.Status.Direction),
			fmt.Sprint(k.Alerts), confirmed, rateText(k.Observed), backlogText(k)}, k.Status.RAG)
	}
	d.p.Ln(1)
	d.small("Status weighs the rate of confirmed misuse against the residual risk the DPIA accepted: red, the rate is higher than that " +
		"risk allows; amber, it is not, but would be if the undecided alerts proved misuse; green, it would not be even then; " +
		"not rated, there is nothing to weigh (no check watches the risk, or the DPIA gives no residual score). The interval is " +
		"the range of rates the period's few cases are consistent with (95%, exact Poisson).")
	d.p.SetFont("Helvetica", "", 8)
	for _, k := range r.Risks {
		d.small(fmt.Sprintf("%s: %s - %s: %s", k.ID, strings.TrimSuffix(k.Title, "."), statusWords(k.Status.RAG), k.Status.Reason))
	}

	d.h2("What the board should know")
	var undecided int64
	oldest, age := "", 0
	for _, k := range r.Risks {
		if k.Backlog.Alerts > 0 && (oldest == "" || k.Backlog.Oldest < oldest) {
			oldest, age = k.Backlog.Oldest, k.Backlog.AgeDays
		}
	}
	for _, o := range r.Triage.Outcomes {
		if o.Outcome == "untriaged" {
			undecided = o.Alerts
		}
	}
	switch {
	case !r.Triage.Available:
		d.bullet("This installation does not record the IG team's decisions on alerts, so confirmed misuse and the statuses cannot be given.")
	case undecided > 0:
		d.bullet(fmt.Sprintf("Lower bound: %s of the period had not been decided when this pack was made (the oldest first seen %s, "+
			"%s before the period's end). The rates and statuses above count only decided alerts and may rise.",
			plural(int(undecided), "alert"), dayText(oldest), plural(age, "day")))
	default:
		d.bullet("Every alert of the period had been decided when this pack was made.")
	}
	var unmonitored []string
	for _, k := range r.Risks {
		if len(k.Checks) == 0 {
			unmonitored = append(unmonitored, k.ID)
		}
	}
	if len(unmonitored) > 0 {
		d.bullet(fmt.Sprintf("Needs other evidence: no check watches %s; the board needs other assurance for %s (see \"Risks nothing monitors\").",
			strings.Join(unmonitored, ", "), map[bool]string{true: "it", false: "them"}[len(unmonitored) == 1]))
	}
	if r.NotCovered.Alerts > 0 {
		d.bullet(fmt.Sprintf("Not covered by the DPIA: %s evidence no risk of this DPIA; see \"Alerts not covered by the DPIA\".", plural(int(r.NotCovered.Alerts), "alert")))
	}
	var gaps []string
	for _, o := range r.Coverage.Orgs {
		days := 0
		for _, u := range o.Uncovered {
			if u.System == "" {
				days += u.Days
			}
		}
		if len(o.Uncovered) > 0 {
			gaps = append(gaps, fmt.Sprintf("%s: %s, %s without all data", o.Org, plural(len(o.Uncovered), "range"), plural(days, "whole day")))
		}
	}
	if len(gaps) > 0 {
		d.bullet("Data not covered: " + strings.Join(gaps, "; ") + " (see \"Feed gaps\").")
	} else {
		d.bullet("The data covers every day of the period.")
	}
	d.bullet(fmt.Sprintf("%d access events were examined over %d active staff-days (%d and %d in the previous period).",
		r.Coverage.Events, r.Coverage.StaffDays, r.Coverage.Previous.Events, r.Coverage.Previous.StaffDays))
}

// charts is page 2: alerts and confirmed misuse per risk over the last
// periods, and routine-audit coverage per team.
func (d *pdfDoc) charts() {
	r, p := d.r, d.p
	d.h2(fmt.Sprintf("Alerts and confirmed misuse per risk, last %s", plural(HistoryPeriods, "period")))
	x0, y0 := pdfLeft, p.GetY()+2
	// Legend.
	d.fill(colBlue)
	p.Rect(x0, y0, 4, 3, "F")
	d.fill(colRed)
	p.Rect(x0+30, y0, 4, 3, "F")
	p.SetFont("Helvetica", "", 8)
	p.Text(x0+5.5, y0+2.6, "alerts")
	p.Text(x0+35.5, y0+2.6, "confirmed misuse")
	y0 += 6
	const pw, ph, gap = 87.0, 48.0, 6.0
	for i, k := range r.Risks {
		x := x0 + float64(i%2)*(pw+gap)
		y := y0 + float64(i/2)*(ph+gap)
		d.riskChart(k, x, y, pw, ph)
	}
	rows := (len(r.Risks) + 1) / 2
	p.SetXY(x0, y0+float64(rows)*(ph+gap))

	d.h2("Routine-audit coverage per team")
	switch {
	case !r.Routine.Available:
		d.para(r.Routine.Note)
	case len(r.Routine.Teams) == 0:
		d.para("No routine-audit sample was drawn for any team in the period: managers reviewed no access.")
	default:
		d.teamChart()
	}
}

// riskChart draws one risk's panel: a pair of bars per period.
func (d *pdfDoc) riskChart(k RiskReport, x, y, w, h float64) {
	p := d.p
	d.pen(colGrey)
	p.SetLineWidth(0.2)
	p.Rect(x, y, w, h, "D")
	p.SetFont("Helvetica", "B", 9)
	d.ink(colText)
	p.SetXY(x+2, y+1)
	title := k.ID + ": " + k.Title
	for len(title) > 4 && p.GetStringWidth(d.tr(title)) > w-4 {
		title = strings.TrimSpace(title[:len(title)-4]) + "..."
	}
	p.CellFormat(w-4, 5, d.tr(title), "", 0, "L", false, 0, "")
	var top int64 = 1
	for _, hp := range k.History {
		top = max(top, hp.Alerts, hp.Confirmed)
	}
	scale := niceCeiling(top)
	bx, by, bw, bh := x+10, y+9, w-13, h-17 // plot area
	p.SetFont("Helvetica", "", 7)
	d.ink(colSubtle)
	p.Line(bx, by+bh, bx+bw, by+bh)
	p.Text(x+1, by+2, fmt.Sprint(scale))
	p.Text(x+1, by+bh, "0")
	if len(k.Checks) == 0 {
		p.SetFont("Helvetica", "I", 8)
		p.Text(bx+4, by+bh/2, d.tr("needs other evidence: no check watches it"))
	}
	slot := bw / float64(max(len(k.History), 1))
	for i, hp := range k.History {
		sx := bx + float64(i)*slot
		bar := slot * 0.3
		for j, v := range []int64{hp.Alerts, hp.Confirmed} {
			c := colBlue
			if j == 1 {
				c = colRed
			}
			bhv := bh * float64(v) / float64(scale)
			bxv := sx + slot*0.15 + float64(j)*(bar+0.8)
			if v > 0 {
				d.fill(c)
				p.Rect(bxv, by+bh-bhv, bar, bhv, "F")
			}
			p.SetFont("Helvetica", "", 6.5)
			n := fmt.Sprint(v)
			p.Text(bxv+bar/2-p.GetStringWidth(n)/2, by+bh-bhv-0.8, n)
		}
		label := d.tr(chartLabel(hp.From, hp.To))
		p.SetFont("Helvetica", "", 6.5)
		p.Text(sx+slot/2-p.GetStringWidth(label)/2, by+bh+4, label)
	}
	d.ink(colText)
}

// teamChart draws each team's share of sampled accesses reviewed.
func (d *pdfDoc) teamChart() {
	p := d.p
	const label, bar, line = 55.0, 85.0, 6.0
	for _, t := range d.r.Routine.Teams {
		if _, ph := p.GetPageSize(); p.GetY()+line > ph-15 {
			p.AddPage()
		}
		x, y := pdfLeft, p.GetY()
		p.SetFont("Helvetica", "", 8.5)
		p.SetXY(x, y)
		p.CellFormat(label, line, d.tr(t.Org+" / "+t.Team), "", 0, "L", false, 0, "")
		d.fill(colLight)
		p.Rect(x+label, y+1, bar, line-2, "F")
		share := 0.0
		if t.Sampled > 0 {
			share = float64(t.Reviewed) / float64(t.Sampled)
		}
		c := colGreen
		if share < 1 {
			c = colAmber
		}
		if share > 0 {
			d.fill(c)
			p.Rect(x+label, y+1, bar*share, line-2, "F")
		}
		p.SetXY(x+label+bar+2, y)
		p.CellFormat(pdfWidth-label-bar-2, line, d.tr(fmt.Sprintf("%d of %d reviewed (%d%%)", t.Reviewed, t.Sampled,
			int(math.Round(share*100)))), "", 1, "L", false, 0, "")
	}
	d.small("A bar is one team's accesses drawn for routine audit in the period; its filled part, those its manager reviewed.")
}

// chartLabel is periodLabel, short enough for a bar's foot: the year
// goes when the period is not whole months.
func chartLabel(from, to string) string {
	l := periodLabel(from, to)
	if l == daySpan(from, to) && len(from) == 10 && len(to) == 10 {
		f, _ := time.Parse(time.DateOnly, from)
		t, _ := time.Parse(time.DateOnly, to)
		return f.Format("2 Jan") + "-" + t.Format("2 Jan")
	}
	return l
}

// niceCeiling rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceCeiling(v int64) int64 {
	for m := int64(1); ; m *= 10 {
		for _, f := range []int64{1, 2, 5} {
			if f*m >= v {
				return f * m
			}
		}
	}
}

// board is what the board acts on: actions, gaps, unmonitored and
// proposed risks, and the sign-off.
func (d *pdfDoc) board() {
	r := d.r
	d.h2("Actions from triage")
	if !r.Triage.Available {
		d.para(r.Triage.Note)
	} else {
		if len(r.Confirmed) == 0 {
			d.para("No alert of the period was confirmed as misuse.")
		} else {
			d.para(fmt.Sprintf("%s confirmed as misuse, each to be followed up under the organisation's disciplinary and breach procedures:",
				plural(len(r.Confirmed), "alert")))
			ws := []float64{40, 22, 56, 32, 30}
			d.header(ws, []string{"Alert", "Risks", "What was seen", "First seen", "Decided"})
			for _, c := range r.Confirmed {
				d.row(ws, []string{c.AlertID, risksText(c.Risks, ", "), c.Check + " / " + c.Pattern, d.r.localTime(c.FirstSeen), d.r.localTime(c.DecidedAt)}, "")
			}
		}
		for _, k := range r.Risks {
			if k.Backlog.Alerts > 0 {
				d.bullet(fmt.Sprintf("%s: %s still %s, the oldest first seen %s.", k.ID, plural(int(k.Backlog.Alerts), "alert"),
					strings.ToLower(outcomeWords("untriaged")), dayText(k.Backlog.Oldest)))
			}
		}
		d.actions()
	}

	d.h2("Feed gaps")
	if r.Coverage.CompletenessRecorded {
		var fs []string
		for _, o := range r.Coverage.Orgs {
			if o.CompleteUpTo == "" {
				fs = append(fs, o.Org+" not complete for any period")
			} else {
				fs = append(fs, o.Org+" complete up to "+r.localTime(o.CompleteUpTo))
			}
		}
		d.para("Feeds when this pack was made: " + strings.Join(fs, "; ") + ".")
	} else {
		d.para("This store does not record how far each feed is complete, so days a feed had not yet completed cannot be told apart from days it had.")
	}
	if anyUncovered(r.Coverage.Orgs) {
		ws := []float64{40, 55, 20, 65}
		d.header(ws, []string{"Organisation", "Dates", "Days", "Why"})
		for _, o := range r.Coverage.Orgs {
			for _, u := range o.Uncovered {
				d.row(ws, []string{o.Org, daySpan(u.From, u.To), fmt.Sprint(u.Days), r.uncoveredText(o, u)}, "")
			}
		}
		d.small("The checks could not see all access on these days: the figures of this pack do not cover them, and those after a feed's completeness point may still grow.")
	} else {
		d.para("The data covers every day of the period.")
	}
	if !r.Coverage.LateDataRecorded {
		d.small("Late data: this store does not record when events arrived, so late data cannot be reported.")
	} else if len(r.Coverage.DaysWithLateData) > 0 {
		d.para(fmt.Sprintf("Late data: %s arrived late, on %s.", plural(int(r.Coverage.LateEvents), "event"), plural(len(r.Coverage.DaysWithLateData), "system-day")))
	}

	d.h2("Risks nothing monitors")
	none := true
	for _, k := range r.Risks {
		if len(k.Checks) == 0 {
			none = false
			d.bullet(fmt.Sprintf("%s: %s. Needs other evidence: no check looks for it, so this pack says nothing about it.", k.ID, strings.TrimSuffix(k.Title, ".")))
		}
	}
	if none {
		d.para("Every risk of the DPIA is watched by at least one check.")
	}

	d.h2("Alerts not covered by the DPIA: proposed new risks")
	if len(r.NotCovered.By) == 0 {
		d.para("None in this period or the previous one.")
	} else {
		d.para("These alerts evidence no risk in this DPIA. The board should consider adding a risk for each kind, with its mitigations.")
		ws := []float64{50, 60, 24, 23, 23}
		d.header(ws, []string{"Check", "Pattern", "Severity", "Alerts", "Previous period"})
		for _, a := range r.NotCovered.By {
			d.row(ws, []string{a.Check, a.Pattern, a.Severity, fmt.Sprint(a.Alerts), fmt.Sprint(a.Previous)}, "")
		}
	}

	d.h2("Sign-off")
	d.para("The board has reviewed the evidence above against the DPIA's risks and mitigations.")
	p := d.p
	if _, ph := p.GetPageSize(); p.GetY()+60 > ph-15 {
		p.AddPage()
	}
	for _, who := range []string{"Data protection officer", "Chair of the board", "Decision (residual risks accepted / actions required)"} {
		y := p.GetY() + 2
		p.SetFont("Helvetica", "B", 9)
		p.SetXY(pdfLeft, y)
		p.CellFormat(pdfWidth, 5, d.tr(who), "", 1, "L", false, 0, "")
		p.SetFont("Helvetica", "", 8)
		d.ink(colSubtle)
		for i, f := range []string{"Name", "Signature", "Date"} {
			x := pdfLeft + float64(i)*60
			p.Text(x, p.GetY()+4, f)
			d.pen(colGrey)
			p.Line(x+15, p.GetY()+4.5, x+57, p.GetY()+4.5)
		}
		d.ink(colText)
		p.SetY(p.GetY() + 8)
	}
}

// actions is the actions log: each follow-up's owner, due day and status,
// overdue ones marked.
func (d *pdfDoc) actions() {
	a := d.r.Actions
	if !a.Available {
		d.small(a.Note)
		return
	}
	if len(a.Items) == 0 {
		d.para("No decision of the period records a follow-up action (owner or due date).")
		return
	}
	d.para(fmt.Sprintf("Follow-up actions: %d open, %d of them overdue on %s; %d done.", a.Open, a.Overdue, dayText(a.AsOf), a.Done))
	ws := []float64{40, 18, 32, 40, 24, 26}
	d.header(ws, []string{"Alert", "Risks", "Decision", "Owner", "Due", "Status"})
	for _, it := range a.Items {
		due, status := "none", actionWords(it.Status)
		if it.Due != "" {
			due = dayText(it.Due)
		}
		if it.Overdue {
			status += ", overdue"
		}
		d.row(ws, []string{it.AlertID, risksText(it.Risks, ", "), outcomeWords(it.Outcome), orDash(it.Owner), due, status}, "")
	}
	d.small("Owner, due date and status as the IG team recorded them with the alert's latest decision. " +
		"Overdue: still open on the period's last day with its due day passed or that day.")
}

// detail is the rest of the pack: each risk in full, the checks in plain
// words, confirmed misuse, routine audits, retention and definitions.
func (d *pdfDoc) detail() {
	r := d.r
	d.p.AddPage()
	d.h2("Risk by risk")
	for _, k := range r.Risks {
		d.h3(k.ID + ": " + k.Title)
		if k.Register.Likelihood == "" && k.Register.Severity == "" && k.Register.Score == "" && k.Register.Residual == "" {
			d.para("In the DPIA: the likelihood, severity and residual risk are " + NotScored + ".")
		} else {
			effect := ""
			if k.Register.Effect != "" {
				effect = "effect of the measures " + k.Register.Effect + "; "
			}
			d.para(fmt.Sprintf("In the DPIA: likelihood %s, severity %s, overall risk %s; %sresidual risk after the measures %s.",
				residualText(k.Register.Likelihood), residualText(k.Register.Severity), residualText(k.Register.Score), effect, residualText(k.Register.Residual)))
		}
		d.para("Mitigations promised:")
		if len(k.Mitigations) == 0 {
			d.bullet("None recorded in the DPIA.")
		}
		for _, m := range k.Mitigations {
			d.bullet(m)
		}
		if len(k.Checks) > 0 {
			d.para("Evidenced by: " + strings.Join(k.Checks, ", ") + ".")
		} else {
			d.para("Evidenced by: no enabled check. Needs other evidence: dpiawatch cannot observe this risk.")
		}
		d.para(fmt.Sprintf("Alerts: %d, %s the previous period (%d).", k.Alerts, change(k.Alerts, k.Previous.Alerts), k.Previous.Alerts))
		for _, a := range k.AlertsBy {
			d.bullet(fmt.Sprintf("%s / %s, %s: %d (previous %d)", a.Check, a.Pattern, a.Severity, a.Alerts, a.Previous))
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
			d.para(s)
		} else {
			d.para("Triage: not recorded by this store.")
		}
		s := "Observed likelihood: " + levelWords(k.Observed.Level)
		if k.Observed.RatePer10k != "" {
			s += fmt.Sprintf(" (%d confirmed in %d active staff-days: %s per 10,000; 95%% interval %s to %s)", k.Observed.ConfirmedEpisodes,
				k.Observed.StaffDays, k.Observed.RatePer10k, k.Observed.RateLow, k.Observed.RateHigh)
		}
		s += fmt.Sprintf("; residual risk in the DPIA %s. %s In the previous period: %s", residualText(k.Register.Residual), k.Observed.Comparison, levelWords(k.Previous.Level))
		if k.Previous.Rate != "" {
			s += fmt.Sprintf(" (%d confirmed; %s per 10,000)", k.Previous.Confirmed, k.Previous.Rate)
		}
		d.para(s + ".")
	}

	d.h2("What the checks look for")
	for _, c := range r.Checks {
		state := ""
		if !c.Enabled {
			state = " Switched off."
		}
		risks := "evidences " + c.RisksText()
		switch {
		case len(c.Risks) == 0 && len(c.PatternRisks) > 0:
			risks = c.RisksText()
		case len(c.Risks) == 0:
			risks = "evidences no risk of this DPIA"
		}
		d.bullet(fmt.Sprintf("%s (%s). %s%s", c.Name, risks, c.Summary, state))
	}
	d.small("Every setting of every check is in evidence.json and checks.csv.")

	d.h2("Confirmed misuse")
	switch {
	case !r.Triage.Available:
		d.para(r.Triage.Note)
	case len(r.Confirmed) == 0:
		d.para("No alert of the period was confirmed as misuse.")
	default:
		for _, c := range r.Confirmed {
			d.bullet(fmt.Sprintf("%s: %s / %s (%s), account %s, person %s, first seen %s, decided %s", c.AlertID, c.Check, c.Pattern,
				risksText(c.Risks, ", "), dashIfEmpty(c.Actor), dashIfEmpty(c.Subject), r.localTime(c.FirstSeen), r.localTime(c.DecidedAt)))
		}
	}

	d.h2("Routine audits")
	if r.Routine.Available {
		for _, o := range r.Routine.Orgs {
			d.bullet(fmt.Sprintf("%s: %s reviewed, %s (previous period %s)", o.Org, plural(int(o.Samples), "sample"),
				plural(int(o.Findings), "finding"), plural(int(o.Previous), "sample")))
		}
	} else {
		d.para(r.Routine.Note)
	}
	d.h2("Retention of the monitor's data")
	d.para(r.Retention.Note)
	if r.Retention.Available {
		last := "never"
		if r.Retention.LastRun != "" {
			last = r.localTime(r.Retention.LastRun)
		}
		d.para("Last run: " + last + ".")
		for _, c := range r.Retention.Classes {
			kept := "kept"
			if c.Days > 0 {
				kept = plural(c.Days, "day")
			}
			oldest := "nothing held"
			if c.Oldest != "" {
				oldest = "oldest held " + r.localTime(c.Oldest)
			}
			d.bullet(fmt.Sprintf("%s, %s: %s (set by %s); %s; %d deleted in the period", c.Org, c.Class, kept, c.Source, oldest, c.Deleted))
		}
	}
	d.h2("How to read these figures")
	for _, x := range r.Definitions {
		d.p.SetFont("Helvetica", "B", 10)
		d.p.MultiCell(pdfWidth, 5, d.tr(x.Term), "", "L", false)
		d.para(x.Meaning)
	}
	if r.Identities {
		d.para("This pack contains staff and client identifiers (exported with identities on request).")
	} else {
		d.para("People are shown by pseudonyms only.")
	}
	d.para("The files of this pack are listed with their SHA-256 in manifest.json, which is signed (Ed25519); `dpiawatch evidence verify` checks them.")
}

func dashIfEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
