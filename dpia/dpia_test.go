package dpia

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedRegisters(t *testing.T) {
	type want struct {
		id, title           string
		score, residual     Score
		likelihood          Likelihood
		severity            Severity
		owner               string
		mitigations         int
		measureApprovedNull bool
	}
	tests := []struct {
		file, id, controller string
		risks                []want
	}{
		{
			file: "st-martins-webster-court.yaml", id: "st-martins-webster-court", controller: "St Martins",
			risks: []want{
				{id: "R1", title: "Care/support workers are distracted/called away from their tablets and leave without locking their screens meaning unauthorized people could access data.", mitigations: 2, measureApprovedNull: true},
				{id: "R2", title: "Passwords are guessed or shared inappropriately meaning unauthorized people could access data.", mitigations: 2, measureApprovedNull: true},
				{id: "R3", title: "Data is recorded in an inappropriate manner providing subjective information not factual", measureApprovedNull: true},
				{id: "R4", title: "Cyber attack meaning unauthorized people could access data.", measureApprovedNull: true},
			},
		},
		{
			file: "wiltshire-childrens-cms.yaml", id: "wiltshire-childrens-cms", controller: "Wiltshire Council",
			risks: []want{
				{id: "R1", title: "Inappropriate access to system", likelihood: "possible", severity: "significant", score: "medium", residual: "low", owner: "All HOS (FCS)", mitigations: 5, measureApprovedNull: true},
				{id: "R2", title: "Security breach", likelihood: "possible", severity: "significant", score: "medium", residual: "medium", owner: "All HOS (FCS)", mitigations: 5, measureApprovedNull: true},
				{id: "R3", title: "Information stored/recorded is not accurate or up to date", likelihood: "possible", severity: "significant", score: "medium", residual: "low", owner: "All HOS (FCS)", mitigations: 4, measureApprovedNull: true},
				{id: "R4", title: "Misuse of data by users", likelihood: "possible", severity: "significant", score: "medium", residual: "low", mitigations: 1, measureApprovedNull: true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			r, err := LoadFile(filepath.Join("..", "configs", "dpia", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != tc.id || r.Controller.Name != tc.controller {
				t.Errorf("id, controller = %q, %q; want %q, %q", r.ID, r.Controller.Name, tc.id, tc.controller)
			}
			if got, w := strings.Join(r.RiskIDs(), ","), "R1,R2,R3,R4"; got != w {
				t.Errorf("risk ids = %s; want %s", got, w)
			}
			for _, w := range tc.risks {
				k, ok := r.Risk(w.id)
				if !ok {
					t.Fatalf("risk %s missing", w.id)
				}
				if k.Title != w.title {
					t.Errorf("%s title = %q; want %q", w.id, k.Title, w.title)
				}
				if k.Likelihood != w.likelihood || k.Severity != w.severity || k.Score != w.score || k.Residual != w.residual {
					t.Errorf("%s scores = %q/%q/%q residual %q; want %q/%q/%q residual %q", w.id,
						k.Likelihood, k.Severity, k.Score, k.Residual, w.likelihood, w.severity, w.score, w.residual)
				}
				if k.Owner != w.owner {
					t.Errorf("%s owner = %q; want %q", w.id, k.Owner, w.owner)
				}
				if len(k.Mitigations) != w.mitigations {
					t.Errorf("%s has %d mitigations; want %d", w.id, len(k.Mitigations), w.mitigations)
				}
				if (k.MeasureApproved == nil) != w.measureApprovedNull {
					t.Errorf("%s measure_approved = %v", w.id, k.MeasureApproved)
				}
				if !k.Scored() && len(k.Notes) == 0 {
					t.Errorf("%s is unscored but has no note saying why", w.id)
				}
				for _, s := range append(append([]string{k.Title}, k.Examples...), k.Mitigations...) {
					if strings.Contains(s, "\n") || strings.Contains(s, "  \n") {
						t.Errorf("%s keeps a line break: %q", w.id, s)
					}
				}
			}
			if _, ok := r.Risk("R9"); ok {
				t.Error("Risk(R9) found")
			}
		})
	}
}

// TestWiltshireDetails pins the parts of the Wiltshire DPIA that checks rely
// on: the examples of R1 (the no-business-need and shared-credential checks
// evidence them) and its review cadence.
func TestWiltshireDetails(t *testing.T) {
	r, err := LoadFile("../configs/dpia/wiltshire-childrens-cms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := r.Risk("R1")
	if got := strings.Join(k.Examples, "|"); got != "Sharing passwords|Accessing information with no business need|Illegal penetration" {
		t.Errorf("R1 examples = %s", got)
	}
	if k.Mitigations[3] != "Routine audits look for evidence of workers accessing records inappropriately" {
		t.Errorf("R1 mitigation 4 = %q", k.Mitigations[3])
	}
	if r.Review.By != "Lynda Cox" || r.Review.Frequency != "1/4ly whilst development project is still running" || r.Review.Notes != "Review April 2019" {
		t.Errorf("review = %+v", r.Review)
	}
	if r.DPOAdvice.Summary != "Keep this document under review and up to date as use of the system develops." {
		t.Errorf("DPO advice = %q", r.DPOAdvice.Summary)
	}
	s, err := LoadFile("../configs/dpia/st-martins-webster-court.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Review.By != "System Data Coordinator and Senior Management Team." {
		t.Errorf("St Martins review by %q", s.Review.By)
	}
}

func TestBrokenRegisters(t *testing.T) {
	tests := []struct {
		file string
		want []string // every one must appear in the error
	}{
		{"unknown_key.yaml", []string{
			"line 7: field likelyhood not found in type dpia.Risk",
			"line 8: field mitigation not found in type dpia.Risk",
		}},
		{"duplicate_id.yaml", []string{`risks[1]: duplicate risk id "R1"`}},
		{"bad_enum.yaml", []string{
			`risks[0].likelihood: "likely" is not one of remote, possible, probable (or null)`,
			`risks[0].severity: "Severe" is not one of minimal, significant, severe (or null)`,
			`risks[0].residual: "extreme" is not one of low, medium, high (or null)`,
		}},
		{"id_mismatch.yaml", []string{
			`id "Broken_Register" must be lower-case words joined by hyphens`,
			"title is empty",
			`risks[0]: id "R2" does not match number 1 (want R1)`,
			"risks[1]: id is empty",
			"risks[1]: title is empty",
		}},
		{"bad_type.yaml", []string{
			"line 4: cannot unmarshal !!str `one` into int",
			"line 4: cannot unmarshal !!str `perhaps` into bool",
		}},
		{"no_risks.yaml", []string{"no risks"}},
		{"bad_monitor_retention.yaml", []string{
			"retention.monitor.section is empty (say where the DPIA sets the schedule)",
			"retention.monitor.events_days: -1 is outside 0 (keep) to 65535 days",
			"retention.monitor.alerts_days: 70000 is outside 0 (keep) to 65535 days",
		}},
		{"not_yaml.yaml", []string{"did not find expected ',' or ']'"}},
		{"missing.yaml", []string{"no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := LoadFile(filepath.Join("testdata", tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"../configs/dpia/st-martins-webster-court.yaml", "testdata/bad_enum.yaml", "testdata/unknown_key.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err == nil && (r == nil || r.Validate() != nil) {
			t.Fatalf("Parse accepted an invalid register")
		}
	})
}
