package web

import (
	"fmt"
	"html/template"
	"strings"
)

// Server-side SVG charts: numbers drawn as shapes with attributes only (the
// CSP forbids inline style), each with a title for screen readers and
// hover, and always beside a table or text that carries the same numbers.

// bar is one labelled value of a bar chart.
type bar struct {
	Label string
	Value float64
	Text  string // the value as shown; default the number
}

// barsSVG draws horizontal bars scaled to max (0: the largest value).
func barsSVG(bars []bar, label string, maxValue float64) template.HTML {
	if len(bars) == 0 {
		return ""
	}
	const (
		labelW = 180
		barW   = 360
		rowH   = 24
		textW  = 160
	)
	for _, b := range bars {
		maxValue = max(maxValue, b.Value)
	}
	width, height := labelW+barW+textW, rowH*len(bars)+4
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" class="app-bars">`,
		width, height, width, height, template.HTMLEscapeString(label))
	fmt.Fprintf(&s, `<title>%s</title>`, template.HTMLEscapeString(label))
	for i, b := range bars {
		y := i*rowH + 2
		text := b.Text
		if text == "" {
			text = fmtCount(b.Value)
		}
		w := 0
		if maxValue > 0 {
			w = int(b.Value / maxValue * barW)
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" font-size="13" fill="#0b0c0c" text-anchor="end">%s</text>`, labelW-8, y+16, template.HTMLEscapeString(clip(b.Label, 26)))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f3f2f1"/>`, labelW, y+3, barW, rowH-8)
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="#1d70b8"><title>%s: %s</title></rect>`,
			labelW, y+3, w, rowH-8, template.HTMLEscapeString(b.Label), template.HTMLEscapeString(text))
		fmt.Fprintf(&s, `<text x="%d" y="%d" font-size="13" fill="#0b0c0c">%s</text>`, labelW+barW+8, y+16, template.HTMLEscapeString(text))
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) // built from numbers and escaped text only
}

// sparkSVG draws counts as small columns, oldest first: a trend at a glance.
// labels[i] names column i (its period) in the column's title.
func sparkSVG(counts []int, labels []string, label string) template.HTML {
	const (
		colW   = 10
		gap    = 2
		height = 28
	)
	peak := 0
	for _, c := range counts {
		peak = max(peak, c)
	}
	width := len(counts)*(colW+gap) + gap
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" class="app-spark">`,
		width, height, width, height, template.HTMLEscapeString(label))
	fmt.Fprintf(&s, `<title>%s</title>`, template.HTMLEscapeString(label))
	fmt.Fprintf(&s, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#b1b4b6"/>`, height-1, width, height-1)
	for i, c := range counts {
		h := 0
		if peak > 0 {
			h = c * (height - 2) / peak
		}
		if c > 0 {
			h = max(h, 2)
		}
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="#1d70b8"><title>%s: %d</title></rect>`,
			gap+i*(colW+gap), height-1-h, colW, h, template.HTMLEscapeString(labels[i]), c)
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
