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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
)

// EngineOptions turns the configuration into the rules engine's options.
// The daemon, replay and the benchmark all build their engine here, so that
// replay runs exactly the checks the daemon runs. It walks the checks
// registry (config.Checks.Sections): a disabled check is named in
// Disabled, an enabled one gets, for each org, its policy (checkPolicies)
// and the DPIA risks it evidences.
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
		}
		for _, s := range sections {
			if !s.Section.IsEnabled() {
				continue
			}
			policy, ok := checkPolicies[s.Name]
			if !ok {
				return o, fmt.Errorf("check %s has no engine policy (rules/checkconfig checkPolicies)", s.Name)
			}
			pol, err := policy(s.Section, org.ID)
			if err != nil {
				return o, err
			}
			p.Checks[s.Name] = pol
			refs, err := riskRefs(cfg, org.DPIA, s.Section.EvidencedRisks()[org.DPIA])
			if err != nil {
				return o, err
			}
			p.Risks[s.Name] = refs
		}
		o.Orgs[org.ID] = p
	}
	return o, nil
}

// checkPolicy turns one check's configuration section into its engine
// policy for one org (the value rules.OrgPolicy.Checks holds under its name).
type checkPolicy func(sec config.CheckSection, org string) (any, error)

// checkPolicies translates each registered check's section into its engine
// policy: one line per check.
var checkPolicies = map[string]checkPolicy{
	config.CheckOutOfHours: func(s config.CheckSection, org string) (any, error) {
		return oohPolicy(*s.(*config.OutOfHours), org)
	},
	config.CheckNoBusinessNeed: func(s config.CheckSection, org string) (any, error) {
		return nbnPolicy(*s.(*config.NoBusinessNeed), org)
	},
	config.CheckUnlockedSession: func(s config.CheckSection, org string) (any, error) {
		return ulsPolicy(*s.(*config.UnlockedSession), org), nil
	},
	config.CheckSharedCredential: func(s config.CheckSection, org string) (any, error) {
		return scPolicy(*s.(*config.SharedCredential), org), nil
	},
	config.CheckBulkAccess: func(s config.CheckSection, org string) (any, error) {
		return bulkPolicy(*s.(*config.BulkAccess), org), nil
	},
}

// oohPolicy resolves the out-of-hours settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides.
func oohPolicy(c config.OutOfHours, org string) (rules.OutOfHoursPolicy, error) {
	p := rules.OutOfHoursPolicy{
		OutOfHoursKnobs: oohKnobs(c.Grace.D(), &c.WorkingHours, c.Severity, c.EpisodeGap.D()),
		Roles:           map[string]rules.OutOfHoursKnobs{},
		Teams:           map[string]rules.OutOfHoursKnobs{},
	}
	for _, ov := range c.Overrides {
		if ov.Org != "" && ov.Org != org {
			continue
		}
		switch {
		case ov.Role != "" && ov.Team != "":
			return p, fmt.Errorf("checks.out-of-hours.overrides: an override for role %q and team %q at once is not supported; use one of them", ov.Role, ov.Team)
		case ov.Role != "":
			p.Roles[ov.Role] = overrideKnobs(ov)
		case ov.Team != "":
			p.Teams[ov.Team] = overrideKnobs(ov)
		default: // an org-wide override
			applyOverride(&p.OutOfHoursKnobs, ov)
		}
	}
	return p, nil
}

