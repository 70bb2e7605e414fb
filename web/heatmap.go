package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alertview"
)

// heat is a count per local weekday (Monday first) and hour.
type heat [7][24]float64

var weekdayNames = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// grid buckets hourly UTC counts into local weekday and hour. Exact for
// zones whose offsets are whole hours (all of the UK's); a half-hour zone
// would attribute each hour to its start.
func grid(hours []alertview.HourCount, loc *time.Location) heat {
	var g heat
	for _, h := range hours {
		t := h.Hour.In(loc)
		g[(int(t.Weekday())+6)%7][t.Hour()] += float64(h.Count)
	}
	return g
}

func (g heat) total() float64 {
	var n float64
	for _, row := range g {
		for _, v := range row {
			n += v
		}
	}
	return n
}

// outsideShare is the percentage of activity outside Mon–Fri 08:00–18:00
// (CONTRACT §4's default working hours; a summary, not the check itself).
func (g heat) outsideShare() int {
	total := g.total()
	if total == 0 {
		return 0
	}
	var out float64
	for d, row := range g {
		for h, v := range row {
			if d >= 5 || h < 8 || h >= 18 {
				out += v
			}
		}
	}
	return int(out*100/total + 0.5)
}

// heatmapSVG draws g as an accessible SVG: colour by share of the busiest
// cell (a sequential blue scale readable by colour-blind viewers), each
// cell titled with its count, and no inline style so the CSP holds.
func heatmapSVG(g heat, label string) template.HTML {
	const (
		cell   = 22
		left   = 40
		top    = 22
		width  = left + 24*cell
		height = top + 7*cell + 4
	)
	var peak float64
	for _, row := range g {
		for _, v := range row {
			peak = max(peak, v)
		}
	}
	// GOV.UK-ish blues from pale to dark; 0 is a light grey.
	scale := []string{"#d2e2f1", "#a6c6e3", "#76a6d2", "#4b85bf", "#1d70b8", "#144e81", "#0b2d4a"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" class="app-heatmap">`,
		width, height, width, height, template.HTMLEscapeString(label))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(label))
	for h := 0; h < 24; h += 3 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#0b0c0c">%02d</text>`, left+h*cell+2, top-6, h)
	}
	for d := range 7 {
		y := top + d*cell
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="12" fill="#0b0c0c">%s</text>`, y+15, weekdayNames[d])
		for h := range 24 {
			v := g[d][h]
			fill := "#f3f2f1"
			if v > 0 && peak > 0 {
				i := int(v / peak * float64(len(scale)-1))
				fill = scale[min(i, len(scale)-1)]
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#ffffff"><title>%s %02d:00: %s</title></rect>`,
				left+h*cell, y, cell, cell, fill, weekdayNames[d], h, fmtCount(v))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers and escaped text only
}

func fmtCount(v float64) string {
	if v == float64(int(v)) {
		return fmt.Sprintf("%d", int(v))
	}
	return fmt.Sprintf("%.1f", v)
}
