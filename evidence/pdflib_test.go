package evidence

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPDFLibrary pins the PDF library to its maintained home: the
// github.com/go-pdf/fpdf path is archived and gets no fixes.
func TestPDFLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := false
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case p == "codeberg.org/go-pdf/fpdf":
				found = true
			case strings.Contains(p, "fpdf"):
				t.Errorf("%s imports %s; use codeberg.org/go-pdf/fpdf, the maintained home", name, p)
			}
		}
	}
	if !found {
		t.Error("no file of evidence imports codeberg.org/go-pdf/fpdf")
	}
}
