package triage_test

import (
	"testing"

	"github.com/dpiawatch/dpiawatch/triage"
)

// TestActionOverdue: an action is overdue once its due day has passed and
// it is not done; no action, no due day or a done one never is.
func TestActionOverdue(t *testing.T) {
	const today = "2026-03-05"
	for _, tc := range []struct {
		name          string
		a             *triage.Action
		zero, overdue bool
	}{
		{"nil", nil, true, false},
		{"empty", &triage.Action{Status: triage.ActionOpen}, true, false},
		{"owner only", &triage.Action{Owner: "Registered manager", Status: triage.ActionOpen}, false, false},
		{"due yesterday, open", &triage.Action{Due: "2026-03-04", Status: triage.ActionOpen}, false, true},
		{"due yesterday, no status", &triage.Action{Due: "2026-03-04"}, false, true},
		{"due today", &triage.Action{Due: today, Status: triage.ActionOpen}, false, false},
		{"due tomorrow", &triage.Action{Due: "2026-03-06", Status: triage.ActionOpen}, false, false},
		{"due last year, done", &triage.Action{Owner: "DPO", Due: "2025-12-31", Status: triage.ActionDone}, false, false},
		{"across a month", &triage.Action{Due: "2026-02-28", Status: triage.ActionOpen}, false, true},
	} {
		if got := tc.a.IsZero(); got != tc.zero {
			t.Errorf("%s: IsZero = %v, want %v", tc.name, got, tc.zero)
		}
		if got := tc.a.Overdue(today); got != tc.overdue {
			t.Errorf("%s: Overdue = %v, want %v", tc.name, got, tc.overdue)
		}
	}
}
