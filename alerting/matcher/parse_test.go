package matcher

import (
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
)

// TestParse covers the syntax as written in configuration and in the
// silences API: the four operators, quoted and bare values, Go escapes in
// quoted ones, spaces, and every refusal with its exact message.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		name    string
		typ     MatchType
		value   string
		wantErr string
	}{
		{in: `check="out-of-hours"`, name: "check", typ: MatchEqual, value: "out-of-hours"},
		{in: `check!="out-of-hours"`, name: "check", typ: MatchNotEqual, value: "out-of-hours"},
		{in: `severity=~"high|critical"`, name: "severity", typ: MatchRegexp, value: "high|critical"},
		{in: `severity!~"low|medium"`, name: "severity", typ: MatchNotRegexp, value: "low|medium"},
		// Quotes are optional; a bare value runs to the end, trimmed.
		{in: `org=st-martins`, name: "org", typ: MatchEqual, value: "st-martins"},
		{in: `  org  !=  st-martins  `, name: "org", typ: MatchNotEqual, value: "st-martins"},
		{in: `risk=~R[12]`, name: "risk", typ: MatchRegexp, value: "R[12]"},
		{in: `org=st martins`, name: "org", typ: MatchEqual, value: "st martins"},
		{in: `org=a"b`, name: "org", typ: MatchEqual, value: `a"b`},
		// Spaces inside quotes are the value's.
		{in: `org = " st-martins "`, name: "org", typ: MatchEqual, value: " st-martins "},
		// Escapes in quoted values, as in a Go string literal.
		{in: `pattern="say \"hi\""`, name: "pattern", typ: MatchEqual, value: `say "hi"`},
		{in: `pattern="back\\slash"`, name: "pattern", typ: MatchEqual, value: `back\slash`},
		{in: `pattern="tab\there"`, name: "pattern", typ: MatchEqual, value: "tab\there"},
		{in: `pattern="caf\u00e9"`, name: "pattern", typ: MatchEqual, value: "café"},
		{in: `pattern=~"a\\.b"`, name: "pattern", typ: MatchRegexp, value: `a\.b`},
		// Empty values.
		{in: `dpia=""`, name: "dpia", typ: MatchEqual, value: ""},
		{in: `dpia=`, name: "dpia", typ: MatchEqual, value: ""},
		{in: `dpia!=""`, name: "dpia", typ: MatchNotEqual, value: ""},
		// The longest operator wins: =~ is not = followed by "~…".
		{in: `check=~x`, name: "check", typ: MatchRegexp, value: "x"},
		{in: `check=~"="`, name: "check", typ: MatchRegexp, value: "="},
		{in: `check=="x"`, name: "check", typ: MatchEqual, value: `="x"`},

		{in: ``, wantErr: `"" is not a matcher (e.g. check="out-of-hours" or severity=~"high|critical")`},
		{in: `check`, wantErr: `"check" is not a matcher (e.g. check="out-of-hours" or severity=~"high|critical")`},
		{in: `="x"`, wantErr: `"=\"x\"" is not a matcher (e.g. check="out-of-hours" or severity=~"high|critical")`},
		{in: `check~"x"`, wantErr: `"check~\"x\"" is not a matcher (e.g. check="out-of-hours" or severity=~"high|critical")`},
		{in: `Check="x"`, wantErr: `"Check=\"x\"" is not a matcher (e.g. check="out-of-hours" or severity=~"high|critical")`},
		{in: "check=\"a\nb\"", wantErr: `"check=\"a\nb\"" is not a matcher (e.g. check="out-of-hours" or severity=~"high|critical")`},
		{in: `team="ig"`, wantErr: `unknown label "team" in matcher "team=\"ig\"" (org, check, pattern, severity, dpia, risk)`},
		{in: `check="out-of-hours`, wantErr: `bad quoting in matcher "check=\"out-of-hours"`},
		{in: `check="a" "b"`, wantErr: `bad quoting in matcher "check=\"a\" \"b\""`},
		{in: `check="a\qb"`, wantErr: `bad quoting in matcher "check=\"a\\qb\""`},
		{in: `check=~"("`, wantErr: "bad regular expression in matcher \"check=~\\\"(\\\"\": error parsing regexp: missing closing ): `^(?:()$`"},
		{in: `check!~"*"`, wantErr: "bad regular expression in matcher \"check!~\\\"*\\\"\": error parsing regexp: missing argument to repetition operator: `*`"},
	} {
		m, err := Parse(tc.in)
		if tc.wantErr != "" {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want error %s", tc.in, m, tc.wantErr)
			} else if err.Error() != tc.wantErr {
				t.Errorf("Parse(%q) error:\n got %s\nwant %s", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if m.Name != tc.name || m.Type != tc.typ || m.Value != tc.value {
			t.Errorf("Parse(%q) = {%s %s %q}, want {%s %s %q}", tc.in, m.Name, m.Type, m.Value, tc.name, tc.typ, tc.value)
		}
	}
}

func TestParseAll(t *testing.T) {
	ms, err := ParseAll([]string{`org="st-martins"`, `severity=~"high|critical"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].String() != `org="st-martins"` || ms[1].String() != `severity=~"high|critical"` {
		t.Errorf("ParseAll = %v", ms)
	}
	if _, err := ParseAll([]string{`org="st-martins"`, `nope`}); err == nil || err.Error() != `"nope" is not a matcher (e.g. check="out-of-hours" or severity=~"high|critical")` {
		t.Errorf("ParseAll with a bad matcher: %v", err)
	}
}

// TestMatches: equality and anchored regular expressions on every label;
// risk, many-valued, matches when any risk does, and its negative forms
// when none does.
func TestMatches(t *testing.T) {
	a := alert.Alert{Org: "st-martins", Check: "out-of-hours", Pattern: "outside-shift", Severity: alert.Severity("high"),
		DPIA: "st-martins-webster-court", Risks: []string{"R1", "R2"}}
	noRisk := a
	noRisk.Risks = nil
	for _, tc := range []struct {
		m     string
		a     alert.Alert
		want  bool
		label string // names the case when a is not the default
	}{
		{m: `org="st-martins"`, a: a, want: true},
		{m: `org="st-martin"`, a: a, want: false},
		{m: `org!="st-martins"`, a: a, want: false},
		{m: `check="out-of-hours"`, a: a, want: true},
		{m: `pattern="outside-shift"`, a: a, want: true},
		{m: `severity="high"`, a: a, want: true},
		{m: `dpia="st-martins-webster-court"`, a: a, want: true},
		// Regular expressions are anchored, as in Alertmanager.
		{m: `check=~"out"`, a: a, want: false},
		{m: `check=~"out.*"`, a: a, want: true},
		{m: `check=~"hours"`, a: a, want: false},
		{m: `check=~"out-of-hours|bulk-access"`, a: a, want: true},
		{m: `check!~"out.*"`, a: a, want: false},
		{m: `check!~"out"`, a: a, want: true},
		{m: `severity=~"high|critical"`, a: a, want: true},
		// Alternation inside the anchors: "a|b" is ^(?:a|b)$, not ^a|b$.
		{m: `org=~"st|x"`, a: a, want: false},
		// risk: any of the alert's risks.
		{m: `risk="R2"`, a: a, want: true},
		{m: `risk="R3"`, a: a, want: false},
		{m: `risk!="R2"`, a: a, want: false},
		{m: `risk!="R3"`, a: a, want: true},
		{m: `risk=~"R[23]"`, a: a, want: true},
		{m: `risk!~"R[23]"`, a: a, want: false},
		{m: `risk!~"R[34]"`, a: a, want: true},
		{m: `risk=""`, a: noRisk, want: true, label: "no risks"},
		{m: `risk="R1"`, a: noRisk, want: false, label: "no risks"},
		{m: `risk!="R1"`, a: noRisk, want: true, label: "no risks"},
	} {
		m, err := Parse(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Matches(tc.a); got != tc.want {
			t.Errorf("%s.Matches(%s) = %v, want %v", tc.m, tc.label, got, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		`check=out-of-hours`:   `check="out-of-hours"`,
		` severity =~ high|x `: `severity=~"high|x"`,
		`org=a"b`:              `org="a\"b"`,
		`pattern!="tab\there"`: `pattern!="tab\there"`,
		`dpia!~""`:             `dpia!~""`,
	} {
		m, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.String(); got != want {
			t.Errorf("Parse(%q).String() = %s, want %s", in, got, want)
		}
	}
}

// FuzzParse: whatever Parse accepts, its String form parses back to the
// same matcher, which matches the same alerts; MatchesEmpty agrees with
// matching an alert whose labels are all empty.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`check="out-of-hours"`, `severity=~"high|critical"`, `risk!~"R[12]"`, `org!=st-martins`,
		`pattern="say \"hi\""`, `dpia=""`, `check=~"("`, `team="x"`, `check="a`} {
		f.Add(s)
	}
	samples := []alert.Alert{
		{},
		{Org: "st-martins", Check: "out-of-hours", Pattern: "outside-shift", Severity: "high", DPIA: "st-martins-webster-court", Risks: []string{"R1", "R2"}},
		{Org: "wiltshire-council", Check: "bulk-access", Severity: "critical", Risks: []string{"R4"}},
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(m.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %s, which does not parse: %v", s, m, err)
		}
		if again.Name != m.Name || again.Type != m.Type || again.Value != m.Value {
			t.Fatalf("Parse(%q) = {%s %s %q}, its String form parses to {%s %s %q}", s, m.Name, m.Type, m.Value, again.Name, again.Type, again.Value)
		}
		for _, a := range samples {
			if m.Matches(a) != again.Matches(a) {
				t.Fatalf("%s and its String form differ on %+v", m, a)
			}
		}
		if m.MatchesEmpty() != m.Matches(alert.Alert{}) {
			t.Fatalf("%s: MatchesEmpty() = %v, Matches(empty alert) = %v", m, m.MatchesEmpty(), m.Matches(alert.Alert{}))
		}
	})
}
