// Package checkconfig translates the configuration's checks sections into
// the rules engine's options. The daemon, replay, scoring and the
// benchmark all build their engine here, so that replay runs exactly the
// checks the daemon runs.
package checkconfig

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// EngineOptions turns the configuration into the rules engine's options.
// The daemon, replay and the benchmark all build their engine here, so that
// replay runs exactly the checks the daemon runs. It walks the checks
// registry (config.Checks.Sections, filled by checks/install): a disabled
// check is named in Disabled, an enabled one gets, for each org, the policy
// its section makes (CheckSection.EnginePolicy) and the DPIA risks it
// evidences. It never names a check.
func EngineOptions(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (rules.Options, error) {
	o := rules.Options{Orgs: map[string]rules.OrgPolicy{}, Logger: log, Registerer: reg, Lateness: cfg.Checks.Lateness.D()}
	if o.Lateness == 0 {
		o.Lateness = rules.NoLateness // written as 0s: judge on arrival
	}
	sections := cfg.Checks.Sections()
	for _, s := range sections {
		if !s.Section.IsEnabled() {
			o.Disabled = append(o.Disabled, s.Name)
		}
	}
	for _, org := range cfg.Orgs {
		p := rules.OrgPolicy{
			DPIA:            org.DPIA,
			Timezone:        org.Location,
			OutOfHoursRoles: org.OutOfHoursRoles,
			Checks:          map[string]any{},
			Risks:           map[string][]rules.RiskRef{},
			PatternRisks:    map[string]map[string][]rules.RiskRef{},
		}
		for _, s := range sections {
			if !s.Section.IsEnabled() {
				continue
			}
			pol, err := s.Section.EnginePolicy(org.ID)
			if err != nil {
				return o, err
			}
			p.Checks[s.Name] = pol
			refs, err := riskRefs(cfg, org.DPIA, s.Section.EvidencedRisks()[org.DPIA])
			if err != nil {
				return o, err
			}
			p.Risks[s.Name] = refs
			if p.PatternRisks[s.Name], err = patternRiskRefs(cfg, org.DPIA, s.Section.PatternEvidencedRisks()); err != nil {
				return o, fmt.Errorf("checks.%s.pattern_evidences: %w", s.Name, err)
			}
		}
		o.Orgs[org.ID] = p
	}
	return o, nil
}

// riskRefs looks up the risks a check evidences in a DPIA register, with
// their titles in the DPIA's words and the mitigation the check evidences.
func riskRefs(cfg *config.Config, dpiaID string, ids []string) ([]rules.RiskRef, error) {
	reg, ok := cfg.Registers[dpiaID]
	if !ok {
		return nil, fmt.Errorf("DPIA %q is not loaded", dpiaID)
	}
	refs := make([]rules.RiskRef, 0, len(ids))
	for _, id := range ids {
		r, ok := reg.Risk(id)
		if !ok {
			return nil, fmt.Errorf("DPIA %s has no risk %q", dpiaID, id)
		}
		refs = append(refs, rules.RiskRef{ID: r.ID, Title: r.Title, Mitigation: monitoringMitigation(r.Mitigations), Score: string(r.Score)})
	}
	return refs, nil
}

// patternRiskRefs looks up, for each pattern that has its own mapping for
// dpiaID, the risks it evidences; a pattern without one is left out, so
// that it takes its check's.
func patternRiskRefs(cfg *config.Config, dpiaID string, pe map[string]map[string][]string) (map[string][]rules.RiskRef, error) {
	out := map[string][]rules.RiskRef{}
	for pattern, byDPIA := range pe {
		ids, ok := byDPIA[dpiaID]
		if !ok {
			continue
		}
		refs, err := riskRefs(cfg, dpiaID, ids)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pattern, err)
		}
		out[pattern] = refs
	}
	return out, nil
}

// monitoringMitigation picks, among a risk's agreed mitigations, the one a
// monitoring check evidences: the audit or monitoring promise where the DPIA
// makes one, else the first.
func monitoringMitigation(ms []string) string {
	if i := slices.IndexFunc(ms, func(m string) bool {
		l := strings.ToLower(m)
		return strings.Contains(l, "audit") || strings.Contains(l, "monitoring")
	}); i >= 0 {
		return ms[i]
	}
	if len(ms) > 0 {
		return ms[0]
	}
	return ""
}
