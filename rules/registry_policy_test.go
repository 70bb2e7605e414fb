package rules

import "testing"

// TestCheckPolicyRefused: a policy under a name no registered check has, or
// of another check's type, is refused when the engine is built, instead of
// leaving a check on its defaults unnoticed.
func TestCheckPolicyRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks map[string]any
		want   string
	}{
		{"unknown check", map[string]any{"out-of-hour": OutOfHoursPolicy{}}, `org st-martins: policy for unknown check "out-of-hour"`},
		{"another check's type", map[string]any{CheckOutOfHours: BulkAccessPolicy{}},
			"org st-martins: out-of-hours policy: check out-of-hours: policy of type rules.BulkAccessPolicy, want *rules.OutOfHoursPolicy"},
		{"pointer to another check's type", map[string]any{CheckBulkAccess: &OutOfHoursPolicy{}},
			"org st-martins: bulk-access policy: check bulk-access: policy of type *rules.OutOfHoursPolicy, want *rules.BulkAccessPolicy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Orgs: map[string]OrgPolicy{testOrg: {DPIA: testDPIA, Checks: tc.checks}}})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("New: %v, want %s", err, tc.want)
			}
		})
	}
	for _, p := range []any{nil, OutOfHoursPolicy{}, &OutOfHoursPolicy{}, (*OutOfHoursPolicy)(nil)} {
		if _, err := New(Options{Orgs: map[string]OrgPolicy{testOrg: {DPIA: testDPIA, Checks: map[string]any{CheckOutOfHours: p}}}}); err != nil {
			t.Errorf("New with out-of-hours policy %#v: %v", p, err)
		}
	}
}
