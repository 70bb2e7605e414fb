package web_test

import (
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// luminance is WCAG 2's relative luminance of a #rrggbb colour.
func luminance(hex string) float64 {
	var l [3]float64
	for i := range l {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

var chartText = regexp.MustCompile(`<text [^>]*font-size="(\d+)" fill="(#[0-9a-fA-F]{6})"`)

// TestChartTextContrast: every text drawn in the SVG charts (which axe-core
// does not judge) has at least WCAG AA's 4.5:1 against the white page and
// the charts' pale grey (#f3f2f1), and is at least 11 px (issue 13).
func TestChartTextContrast(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.now.Add(7 * 24 * time.Hour)
	f.complete(t, f.now.Now())
	c, _ := f.login(t, "ig")
	texts := 0
	for _, path := range []string{"/overview", "/audit/routine", "/actors/" + org + "/" + actorA} {
		_, body := get(t, c, f.srv.URL+path)
		for _, m := range chartText.FindAllStringSubmatch(body, -1) {
			texts++
			size, _ := strconv.Atoi(m[1])
			fg := luminance(m[2])
			for _, bg := range []string{"#ffffff", "#f3f2f1"} {
				hi, lo := max(fg, luminance(bg)), min(fg, luminance(bg))
				if ratio := (hi + 0.05) / (lo + 0.05); ratio < 4.5 {
					t.Errorf("%s: chart text %s on %s has contrast %.2f:1, want 4.5:1", path, m[2], bg, ratio)
				}
			}
			if size < 11 {
				t.Errorf("%s: chart text of %d px", path, size)
			}
		}
	}
	if texts < 10 {
		t.Fatalf("found %d chart texts: the charts' markup changed under this test", texts)
	}
}