// nbnPolicy resolves the no-business-need settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides.
func nbnPolicy(c config.NoBusinessNeed, org string) (rules.NoBusinessNeedPolicy, error) {
	after := c.AfterEnd.D()
	p := rules.NoBusinessNeedPolicy{
		NoBusinessNeedKnobs: rules.NoBusinessNeedKnobs{AfterEnd: &after, EpisodeGap: c.EpisodeGap.D(), Severity: alertSeverity(c.Severity)},
		Roles:               map[string]rules.NoBusinessNeedKnobs{},
		Teams:               map[string]rules.NoBusinessNeedKnobs{},
	}
	for _, ov := range c.Overrides {
		if ov.Org != "" && ov.Org != org {
			continue
		}
		switch {
		case ov.Role != "" && ov.Team != "":
			return p, fmt.Errorf("checks.no-business-need.overrides: an override for role %q and team %q at once is not supported; use one of them", ov.Role, ov.Team)
		case ov.Role != "":
			p.Roles[ov.Role] = nbnOverride(p.Roles[ov.Role], ov)
		case ov.Team != "":
			p.Teams[ov.Team] = nbnOverride(p.Teams[ov.Team], ov)
		default:
			p.NoBusinessNeedKnobs = nbnOverride(p.NoBusinessNeedKnobs, ov)
		}
	}
	return p, nil
}

func nbnOverride(k rules.NoBusinessNeedKnobs, ov config.NBNOverride) rules.NoBusinessNeedKnobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.Severity != "" {
		k.Severity = alertSeverity(ov.Severity)
	}
	if ov.AfterEnd != nil {
		a := ov.AfterEnd.D()
		k.AfterEnd = &a
	}
	return k
}

func oohKnobs(grace time.Duration, wh *config.WorkingHours, severity string, gap time.Duration) rules.OutOfHoursKnobs {
	k := rules.OutOfHoursKnobs{ShiftGrace: &grace, EpisodeGap: gap, Severity: alertSeverity(severity)}
	if wh != nil {
		setWorkingHours(&k, wh)
	}
	return k
}

func overrideKnobs(ov config.Override) rules.OutOfHoursKnobs {
	var k rules.OutOfHoursKnobs
	applyOverride(&k, ov)
	return k
}

func applyOverride(k *rules.OutOfHoursKnobs, ov config.Override) {
	if ov.Grace != nil {
		g := ov.Grace.D()
		k.ShiftGrace = &g
	}
	if ov.Severity != "" {
		k.Severity = alertSeverity(ov.Severity)
	}
	if ov.WorkingHours != nil {
		setWorkingHours(k, ov.WorkingHours)
	}
}

func setWorkingHours(k *rules.OutOfHoursKnobs, wh *config.WorkingHours) {
	days := make([]time.Weekday, 0, len(wh.Days))
	for _, d := range wh.Days {
		days = append(days, time.Weekday(d))
	}
	k.WorkingDays = days
	start, end := clock(wh.Start), clock(wh.End)
	k.Start, k.End = &start, &end
	bh := wh.BankHolidays != config.BankHolidaysNone
	k.BankHolidays = &bh
}

