package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/alert"
)

// TestReplayRisksByPattern (issue 13): replay with the shipped
// configuration files each alert under the risks of its own pattern. A St
// Martins partner acting outside the information sharing agreement is not
// covered by the DPIA (risks [], no titles, no mitigation) instead of
// St Martins R2 "Passwords are guessed or shared…", while the
// shared-credential patterns still cite R2 and two of them R4 as well; in
// Wiltshire, unlocked-gap is not covered while device-handover, of the same
// check, cites R1.
func TestReplayRisksByPattern(t *testing.T) {
	type want struct{ org, check, pattern, risks string }
	cases := []struct {
		org, scale string
		want       []want
	}{
		{"st-martins", "1", []want{
			{"st-martins", "no-business-need", "outside-sharing-agreement", ""},
			{"st-martins", "no-business-need", "no-relationship", ""},
			{"st-martins", "out-of-hours", "outside-shift", ""},
			{"st-martins", "bulk-access", "bulk-access", ""},
			{"st-martins", "shared-credential", "concurrent-sessions", "R2"},
			{"st-martins", "shared-credential", "used-after-leaving", "R2"},
			{"st-martins", "shared-credential", "failed-login-burst", "R2,R4"},
			{"st-martins", "unlocked-session", "unlocked-gap", "R1"},
			{"st-martins", "unlocked-session", "device-handover", "R1"},
		}},
		{"wiltshire-council", "0.02", []want{
			{"wiltshire-council", "no-business-need", "outside-sharing-agreement", "R1,R4"},
			{"wiltshire-council", "no-business-need", "no-relationship", "R1,R4"},
			{"wiltshire-council", "out-of-hours", "outside-shift", "R1"},
			{"wiltshire-council", "shared-credential", "external-without-mfa", "R1"},
			{"wiltshire-council", "unlocked-session", "unlocked-gap", ""},
			{"wiltshire-council", "unlocked-session", "device-handover", "R1"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.org, func(t *testing.T) {
			dir := t.TempDir()
			if code, _, errOut := run(t, "", "simulate", "--org", tc.org, "--from", "2026-03-23", "--days", "7", "--seed", "3", "--scale", tc.scale, "--out", dir); code != 0 {
				t.Fatalf("simulate: exit %d: %s", code, errOut)
			}
			events, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			got := map[want]bool{}
			for _, l := range replayFile(t, dir, "replay", strings.Split(strings.TrimSpace(string(events)), "\n"), nil) {
				var a alert.Alert
				if err := json.Unmarshal([]byte(l), &a); err != nil {
					t.Fatal(err)
				}
				if a.Risks == nil || !strings.Contains(l, `"risks":[`) {
					t.Errorf("alert %s lacks its risks array (CONTRACT §3): %s", a.ID, l)
				}
				if len(a.Risks) == 0 && (len(a.RiskTitles) != 0 || a.Mitigation != "") {
					t.Errorf("%s/%s: not covered, yet titles %q, mitigation %q", a.Check, a.Pattern, a.RiskTitles, a.Mitigation)
				}
				if len(a.RiskTitles) != len(a.Risks) && len(a.Risks) > 0 {
					t.Errorf("%s/%s: %d titles for risks %v", a.Check, a.Pattern, len(a.RiskTitles), a.Risks)
				}
				got[want{a.Org, a.Check, a.Pattern, strings.Join(a.Risks, ",")}] = true
			}
			for _, w := range tc.want {
				if !got[w] {
					var seen []string
					for g := range got {
						if g.check == w.check && g.pattern == w.pattern {
							seen = append(seen, "["+g.risks+"]")
						}
					}
					slices.Sort(seen)
					t.Errorf("no %s alert of %s/%s with risks [%s]; seen with %v", w.org, w.check, w.pattern, w.risks, seen)
				}
			}
		})
	}
}
