package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReplayKeepsTenantsApart: two orgs in one run share the actor id u-17
// and the device id tab-1 (CONTRACT §2: two people, two devices). Each
// event is judged against its own org's roster: a relationship, shift or
// role of the other org's u-17 never excuses or explains it, and an actor
// only the other org knows is an unknown account. On a main that looked
// staff, devices and relationships up by id alone, Wiltshire's u-17 opening
// St Martins' c-1 went unreported (St Martins' u-17 has a relationship with
// c-1) and Wiltshire's u-18 was explained as St Martins' support worker.
func TestReplayKeepsTenantsApart(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "reference")
	files := map[string]string{
		"staff.csv": `actor_id,org,role,team,external,active_from,active_to
u-17,st-martins,support-worker,webster-court,false,2026-01-01T00:00:00Z,
u-18,st-martins,support-worker,webster-court,false,2026-01-01T00:00:00Z,
u-17,wiltshire-council,social-worker,north-locality,false,2026-01-01T00:00:00Z,
u-19,wiltshire-council,social-worker,north-locality,false,2026-01-01T00:00:00Z,
`,
		"relationships.csv": `actor_id,team,subject_id,relation,valid_from,valid_to,org
u-17,,c-1,key-worker,2026-01-01T00:00:00Z,,st-martins
u-17,,c-2,allocated,2026-01-01T00:00:00Z,,wiltshire-council
u-18,,c-1,key-worker,2026-01-01T00:00:00Z,,st-martins
u-19,,c-2,allocated,2026-01-01T00:00:00Z,,wiltshire-council
`,
		"shifts.csv": `actor_id,start,end,org
u-17,2026-03-24T08:00:00Z,2026-03-24T16:00:00Z,st-martins
u-18,2026-03-24T08:00:00Z,2026-03-24T16:00:00Z,st-martins
`,
		"devices.csv": `device_id,org,kind,assigned_to,location
tab-1,st-martins,shared-tablet,webster-court,lounge
tab-1,wiltshire-council,laptop,u-17,
`,
	}
	if err := os.MkdirAll(ref, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(ref, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(id, org, system, actor, subject, at string) string {
		return `{"id":"` + id + `","time":"2026-03-24T` + at + `:00Z","org":"` + org + `","system":"` + system +
			`","action":"view","actor":{"id":"` + actor + `"},"subject":{"id":"` + subject + `"},"record":{"type":"care-plan","id":"r-` + id +
			`"},"session":{"id":"s-` + id + `","device":"tab-1"}}`
	}
	lines := []string{
		// Each org's u-17 opens the record of their own service user, in hours: nothing to report.
		ev("e1", "st-martins", "logmycare", "u-17", "c-1", "10:00"),
		ev("e2", "wiltshire-council", "liquidlogic", "u-17", "c-2", "10:00"),
		// Wiltshire's u-17 opens c-1, whom only St Martins' u-17 works with: no business need.
		ev("e3", "wiltshire-council", "liquidlogic", "u-17", "c-1", "11:00"),
		// Wiltshire has no u-18: an unknown account, not St Martins' support worker.
		ev("e4", "wiltshire-council", "liquidlogic", "u-18", "c-2", "12:00"),
	}
	alerts := replayFile(t, dir, "tenants", lines, nil)

	type alert struct {
		Org         string   `json:"org"`
		Check       string   `json:"check"`
		Pattern     string   `json:"pattern"`
		ActorID     string   `json:"actor_id"`
		EventIDs    []string `json:"event_ids"`
		Explanation string   `json:"explanation"`
	}
	var got []alert
	for _, l := range alerts {
		var a alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
		if strings.Contains(a.Explanation, "support-worker") && a.Org != "st-martins" {
			t.Errorf("a %s alert explained with St Martins' roster: %q", a.Org, a.Explanation)
		}
	}
	has := func(event, check string) bool {
		return slices.ContainsFunc(got, func(a alert) bool { return a.Check == check && slices.Contains(a.EventIDs, event) })
	}
	for _, e := range []string{"e1", "e2"} {
		if slices.ContainsFunc(got, func(a alert) bool { return slices.Contains(a.EventIDs, e) }) {
			t.Errorf("%s (an access with its own org's relationship, in a shift or office hours) raised an alert: %+v", e, got)
		}
	}
	if !has("e3", "no-business-need") {
		t.Errorf("Wiltshire's u-17 opening c-1 raised no no-business-need alert (St Martins' relationship excused it): %+v", got)
	}
	for _, a := range got {
		if slices.Contains(a.EventIDs, "e3") && !strings.Contains(a.Explanation, "u-17 (social-worker, north-locality)") {
			t.Errorf("e3 not explained with Wiltshire's u-17: %q", a.Explanation)
		}
	}
	if !slices.ContainsFunc(got, func(a alert) bool {
		return a.Pattern == "unknown-account" && slices.Contains(a.EventIDs, "e4") && strings.Contains(a.Explanation, "no staff list of wiltshire-council")
	}) {
		t.Errorf("Wiltshire's unknown u-18 raised no unknown-account alert: %+v", got)
	}
	if slices.ContainsFunc(got, func(a alert) bool { return a.Pattern == "unknown-account" && !slices.Contains(a.EventIDs, "e4") }) {
		t.Errorf("an account on its org's staff list raised unknown-account: %+v", got)
	}
	if !has("e4", "no-business-need") {
		t.Errorf("Wiltshire's unknown u-18 opening c-2 raised no no-business-need alert: %+v", got)
	}
}