// clock maps the configuration's end-of-day "24:00" to the last minute of
// the day, which the engine treats as included.
func clock(c config.Clock) rules.Clock {
	if c.Hour == 24 {
		return rules.Clock{Hour: 23, Minute: 59}
	}
	return rules.Clock{Hour: c.Hour, Minute: c.Minute}
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

// scPolicy resolves the shared-credential settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides
// (config validation rejects an override naming both), and the org's sites
// are those naming it or no org.
func scPolicy(c config.SharedCredential, org string) rules.SharedCredentialPolicy {
	off, after, req, unrep := c.DisabledPatterns, c.AfterLeaving.D(), c.ExternalRequiresMFA, c.UnreportedMFA
	if off == nil {
		off = []string{}
	}
	travel := c.OffSiteTravel.D()
	p := rules.SharedCredentialPolicy{
		SharedCredentialKnobs: rules.SharedCredentialKnobs{
			DisabledPatterns: off, SessionTimeout: c.SessionTimeout.D(), MaxSpeedKMH: float64(c.MaxSpeedKMH),
			OffSiteTravel: &travel, UnknownNetworks: c.UnknownNetworks, IgnoreAbsenceKinds: c.IgnoreAbsenceKinds,
			AfterLeaving: &after, FailedLogins: c.FailedLogins, FailedLoginWindow: c.FailedLoginWindow.D(),
			ExternalRequiresMFA: &req, UnreportedMFA: &unrep, EpisodeGap: c.EpisodeGap.D(), Severity: alertSeverity(c.Severity),
		},
		Roles:       map[string]rules.SharedCredentialKnobs{},
		Teams:       map[string]rules.SharedCredentialKnobs{},
		DeviceKinds: map[string]time.Duration{},
	}
	for k, d := range c.DeviceSessionTimeouts {
		p.DeviceKinds[k] = d.D()
	}
	for _, s := range c.Sites {
		if s.Org != "" && s.Org != org {
			continue
		}
		site := rules.Site{Name: s.Name}
		for _, n := range s.Networks {
			site.Networks = append(site.Networks, n.Prefix)
		}
		if s.Latitude != nil && s.Longitude != nil {
			site.Located, site.Lat, site.Lon = true, float64(*s.Latitude), float64(*s.Longitude)
		}
		p.Sites = append(p.Sites, site)
	}
	for _, ov := range c.Overrides {
		placeOverride(org, ov.Org, ov.Role, ov.Team, &p.SharedCredentialKnobs, p.Roles, p.Teams,
			func(k rules.SharedCredentialKnobs) rules.SharedCredentialKnobs { return scOverride(k, ov) })
	}
	return p
}

func scOverride(k rules.SharedCredentialKnobs, ov config.SCOverride) rules.SharedCredentialKnobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.Severity != "" {
		k.Severity = alertSeverity(ov.Severity)
	}
	if ov.DisabledPatterns != nil {
		k.DisabledPatterns = append([]string{}, *ov.DisabledPatterns...)
	}
	if ov.SessionTimeout != nil {
		k.SessionTimeout = ov.SessionTimeout.D()
	}
	if ov.MaxSpeedKMH != nil {
		k.MaxSpeedKMH = float64(*ov.MaxSpeedKMH)
	}
	if ov.OffSiteTravel != nil {
		d := ov.OffSiteTravel.D()
		k.OffSiteTravel = &d
	}
	if ov.UnknownNetworks != "" {
		k.UnknownNetworks = ov.UnknownNetworks
	}
	if ov.IgnoreAbsenceKinds != nil {
		k.IgnoreAbsenceKinds = append([]string{}, *ov.IgnoreAbsenceKinds...)
	}
	if ov.AfterLeaving != nil {
		d := ov.AfterLeaving.D()
		k.AfterLeaving = &d
	}
	if ov.FailedLogins != nil {
		k.FailedLogins = *ov.FailedLogins
	}
	if ov.FailedLoginWindow != nil {
		k.FailedLoginWindow = ov.FailedLoginWindow.D()
	}
	if ov.ExternalRequiresMFA != nil {
		k.ExternalRequiresMFA = ov.ExternalRequiresMFA
	}
	if ov.UnreportedMFA != nil {
		k.UnreportedMFA = ov.UnreportedMFA
	}
	return k
}

// ulsPolicy resolves the unlocked-session settings for one org. Overrides
// for every org apply first, then the org's own, so that the org's win;
// those naming no role, team or device kind fold into the org's knobs.
// (Config validation rejects an override naming more than one.)
func ulsPolicy(c config.UnlockedSession, org string) rules.UnlockedSessionPolicy {
	p := rules.UnlockedSessionPolicy{
		UnlockedSessionKnobs: rules.UnlockedSessionKnobs{
			Limit: c.Limit.D(), OpenFor: c.OpenFor.D(), NewSessionAfter: c.NewSessionAfter.D(),
			EpisodeGap: c.EpisodeGap.D(), Severity: alertSeverity(c.Severity),
		},
		DeviceKinds: map[string]rules.UnlockedSessionKnobs{},
		Roles:       map[string]rules.UnlockedSessionKnobs{},
		Teams:       map[string]rules.UnlockedSessionKnobs{},
	}
	for _, own := range []bool{false, true} {
		for _, ov := range c.Overrides {
			if (ov.Org == org) != own || (ov.Org != "" && ov.Org != org) {
				continue
			}
			switch {
			case ov.DeviceKind != "":
				p.DeviceKinds[ov.DeviceKind] = ulsOverride(p.DeviceKinds[ov.DeviceKind], ov)
			case ov.Role != "":
				p.Roles[ov.Role] = ulsOverride(p.Roles[ov.Role], ov)
			case ov.Team != "":
				p.Teams[ov.Team] = ulsOverride(p.Teams[ov.Team], ov)
			default:
				p.UnlockedSessionKnobs = ulsOverride(p.UnlockedSessionKnobs, ov)
			}
		}
	}
	return p
}

