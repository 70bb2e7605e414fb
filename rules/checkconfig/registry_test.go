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

// TestPatternRisksInEngine: the engine options carry each pattern's own
// risks, and dpiawatch_rules_alerts_total is pre-initialised for them — a
// pattern mapped to no risk as risk="none", a risk only a pattern cites
// under its check — so that a rate over them starts at zero.
func TestPatternRisksInEngine(t *testing.T) {
	cfg, diags := config.Load("../../config/testdata/pattern_evidences_ok.yaml")
	if cfg == nil {
		t.Fatalf("load: %s", diags)
	}
	reg := prometheus.NewRegistry()
	o, err := EngineOptions(cfg, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	sm, wc := o.Orgs["st-martins"], o.Orgs["wiltshire-council"]
	if got := sm.PatternRisks["unlocked-session"]; len(got) != 2 || got["unlocked-gap"] == nil || len(got["unlocked-gap"]) != 0 {
		t.Errorf("st-martins unlocked-session pattern risks = %+v, want unlocked-gap and device-handover, both []", got)
	}
	if got := wc.PatternRisks["no-business-need"]["outside-sharing-agreement"]; len(got) != 2 || got[1].ID != "R4" || got[1].Title != "Misuse of data by users" || got[1].Score != "medium" {
		t.Errorf("wiltshire outside-sharing-agreement risks = %+v", got)
	}
	if _, ok := wc.PatternRisks["unlocked-session"]["unlocked-gap"]; ok {
		t.Error("wiltshire unlocked-gap has its own risks; the file names only St Martins for it")
	}
	if _, err := rules.New(o); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "dpiawatch_rules_alerts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			series[l["check"]+" "+l["dpia"]+" "+l["risk"]] = true
		}
	}
	for _, want := range []string{
		"unlocked-session st-martins-webster-court none",
		"unlocked-session st-martins-webster-court R3",
		"no-business-need wiltshire-childrens-cms R4",
		"unlocked-session wiltshire-childrens-cms R3",
	} {
		if !series[want] {
			t.Errorf("no dpiawatch_rules_alerts_total series for %s", want)
		}
	}
}
