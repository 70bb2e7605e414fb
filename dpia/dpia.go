// Package dpia holds DPIA risk registers as data: each register is one Data
// Protection Impact Assessment transcribed into YAML, so that alerts and
// evidence can point back to the DPIA's own risk numbers and wording.
package dpia

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Likelihood of harm, as the ICO template grades it. Empty means the DPIA left
// it blank (unscored).
type Likelihood string

// Likelihoods of the ICO DPIA template.
const (
	LikelihoodRemote   Likelihood = "remote"
	LikelihoodPossible Likelihood = "possible"
	LikelihoodProbable Likelihood = "probable"
)

// Severity of harm. Empty means unscored.
type Severity string

// Severities of the ICO DPIA template.
const (
	SeverityMinimal     Severity = "minimal"
	SeveritySignificant Severity = "significant"
	SeveritySevere      Severity = "severe"
)

// Score is an overall or residual risk score. Empty means unscored.
type Score string

// Scores of the ICO DPIA template.
const (
	ScoreLow    Score = "low"
	ScoreMedium Score = "medium"
	ScoreHigh   Score = "high"
)

// Register is one DPIA.
type Register struct {
	ID           string       `yaml:"id"`
	Title        string       `yaml:"title"`
	Source       string       `yaml:"source"` // the document it was transcribed from
	Version      string       `yaml:"version"`
	Template     string       `yaml:"template"`
	Controller   Controller   `yaml:"controller"`
	Systems      []System     `yaml:"systems"`
	DataSubjects DataSubjects `yaml:"data_subjects"`
	Retention    Retention    `yaml:"retention"`
	Risks        []Risk       `yaml:"risks"`
	SignOff      []SignOff    `yaml:"sign_off"`
	DPOAdvice    DPOAdvice    `yaml:"dpo_advice"`
	Review       Review       `yaml:"review"`
	Notes        []string     `yaml:"notes"`
}

// Controller is the organisation responsible for the processing.
type Controller struct {
	Name         string `yaml:"name"`
	Organisation string `yaml:"organisation"`
	Contact      string `yaml:"contact"`
}

// System is a CRM/CMS the DPIA covers.
type System struct {
	Name        string   `yaml:"name"`
	Kind        string   `yaml:"kind"`
	Description string   `yaml:"description"`
	Processor   string   `yaml:"processor"`
	Notes       []string `yaml:"notes"`
}

// DataSubjects says whose records the system holds.
type DataSubjects struct {
	Description string   `yaml:"description"`
	Count       string   `yaml:"count"`
	Ages        string   `yaml:"ages"`
	Vulnerable  bool     `yaml:"vulnerable"`
	Children    bool     `yaml:"children"`
	Notes       []string `yaml:"notes"`
}

// Retention is what the DPIA says about keeping the data.
type Retention struct {
	Statements []string `yaml:"statements"`
	Notes      []string `yaml:"notes"`
	// Monitor is the DPIA's retention schedule for the monitor's own data
	// (the access events, check state, view logs and alerts dpiawatch
	// keeps), when the DPIA sets one; nil when it is silent. It is the
	// default of the store's retention (config store.retention).
	Monitor *MonitorRetention `yaml:"monitor"`
}

// MonitorRetention is a DPIA's retention schedule for the monitor's data.
type MonitorRetention struct {
	// Section is where in the DPIA the schedule is written (e.g. "step 2"),
	// quoted by the evidence pack.
	Section string `yaml:"section"`
	Periods `yaml:",inline"`
}

// Periods are retention periods in days per class of the monitor's data: nil
// when not set, 0 to keep for ever.
type Periods struct {
	EventsDays     *int `yaml:"events_days"`      // access events
	CheckStateDays *int `yaml:"check_state_days"` // the checks' saved state
	ViewLogsDays   *int `yaml:"view_logs_days"`   // who viewed what in the web UI
	AlertsDays     *int `yaml:"alerts_days"`      // alerts with their triage
}

// MaxRetentionDays is the longest period a store can hold (ClickHouse keeps
// it in a UInt16 column: 179 years).
const MaxRetentionDays = 65535

// Days returns the period of each class in the order events, check state,
// view logs, alerts, with their YAML keys.
func (p Periods) Days() []ClassDays {
	return []ClassDays{
		{"events_days", p.EventsDays}, {"check_state_days", p.CheckStateDays},
		{"view_logs_days", p.ViewLogsDays}, {"alerts_days", p.AlertsDays},
	}
}

// ClassDays is one class's period: its YAML key and days (nil: not set).
type ClassDays struct {
	Key  string
	Days *int
}

