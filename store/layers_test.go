package store_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/dpiawatch/dpiawatch/"

// TestLayersPointDown holds the layering of issue 15: storage sits below
// the packages that read it, the records both share sit below storage, and
// the checks sit above the engine and the configuration, which name none.
// No package under store/ may depend, even indirectly, on the web UI, the
// evidence export, alert delivery or the configuration: those declare the
// narrow interfaces they need, the stores satisfy them structurally, and the
// daemon translates configuration into Options.
func TestLayersPointDown(t *testing.T) {
	above := []string{"web", "evidence", "config", "alerting", "daemon", "cli"}
	records := []string{"alertview", "viewlog", "evidencequery", "routineaudit", "triage", "silence", "audit", "pseudonym"}
	forbidden := map[string][]string{}
	for _, p := range []string{"store", "store/sqlite", "store/clickhouse", "store/clickhouse/chtest", "store/storetest"} {
		forbidden[p] = above
	}
	for _, p := range records {
		forbidden[p] = append([]string{"store"}, above...)
	}
	// The check registry: the engine and the configuration know no check;
	// a check knows the engine and the configuration, never what runs it.
	runners := []string{"daemon", "cli", "stream", "web", "evidence", "alerting", "replay"}
	for _, p := range []string{"rules", "rules/rulestest", "config"} {
		forbidden[p] = append([]string{"checks", "checks/install", "checks/outofhours"}, runners...)
	}
	forbidden["config"] = append(forbidden["config"], "rules")
	for _, p := range []string{"checks", "checks/outofhours", "checks/nobusinessneed", "checks/sharedcredential",
		"checks/unlockedsession", "checks/bulkaccess", "checks/example/recorddeleted"} {
		forbidden[p] = append([]string{"checks/install"}, runners...)
	}
	for pkg, bad := range forbidden {
		t.Run(pkg, func(t *testing.T) {
			for dep, via := range moduleDeps(t, module+pkg) {
				for _, a := range bad {
					if dep == module+a {
						t.Errorf("%s depends on %s (imported by %s): it must not depend on the layers above it", pkg, dep, via)
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
