package rules_test

import (
	"testing"

	"github.com/dpiawatch/dpiawatch/checks/bulkaccess"
	"github.com/dpiawatch/dpiawatch/checks/outofhours"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/rulestest"
)

// TestCheckPolicyRefused: a policy under a name no registered check has, or
// of another check's type, is refused when the engine is built, instead of
// leaving a check on its defaults unnoticed.
func TestCheckPolicyRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks map[string]any
		want   string
	}{
		{"unknown check", map[string]any{"out-of-hour": outofhours.Policy{}}, `org st-martins: policy for unknown check "out-of-hour"`},
		{"another check's type", map[string]any{outofhours.Name: bulkaccess.Policy{}},
			"org st-martins: out-of-hours policy: check out-of-hours: policy of type bulkaccess.Policy, want *outofhours.Policy"},
		{"pointer to another check's type", map[string]any{bulkaccess.Name: &outofhours.Policy{}},
			"org st-martins: bulk-access policy: check bulk-access: policy of type *outofhours.Policy, want *bulkaccess.Policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.New(rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: {DPIA: rulestest.DPIA, Checks: tc.checks}}})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("New: %v, want %s", err, tc.want)
			}
		})
	}
	for _, p := range []any{nil, outofhours.Policy{}, &outofhours.Policy{}, (*outofhours.Policy)(nil)} {
		if _, err := rules.New(rules.Options{Orgs: map[string]rules.OrgPolicy{rulestest.Org: {DPIA: rulestest.DPIA, Checks: map[string]any{outofhours.Name: p}}}}); err != nil {
			t.Errorf("New with out-of-hours policy %#v: %v", p, err)
		}
	}
}
