package clickhouse

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestQueriesBindValues keeps values out of the SQL text: every value a
// query uses goes to the server as a parameter ({name:Type}, parsed by the
// server, never spliced). The helpers that render values as SQL literals
// must not come back, and the one literal renderer left (row policies, DDL
// that takes no parameters) serves only Policies.
func TestQueriesBindValues(t *testing.T) {
	forbidden := map[string]bool{"quote": true, "quoteList": true, "timeLit": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var bad []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, _ := d.(*ast.FuncDecl)
			ast.Inspect(d, func(n ast.Node) bool {
				id, ok := n.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case forbidden[id.Name]:
					bad = append(bad, fset.Position(id.Pos()).String()+": "+id.Name+" splices a value into SQL; bind it as a {name:Type} parameter")
				case id.Name == "ddlStringLiteral" && (fn == nil || (fn.Name.Name != "Policies" && fn.Name.Name != "ddlStringLiteral")):
					bad = append(bad, fset.Position(id.Pos()).String()+": ddlStringLiteral is for row-policy DDL only")
				}
				return true
			})
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
	if len(bad) > 0 {
		t.Logf("%d sites splice values into SQL", len(bad))
	}
}
