package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	_ "github.com/dpiawatch/dpiawatch/checks/install"
	"github.com/dpiawatch/dpiawatch/checks/nobusinessneed"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/replay"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
)

// fhirLine reads a FHIR fixture of the event package as one JSON line,
// with the replacements given as old, new pairs.
func fhirLine(t *testing.T, name string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "event", "testdata", "fhir", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(replace...).Replace(c.String())
}

// TestReplayFHIRPortalAndSubjectlessAccess runs the shipped configuration's
// checks over BALP-shaped AuditEvents: a patient and a relative reading a
// record through a portal at night are stored but never judged as staff
// (issue 12, item 3), and a query without a patient and a failed create
// (CONTRACT §1: accesses without a subject) neither crash a check nor
// raise a no-business-need alert for an empty subject. The same night, a
// member of staff reading a record they have no relationship with does
// alert: the checks are running.
func TestReplayFHIRPortalAndSubjectlessAccess(t *testing.T) {
	cfg, diags := config.Load(filepath.Join("..", "configs", "dpiawatch.yaml"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	opts, err := checkconfig.EngineOptions(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := t.TempDir()
	for name, body := range map[string]string{
		"staff.csv":         "actor_id,org,role,team,external,active_from,active_to\nu-17,st-martins,support-worker,webster-court,false,2025-01-01T00:00:00Z,\n",
		"relationships.csv": "actor_id,team,subject_id,relation,valid_from,valid_to\nu-17,,c-0042,allocation,2025-01-01T00:00:00Z,\n",
	} {
		if err := os.WriteFile(filepath.Join(ref, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := reference.LoadDir(ref)
	if err != nil {
		t.Fatal(err)
	}
	opts.Roster = reference.NewIndex(d)
	eng, err := rules.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	night := func(id, at string) []string {
		return []string{`"id":"` + id + `"`, `"id":"night-` + id + `"`, `"2026-03-02T10:14:05+00:00"`, `"` + at + `"`}
	}
	lines := []string{
		fhirLine(t, "balp-read"),
		fhirLine(t, "balp-query-without-patient"),
		fhirLine(t, "balp-failed-create"),
		fhirLine(t, "balp-query-without-patient", night("balp-query-nopatient-1", "2026-03-02T23:30:00+00:00")...),
		fhirLine(t, "balp-failed-create", night("balp-create-failed-1", "2026-03-02T23:31:00+00:00")...),
		fhirLine(t, "balp-patient-requestor"),
		fhirLine(t, "balp-related-person-requestor"),
		// The control: staff, at night, a client without a relationship.
		fhirLine(t, "balp-read", append(night("balp-read-1", "2026-03-02T23:45:00+00:00"), "Patient/c-0042", "Patient/c-0099")...),
	}
	var alerts, errs bytes.Buffer
	st, err := replay.Run(context.Background(), strings.NewReader(strings.Join(lines, "\n")+"\n"), &alerts, replay.Options{
		Evaluator: eng,
		Decoder:   event.NewDecoder(event.DecoderOptions{Format: event.FormatFHIR, Org: "st-martins", System: "fhir-gateway"}),
		Errors:    &errs,
		Now:       time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != len(lines) || st.Bad != 0 {
		t.Fatalf("%d events, %d bad, want %d and 0: %s", st.Events, st.Bad, len(lines), errs.String())
	}
	var got []alert.Alert
	for l := range strings.Lines(alerts.String()) {
		var a alert.Alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	control := false
	for _, a := range got {
		for _, id := range a.EventIDs {
			if strings.HasPrefix(id, "balp-portal-") {
				t.Errorf("%s/%s alert on a portal access (%s): a patient or relative judged as staff", a.Check, a.Pattern, id)
			}
		}
		if a.Check == nobusinessneed.Name && a.SubjectID == "" {
			t.Errorf("no-business-need alert for an empty subject: %v", a.EventIDs)
		}
		if a.ActorID == "u-17" && slices.Contains(a.EventIDs, "night-balp-read-1") {
			control = true
		}
	}
	if !control {
		t.Errorf("no alert on the control event (staff reading an unrelated client at night): %+v", got)
	}
}
