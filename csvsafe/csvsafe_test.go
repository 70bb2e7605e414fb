package csvsafe

import "testing"

func TestCell(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"u-17", "u-17"},
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{`=HYPERLINK("http://x.example","y")`, `'=HYPERLINK("http://x.example","y")`},
		{"@SUM(1+1)", "'@SUM(1+1)"},
		{"+1+cmd", "'+1+cmd"},
		{"-2+cmd", "'-2+cmd"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"-1.85", "-1.85"}, // a longitude: a number, not a formula
		{"+44", "+44"},
		{"42", "42"},
		{"a=b", "a=b"}, // only the first character counts
		{"u-\u202e71exe.doc", "u-[U+202E]71exe.doc"},
		{"=\u202e1", "'=[U+202E]1"},
	} {
		if got := Cell(c.in); got != c.want {
			t.Errorf("Cell(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRowCopies(t *testing.T) {
	in := []string{"=1", "ok"}
	out := Row(in)
	if in[0] != "=1" || out[0] != "'=1" || out[1] != "ok" {
		t.Errorf("Row(%q) = %q; the input must be left as it was", in, out)
	}
}
