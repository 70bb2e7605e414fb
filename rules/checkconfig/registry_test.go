package checkconfig

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// TestAcceptedConfigBuildsEngine: every configuration check-config accepts
// (each loading fixture of config/testdata and the shipped ones) builds the
// engine, so run never refuses what check-config let through.
func TestAcceptedConfigBuildsEngine(t *testing.T) {
	files, err := filepath.Glob("../../config/testdata/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	files = append(files, "../../configs/dpiawatch.yaml", "../../deploy/dpiawatch.yaml")
	loaded := 0
	for _, f := range files {
		cfg, diags := config.Load(f)
		if cfg == nil {
			continue // refused by check-config, with its diagnostics (config's golden files)
		}
		loaded++
		o, err := EngineOptions(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err == nil {
			_, err = rules.New(o)
		}
		if err != nil {
			t.Errorf("%s: check-config accepts it (%d diagnostics) but the engine refuses it: %v", f, len(diags), err)
		}
	}
	if loaded < 5 {
		t.Fatalf("only %d configurations loaded; the test checks too little", loaded)
	}
}

// TestCheckRegistry: the configuration and the engine know the same
// checks, in the same order (checks.Register feeds both), and there are
// some: the shipped checks are installed.
func TestCheckRegistry(t *testing.T) {
	var names []string
	for _, s := range new(config.Checks).Sections() {
		names = append(names, s.Name)
	}
	if len(names) == 0 || !slices.Equal(names, rules.Checks()) {
		t.Errorf("config registers %v, the engine runs %v", names, rules.Checks())
	}
}
