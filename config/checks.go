package config

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"go.yaml.in/yaml/v3"
)

// DefaultLateness is how far out of order events may come and still be
// judged in order.
const DefaultLateness = Duration(5 * time.Minute)

// DefaultIdleRelease is how long the input may be quiet before waiting
// events are judged.
const DefaultIdleRelease = Duration(30 * time.Second)

// CheckSection is one check's part of the checks section, owned by the
// check's own package (checks/<name>) and registered with RegisterCheck. It
// decodes strictly from its YAML node by its `yaml` tags like every type
// here (an unknown key or a wrong kind is reported with its position before
// Validate runs), validates its keys with their positions, fills its own
// defaults and makes the engine policy of each org. Generic code
// (validation, defaults, the warnings about unevidenced risks, the engine
// options) iterates Checks.Sections and never names a check.
type CheckSection interface {
	// Validate reports each bad value at its own key, below path (e.g.
	// "checks.out-of-hours"), through v; c is the whole configuration, for
	// cross-checks (orgs, DPIA registers). It runs before defaults.
	Validate(v *Validator, path string, c *Config)
	// SetDefaults fills what the file left out; v.Set tells whether a key
	// was written, so that an explicit false or 0s is kept.
	SetDefaults(v *Validator, path string)
	// IsEnabled reports whether the check runs (after defaults: true unless
	// the file says enabled: false).
	IsEnabled() bool
	// EvidencedRisks maps a DPIA id to the risks the check evidences.
	EvidencedRisks() map[string][]string
	// PatternEvidencedRisks maps a pattern of the check, then a DPIA id,
	// to the risks that pattern's alerts evidence instead of the check's
	// (an empty list: no risk of that DPIA; a DPIA not named: the check's).
	PatternEvidencedRisks() map[string]map[string][]string
	// EnginePolicy is the check's policy for one org, the value
	// rules.OrgPolicy.Checks holds under the check's name.
	EnginePolicy(org string) (any, error)
}

// CheckCommon is what every check's section has; a section embeds it
// inline (`yaml:",inline"`), so that its keys stand beside the check's own:
// checks.<name>.enabled, .evidences and .severity.
type CheckCommon struct {
	Enabled bool `yaml:"enabled"` // default true
	// Evidences maps a DPIA id to the risk ids this check evidences.
	Evidences map[string][]string `yaml:"evidences"`
	// PatternEvidences maps a pattern of the check, then a DPIA id, to the
	// risk ids that pattern evidences in place of Evidences: a check spans
	// several behaviours, and a DPIA's risk may describe some of them only.
	// An empty list says that no risk of the DPIA covers the pattern.
	PatternEvidences map[string]map[string][]string `yaml:"pattern_evidences"`
	// Severity applies where the DPIA leaves those risks unscored; the
	// check says its default (SetCommonDefaults).
	Severity string `yaml:"severity"`
}

// IsEnabled implements CheckSection.
func (c *CheckCommon) IsEnabled() bool { return c.Enabled }

// EvidencedRisks implements CheckSection.
func (c *CheckCommon) EvidencedRisks() map[string][]string { return c.Evidences }

// PatternEvidencedRisks implements CheckSection.
func (c *CheckCommon) PatternEvidencedRisks() map[string]map[string][]string {
	return c.PatternEvidences
}

// RisksOf returns the risk ids of dpiaID that an alert of pattern of a
// check with section s evidences: the pattern's own mapping where it has
// one for that DPIA, else the check's. The result is never nil, and a
// copy.
func RisksOf(s CheckSection, pattern, dpiaID string) []string {
	rs, ok := s.PatternEvidencedRisks()[pattern][dpiaID]
	if !ok {
		rs = s.EvidencedRisks()[dpiaID]
	}
	return append([]string{}, rs...)
}

// ValidateCommon validates the common keys below path: the severity, and
// that every DPIA and risk evidenced exists.
func (c *CheckCommon) ValidateCommon(v *Validator, path string, cfg *Config) {
	if c.Severity != "" && !ValidSeverity(c.Severity) {
		v.Errorf(path+".severity", "unknown severity %q (low, medium, high or critical)", c.Severity)
	}
	cfg.ValidateEvidences(v, path+".evidences", c.Evidences)
}

// SetCommonDefaults enables the check unless the file said enabled: false,
// and gives it severity unless the file gave one.
func (c *CheckCommon) SetCommonDefaults(v *Validator, path string, severity alert.Severity) {
	if !v.Set(path + ".enabled") {
		c.Enabled = true
	}
	c.Severity = cmp.Or(c.Severity, string(severity))
}

// OverrideTarget is whom a check's override applies to: an org (empty:
// every org), and a role or a team (never both: ValidateOverrideTarget). An
// override embeds it inline (`yaml:",inline"`).
type OverrideTarget struct {
	Org  string `yaml:"org"`
	Role string `yaml:"role"`
	Team string `yaml:"team"`
}

// Target returns whom the override applies to (checks.PlaceOverrides).
func (t OverrideTarget) Target() (org, role, team string) { return t.Org, t.Role, t.Team }