func ulsOverride(k rules.UnlockedSessionKnobs, ov config.ULSOverride) rules.UnlockedSessionKnobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.UnlockedGap != nil {
		k.UnlockedGap = ov.UnlockedGap
	}
	if ov.DeviceHandover != nil {
		k.DeviceHandover = ov.DeviceHandover
	}
	if ov.Limit != nil {
		k.Limit = ov.Limit.D()
	}
	if ov.OpenFor != nil {
		k.OpenFor = ov.OpenFor.D()
	}
	if ov.Severity != "" {
		k.Severity = alertSeverity(ov.Severity)
	}
	return k
}

// bulkPolicy resolves the bulk-access settings for one org: org-wide
// overrides fold into the org's knobs, role and team ones become overrides
// (config validation refuses an override naming both).
func bulkPolicy(c config.BulkAccess, org string) rules.BulkAccessPolicy {
	p := rules.BulkAccessPolicy{
		BulkAccessKnobs: rules.BulkAccessKnobs{
			Window: c.Window.D(), MinSubjects: c.MinSubjects, Multiplier: float64(c.Multiplier), BaselineDays: c.BaselineDays,
			Quantile: float64(c.Quantile), MinHistoryDays: c.MinHistoryDays, MinTeamSamples: c.MinTeamSamples,
			ColdStartSubjects: c.ColdStartSubjects, MaxTracked: c.MaxTracked, EpisodeGap: c.EpisodeGap.D(),
			Severity: alertSeverity(c.Severity),
		},
		Roles: map[string]rules.BulkAccessKnobs{},
		Teams: map[string]rules.BulkAccessKnobs{},
	}
	for _, ov := range c.Overrides {
		placeOverride(org, ov.Org, ov.Role, ov.Team, &p.BulkAccessKnobs, p.Roles, p.Teams,
			func(k rules.BulkAccessKnobs) rules.BulkAccessKnobs { return bulkOverride(k, ov) })
	}
	return p
}

func bulkOverride(k rules.BulkAccessKnobs, ov config.BulkOverride) rules.BulkAccessKnobs {
	if ov.Exempt != nil {
		k.Exempt = ov.Exempt
	}
	if ov.Severity != "" {
		k.Severity = alertSeverity(ov.Severity)
	}
	if ov.Window != nil {
		k.Window = ov.Window.D()
	}
	for _, f := range []struct {
		from *int
		to   *int
	}{
		{ov.MinSubjects, &k.MinSubjects}, {ov.BaselineDays, &k.BaselineDays}, {ov.MinHistoryDays, &k.MinHistoryDays},
		{ov.MinTeamSamples, &k.MinTeamSamples}, {ov.ColdStartSubjects, &k.ColdStartSubjects}, {ov.MaxTracked, &k.MaxTracked},
	} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if ov.Multiplier != nil {
		k.Multiplier = float64(*ov.Multiplier)
	}
	if ov.Quantile != nil {
		k.Quantile = float64(*ov.Quantile)
	}
	return k
}

// placeOverride applies an override of org (ovOrg empty: of every org) at
// its level — a role's knobs, a team's, or the org's own — by apply; an
// override of another org is skipped. Configuration refuses an override
// naming both a role and a team.
func placeOverride[K any](org, ovOrg, role, team string, base *K, roles, teams map[string]K, apply func(K) K) {
	switch {
	case ovOrg != "" && ovOrg != org:
	case role != "":
		roles[role] = apply(roles[role])
	case team != "":
		teams[team] = apply(teams[team])
	default:
		*base = apply(*base)
	}
}

func alertSeverity(s string) alert.Severity { return alert.Severity(s) }
