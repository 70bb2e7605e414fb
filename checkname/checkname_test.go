package checkname_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/checkname"
	_ "github.com/dpiawatch/dpiawatch/checks/install"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/heartbeat"
)

// constants returns the string constants of the Go files in dir whose
// names start with prefix: every Pattern* the rules declare, read from
// their source so that a pattern added there without a name here fails.
func constants(t *testing.T, dir, prefix string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					out = append(out, v)
				}
			}
			return true
		})
	}
	return out
}

func TestEveryCheckAndPatternIsNamed(t *testing.T) {
	checks := append(rules.Checks(), rules.CheckFeedIntegrity, heartbeat.CheckFeedSilent)
	// The engine's own patterns, and each shipped check's in its package
	// (the example check of the walkthrough is not shipped).
	patterns := append(constants(t, filepath.Join("..", "rules"), "Pattern"), "no-events")
	dirs, err := filepath.Glob(filepath.Join("..", "checks", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if filepath.Base(d) != "example" {
			patterns = append(patterns, constants(t, d, "Pattern")...)
		}
	}
	if len(patterns) < 15 {
		t.Fatalf("found only %d patterns in rules/ and checks/: %v", len(patterns), patterns)
	}
	seen := map[string]string{}
	for _, c := range checks {
		n := checkname.Check(c)
		if n == c || n == "" {
			t.Errorf("check %q has no display name", c)
		}
		if o, dup := seen[n]; dup {
			t.Errorf("checks %q and %q are both shown as %q", o, c, n)
		}
		seen[n] = c
	}
	clear(seen)
	for _, p := range patterns {
		n := checkname.Pattern(p)
		if n == p || n == "" {
			t.Errorf("pattern %q has no display name", p)
		}
		if o, dup := seen[n]; dup && o != p {
			t.Errorf("patterns %q and %q are both shown as %q", o, p, n)
		}
		seen[n] = p
	}
}

func TestUnknownShowsAsItself(t *testing.T) {
	for _, tc := range []struct{ in, check, pattern string }{
		{"out-of-hours", "Out-of-hours access", "out-of-hours"},
		{"outside-sharing-agreement", "outside-sharing-agreement", "Outside the sharing agreement"},
		{"not-a-check", "not-a-check", "not-a-check"},
	} {
		if got := checkname.Check(tc.in); got != tc.check {
			t.Errorf("Check(%q) = %q, want %q", tc.in, got, tc.check)
		}
		if got := checkname.Pattern(tc.in); got != tc.pattern {
			t.Errorf("Pattern(%q) = %q, want %q", tc.in, got, tc.pattern)
		}
	}
}
