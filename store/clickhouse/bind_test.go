package clickhouse

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/store/clickhouse/chtest"
)

// TestQueriesBindValues keeps values out of the SQL text: every value a
// query uses goes to the server as a parameter ({name:Type}, parsed by the
// server, never spliced). The helpers that render values as SQL literals
// must not come back, and the one literal renderer left (row policies, DDL
// that takes no parameters) serves only Policies.
func TestQueriesBindValues(t *testing.T) {
	forbidden := map[string]bool{"quote": true, "quoteList": true, "timeLit": true, "nanos": true}
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

// ddlHostile are reader orgs as a careless or hostile config could name
// them.
var ddlHostile = []string{
	"", "st-martins", `o'brien`, `\`, `back\slash\`, `\'`, `'`, `''`, `x' OR '1'='1`, `a') OR 1=1 --`,
	"nul\x00byte", "line\nbreak\ttab\r", "rtl\u202eevil", "\xff\xfe not utf-8", strings.Repeat(`'\`, 5000),
}

// TestDDLStringLiteral pins the escaping of the one literal renderer left.
func TestDDLStringLiteral(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `''`},
		{"st-martins", `'st-martins'`},
		{`o'brien`, `'o\'brien'`},
		{`\`, `'\\'`},
		{`\'`, `'\\\''`},
		{"nul\x00byte", `'nul\0byte'`},
		{"line\nbreak", "'line\nbreak'"},
		{"rtl\u202eevil", "'rtl\u202eevil'"},
	}
	for _, c := range cases {
		if got := ddlStringLiteral(c.in); got != c.want {
			t.Errorf("ddlStringLiteral(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestDDLStringLiteralRoundTrip has the server read each rendered literal
// back: it must be one string literal holding exactly the input, however
// hostile the input.
func TestDDLStringLiteralRoundTrip(t *testing.T) {
	conn := chtest.Shared(t).Open(t, "")
	for _, in := range ddlHostile {
		if !utf8.ValidString(in) {
			continue // chdb-http passes query text to chDB as Python str; TestDDLStringLiteral and the fuzz target cover it
		}
		var got string
		var n uint64
		if err := conn.QueryRow(context.Background(), `SELECT `+ddlStringLiteral(in)+` AS v, length(v)`).Scan(&got, &n); err != nil {
			t.Errorf("literal of %q: %v", in, err)
			continue
		}
		if got != in || n != uint64(len(in)) {
			t.Errorf("literal of %q read back as %q (%d bytes)", in, got, n)
		}
	}
}

// FuzzDDLStringLiteral: whatever the input, the literal is quoted, holds
// no NUL, and no quote inside it ends it early.
func FuzzDDLStringLiteral(f *testing.F) {
	for _, s := range ddlHostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		lit := ddlStringLiteral(in)
		if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' || strings.IndexByte(lit, 0) >= 0 {
			t.Fatalf("ddlStringLiteral(%q) = %q", in, lit)
		}
		var out []byte
		body := lit[1 : len(lit)-1]
		for i := 0; i < len(body); i++ {
			switch c := body[i]; c {
			case '\'':
				t.Fatalf("ddlStringLiteral(%q) = %q: unescaped quote at %d", in, lit, i+1)
			case '\\':
				i++
				if i == len(body) {
					t.Fatalf("ddlStringLiteral(%q) = %q: escapes the closing quote", in, lit)
				}
				if body[i] == '0' {
					out = append(out, 0)
				} else {
					out = append(out, body[i])
				}
			default:
				out = append(out, c)
			}
		}
		if string(out) != in {
			t.Fatalf("ddlStringLiteral(%q) = %q reads back as %q", in, lit, out)
		}
	})
}

func TestChunks(t *testing.T) {
	cases := []struct {
		name string
		n    int
		size int // of every key
		want [][2]int
	}{
		{"none", 0, 10, nil},
		{"one", 1, 10, [][2]int{{0, 1}}},
		{"by count", 2500, 10, [][2]int{{0, 1000}, {1000, 2000}, {2000, 2500}}},
		{"by bytes", 5, maxChunkBytes / 2, [][2]int{{0, 2}, {2, 4}, {4, 5}}},
		{"a key past the budget goes alone", 3, maxChunkBytes + 1, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
	}
	for _, c := range cases {
		got := chunks(c.n, func(int) int { return c.size })
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: chunks = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestTextArray pins the text of array and tuple parameters: quoted as
// clickhouse-go quotes strings within them (backslash, quote and NUL
// escaped; the rest, tabs and newlines too, as they are), which the
// hostile-values suite reads back through the server.
func TestTextArray(t *testing.T) {
	for _, c := range []struct {
		name string
		a    textArray
		want string
	}{
		{"empty", textArray{1, nil}, `[]`},
		{"strings", textArray{1, []string{"a", "o'brien", `back\slash`, "nul\x00", "tab\tline\n"}}, "['a','o\\'brien','back\\\\slash','nul\\0','tab\tline\n']"},
		{"tuples", textArray{3, []string{"o", "s", "e-1", "o", "s", `x') OR 1=1 --`}}, `[('o','s','e-1'),('o','s','x\') OR 1=1 --')]`},
		{"one tuple", textArray{2, []string{"é", ""}}, `[('é','')]`},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}
