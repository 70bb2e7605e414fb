// Package csvsafe makes the cells of a CSV export safe to open in a
// spreadsheet: the exports of the web UI and the evidence pack hold ids,
// names and explanations that came from producers and reference files, and
// a spreadsheet runs a cell that begins with a formula character.
package csvsafe

import (
	"regexp"
	"strings"

	"github.com/dpiawatch/dpiawatch/visible"
)

// Cell returns c as a spreadsheet shows it as text: hidden and
// bidirectional characters made visible (visible.Text), and a cell a
// spreadsheet would run as a formula (one beginning with = + - @, or with a
// tab or carriage return before one) prefixed with an apostrophe, which
// spreadsheets show as text (OWASP's advice on CSV injection). A plain
// decimal number (a negative longitude, a count) is left as it is: a
// spreadsheet reads it as that number and runs nothing, and an apostrophe
// would make it text to every program reading the file.
func Cell(c string) string {
	c = visible.Text(c)
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) && !plainNumber.MatchString(c) {
		return "'" + c
	}
	return c
}

// Row returns a copy of row with every cell made safe by Cell.
func Row(row []string) []string {
	out := make([]string, len(row))
	for i, c := range row {
		out[i] = Cell(c)
	}
	return out
}

var plainNumber = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)