// Risk is one numbered risk of the DPIA with its agreed mitigations.
type Risk struct {
	ID              string     `yaml:"id"`     // "R1", "R2" … matching Number
	Number          int        `yaml:"number"` // the DPIA's own numbering
	Title           string     `yaml:"title"`
	Examples        []string   `yaml:"examples"` // the DPIA's "E.g." list
	Likelihood      Likelihood `yaml:"likelihood"`
	Severity        Severity   `yaml:"severity"`
	Score           Score      `yaml:"score"`
	Mitigations     []string   `yaml:"mitigations"`
	Owner           string     `yaml:"owner"`
	Effect          string     `yaml:"effect"` // effect on risk: eliminated, reduced or accepted
	Residual        Score      `yaml:"residual"`
	MeasureApproved *bool      `yaml:"measure_approved"` // nil: the DPIA does not say
	Notes           []string   `yaml:"notes"`
}

// Scored reports whether the DPIA gave this risk a score.
func (r Risk) Scored() bool { return r.Score != "" }

// SignOff is one line of the DPIA's sign-off table.
type SignOff struct {
	Item     string `yaml:"item"`
	Name     string `yaml:"name"`
	Role     string `yaml:"role"`
	Date     string `yaml:"date"` // as written in the DPIA
	Guidance string `yaml:"guidance"`
}

// DPOAdvice is the Data Protection Officer's advice on the DPIA.
type DPOAdvice struct {
	ProvidedBy            string `yaml:"provided_by"`
	Date                  string `yaml:"date"`
	Summary               string `yaml:"summary"`
	AcceptedOrOverruledBy string `yaml:"accepted_or_overruled_by"`
}

// Review says who keeps the DPIA under review and how often.
type Review struct {
	By        string `yaml:"by"`
	Frequency string `yaml:"frequency"`
	Notes     string `yaml:"notes"`
	Guidance  string `yaml:"guidance"`
}

// Risk returns the risk with the given id ("R1").
func (r *Register) Risk(id string) (Risk, bool) {
	for _, k := range r.Risks {
		if k.ID == id {
			return k, true
		}
	}
	return Risk{}, false
}

// RiskIDs lists the register's risk ids in DPIA order.
func (r *Register) RiskIDs() []string {
	ids := make([]string, len(r.Risks))
	for i, k := range r.Risks {
		ids[i] = k.ID
	}
	return ids
}

// LoadFile reads and validates one register. Unknown keys are errors, so that
// a mistyped key cannot silently drop part of a DPIA.
func LoadFile(path string) (*Register, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dpia: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("dpia %s: %w", path, err)
	}
	return r, nil
}

// Parse decodes and validates one register from YAML.
func Parse(b []byte) (*Register, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var r Register
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty register")
		}
		return nil, cleanYAMLError(err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// cleanYAMLError flattens yaml.v3's multi-line type errors into one line per
// problem, keeping their line numbers.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

var idPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Validate checks ids and enumerations, reporting every problem found.
func (r *Register) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !idPattern.MatchString(r.ID) {
		bad("id %q must be lower-case words joined by hyphens", r.ID)
	}
	if strings.TrimSpace(r.Title) == "" {
		bad("title is empty")
	}
	if len(r.Risks) == 0 {
		bad("no risks")
	}
	if m := r.Retention.Monitor; m != nil {
		if strings.TrimSpace(m.Section) == "" {
			bad("retention.monitor.section is empty (say where the DPIA sets the schedule)")
		}
		for _, c := range m.Days() {
			if c.Days != nil && (*c.Days < 0 || *c.Days > MaxRetentionDays) {
				bad("retention.monitor.%s: %d is outside 0 (keep) to %d days", c.Key, *c.Days, MaxRetentionDays)
			}
		}
	}
	seen := map[string]bool{}
	for i, k := range r.Risks {
		where := fmt.Sprintf("risks[%d]", i)
		if k.ID == "" {
			bad("%s: id is empty", where)
		} else if seen[k.ID] {
			bad("%s: duplicate risk id %q", where, k.ID)
		}
		seen[k.ID] = true
		if k.Number < 1 || k.ID != fmt.Sprintf("R%d", k.Number) {
			bad("%s: id %q does not match number %d (want R%d)", where, k.ID, k.Number, k.Number)
		}
		if strings.TrimSpace(k.Title) == "" {
			bad("%s: title is empty", where)
		}
		checkEnum(&errs, where+".likelihood", string(k.Likelihood), LikelihoodRemote, LikelihoodPossible, LikelihoodProbable)
		checkEnum(&errs, where+".severity", string(k.Severity), SeverityMinimal, SeveritySignificant, SeveritySevere)
		checkEnum(&errs, where+".score", string(k.Score), ScoreLow, ScoreMedium, ScoreHigh)
		checkEnum(&errs, where+".residual", string(k.Residual), ScoreLow, ScoreMedium, ScoreHigh)
	}
	return errors.Join(errs...)
}

func checkEnum[T ~string](errs *[]error, where, v string, allowed ...T) {
	if v == "" {
		return // null: the DPIA left it blank
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if string(a) == v {
			return
		}
		names[i] = string(a)
	}
	*errs = append(*errs, fmt.Errorf("%s: %q is not one of %s (or null)", where, v, strings.Join(names, ", ")))
}
