// Package matcher parses and applies alert matchers in Alertmanager's syntax
// (name="value", name!="value", name=~"regexp", name!~"regexp"). It depends on
// the alert model only, so that configuration can validate matchers without
// importing the delivery code.
package matcher

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dpiawatch/dpiawatch/alert"
)

// Labels an alert can be matched and grouped on. risk is many-valued: a
// matcher on it holds when any of the alert's risks satisfies it (negative
// matchers: when none of them matches the positive form).
var Labels = []string{"org", "check", "pattern", "severity", "dpia", "risk"}

// Values returns the values of label for a.
func Values(a alert.Alert, label string) []string {
	switch label {
	case "org":
		return []string{a.Org}
	case "check":
		return []string{a.Check}
	case "pattern":
		return []string{a.Pattern}
	case "severity":
		return []string{string(a.Severity)}
	case "dpia":
		return []string{a.DPIA}
	case "risk":
		if len(a.Risks) == 0 {
			return []string{""}
		}
		return a.Risks
	}
	return nil
}

// MatchType is one of =, !=, =~, !~ (Alertmanager's matcher syntax).
type MatchType string

// Match types.
const (
	MatchEqual     MatchType = "="
	MatchNotEqual  MatchType = "!="
	MatchRegexp    MatchType = "=~"
	MatchNotRegexp MatchType = "!~"
)

// Matcher selects alerts by one label, written `name="value"`,
// `name!="value"`, `name=~"regexp"` or `name!~"regexp"` (quotes optional).
// Regular expressions are anchored, as in Alertmanager.
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
	re    *regexp.Regexp
}

var matcherSyntax = regexp.MustCompile(`^\s*([a-z_]+)\s*(=~|!~|!=|=)\s*(.*?)\s*$`)

// Parse parses one matcher.
func Parse(s string) (Matcher, error) {
	m := matcherSyntax.FindStringSubmatch(s)
	if m == nil {
		return Matcher{}, fmt.Errorf("%q is not a matcher (e.g. check=\"out-of-hours\" or severity=~\"high|critical\")", s)
	}
	if !slices.Contains(Labels, m[1]) {
		return Matcher{}, fmt.Errorf("unknown label %q in matcher %q (%s)", m[1], s, strings.Join(Labels, ", "))
	}
	val := m[3]
	if strings.HasPrefix(val, `"`) {
		u, err := strconv.Unquote(val)
		if err != nil {
			return Matcher{}, fmt.Errorf("bad quoting in matcher %q", s)
		}
		val = u
	}
	mt := Matcher{Name: m[1], Type: MatchType(m[2]), Value: val}
	if mt.Type == MatchRegexp || mt.Type == MatchNotRegexp {
		re, err := regexp.Compile("^(?:" + val + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("bad regular expression in matcher %q: %v", s, err)
		}
		mt.re = re
	}
	return mt, nil
}

// ParseAll parses each of ss.
func ParseAll(ss []string) ([]Matcher, error) {
	out := make([]Matcher, 0, len(ss))
	for _, s := range ss {
		m, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (m Matcher) String() string { return m.Name + string(m.Type) + strconv.Quote(m.Value) }

// Matches reports whether a satisfies m.
func (m Matcher) Matches(a alert.Alert) bool {
	positive := func(v string) bool {
		if m.re != nil {
			return m.re.MatchString(v)
		}
		return v == m.Value
	}
	any := slices.ContainsFunc(Values(a, m.Name), positive)
	if m.Type == MatchNotEqual || m.Type == MatchNotRegexp {
		return !any
	}
	return any
}

// MatchesEmpty reports whether m matches a label whose value is empty. A
// set of matchers that all do so matches (nearly) every alert: it says
// nothing about which alerts are meant (Alertmanager refuses such silences
// for the same reason).
func (m Matcher) MatchesEmpty() bool {
	var positive bool
	if m.re != nil {
		positive = m.re.MatchString("")
	} else {
		positive = m.Value == ""
	}
	if m.Type == MatchNotEqual || m.Type == MatchNotRegexp {
		return !positive
	}
	return positive
}