// checkEntry is one registered check's section: its name (CONTRACT §3,
// its key under checks), its patterns and how to make an empty one to
// decode into.
type checkEntry struct {
	name       string
	patterns   []string
	newSection func() CheckSection
}

var (
	checksMu   sync.Mutex
	checkTypes []checkEntry // in the order registered: the order checks run and are reported
)

// RegisterCheck adds the section of the check name to those the checks
// section decodes, in the order registered; patterns are the patterns its
// alerts carry (CONTRACT §3), the keys its pattern_evidences may use;
// newSection returns an empty section (a pointer) to decode into. It
// panics on a name registered twice, a key the checks section already
// has, or no patterns: programming errors, found at start-up. Package
// checks calls it for every check it installs.
func RegisterCheck(name string, patterns []string, newSection func() CheckSection) {
	checksMu.Lock()
	defer checksMu.Unlock()
	if name == "" || newSection == nil || slices.Contains(checksFixedKeys(), name) || len(patterns) == 0 || slices.Contains(patterns, "") {
		panic(fmt.Sprintf("config: RegisterCheck(%q): want a new name, its patterns and a section", name))
	}
	if slices.ContainsFunc(checkTypes, func(e checkEntry) bool { return e.name == name }) {
		panic(fmt.Sprintf("config: check %q registered twice", name))
	}
	checkTypes = append(checkTypes, checkEntry{name, slices.Clone(patterns), newSection})
}

func registeredChecks() []checkEntry {
	checksMu.Lock()
	defer checksMu.Unlock()
	return slices.Clone(checkTypes)
}

// Checks configures the checks: the settings of the engine and, under its
// name, the section of each registered check.
type Checks struct {
	// Lateness: events out of order by up to this much are judged as if in
	// order (they wait that long in event time); later ones are judged on
	// arrival. Default 5m; 0s judges every event on arrival.
	Lateness Duration `yaml:"lateness"`
	// IdleRelease: when no new event has arrived for this long (wall
	// clock), the events still waiting out the lateness bound are judged,
	// so the last events before a quiet spell raise their alerts. Default 30s.
	IdleRelease Duration `yaml:"idle_release"`

	sections []NamedSection // one per registered check, in order
}

// checksFixedKeys are the keys of Checks that are not a check's.
func checksFixedKeys() []string { return []string{"lateness", "idle_release"} }

// NamedSection is a check's stable name (CONTRACT §3, its key under
// checks), its patterns and its section.
type NamedSection struct {
	Name     string
	Patterns []string // as registered, in the check's order
	Section  CheckSection
}

// DPIAs lists the DPIA ids the check's evidences or any pattern's name,
// sorted.
func (s NamedSection) DPIAs() []string {
	ids := sortedKeys(s.Section.EvidencedRisks())
	for _, m := range s.Section.PatternEvidencedRisks() {
		for id := range m {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// Risks returns the risk ids of dpiaID that some pattern of the check
// evidences, in pattern order, each once: the check's own only while a
// pattern still takes them (has no mapping of its own for the DPIA).
func (s NamedSection) Risks(dpiaID string) []string {
	out := []string{}
	for _, p := range s.Patterns {
		for _, r := range RisksOf(s.Section, p, dpiaID) {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// Sections lists the section of every registered check, in the order they
// run and are reported.
func (ch *Checks) Sections() []NamedSection {
	if ch.sections == nil {
		for _, e := range registeredChecks() {
			ch.sections = append(ch.sections, NamedSection{e.name, e.patterns, e.newSection()})
		}
	}
	return ch.sections
}

// Section returns the section of the named check.
func (ch *Checks) Section(name string) (CheckSection, bool) {
	for _, s := range ch.Sections() {
		if s.Name == name {
			return s.Section, true
		}
	}
	return nil, false
}

var checksType = reflect.TypeFor[Checks]()

// decodeChecks decodes the checks section: its own keys as a struct's, and
// each registered check's key into that check's section. Unknown and
// duplicate keys are reported as for any struct.
func (v *Validator) decodeChecks(n *yaml.Node, path string, ch *Checks) {
	if !v.want(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	names := checksFixedKeys()
	for _, s := range ch.Sections() {
		names = append(names, s.Name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		sec, isCheck := ch.Section(k.Value)
		switch {
		case !slices.Contains(names, k.Value):
			v.at(k, SeverityError, kp, k.Value, fmt.Sprintf("unknown key %q (known: %s)", k.Value, strings.Join(names, ", ")))
		case seen[k.Value]:
			v.at(k, SeverityError, kp, k.Value, fmt.Sprintf("duplicate key %q", k.Value))
		case isCheck:
			seen[k.Value] = true
			v.keys[kp] = k
			v.decode(val, kp, reflect.ValueOf(sec).Elem())
		default:
			seen[k.Value] = true
			v.keys[kp] = k
			own := map[string]*Duration{"lateness": &ch.Lateness, "idle_release": &ch.IdleRelease}
			v.decode(val, kp, reflect.ValueOf(own[k.Value]).Elem())
		}
	}
}
