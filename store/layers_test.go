package store_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/dpiawatch/dpiawatch/"

// TestStorageImportsPointDown holds the layering of issue 15: storage sits
// below the packages that read it. No package under store/ may depend, even
// indirectly, on the web UI, the evidence export or the configuration; they
// declare the narrow interfaces they need and the stores satisfy them
// structurally, and the daemon translates configuration into Options.
func TestStorageImportsPointDown(t *testing.T) {
	above := []string{"web", "evidence", "config", "daemon", "cli", "alerting"}
	for _, dir := range []string{".", "sqlite", "clickhouse", "clickhouse/chtest", "storetest"} {
		pkg := module + "store"
		if dir != "." {
			pkg += "/" + dir
		}
		t.Run(pkg, func(t *testing.T) {
			for dep, via := range moduleDeps(t, pkg) {
				for _, a := range above {
					if dep == module+a {
						t.Errorf("%s imports %s (via %s): storage must not depend on the layers above it", pkg, dep, via)
					}
				}
			}
		})
	}
}

// moduleDeps returns the module's packages pkg depends on (non-test
// imports, transitively), each with the package that imports it.
func moduleDeps(t *testing.T, pkg string) map[string]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		bp, err := build.ImportDir(filepath.Join(root, strings.TrimPrefix(p, module)), 0)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			if _, seen := deps[imp]; seen {
				continue
			}
			deps[imp] = p
			walk(imp)
		}
	}
	walk(pkg)
	return deps
}
