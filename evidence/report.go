package evidence

import "strings"

// FormatVersion names the layout of evidence.json; a change that moves or
// renames a field raises it.
const FormatVersion = "dpiawatch-evidence/1"

// Report is the whole evidence pack as data: evidence.json, and the source
// of every other file. It holds no generation time, so that the same data
// and period give the same bytes.
type Report struct {
	Format      string       `json:"format"`
	DPIA        DPIAInfo     `json:"dpia"`
	Period      PeriodInfo   `json:"period"`
	Previous    PeriodInfo   `json:"previous_period"`
	Orgs        []string     `json:"orgs"`
	Identities  bool         `json:"identities"` // actor and subject ids shown (else pseudonyms)
	Definitions []Definition `json:"definitions"`
	Checks      []CheckInfo  `json:"checks"`
	Coverage    Coverage2    `json:"coverage"`
	Risks       []RiskReport `json:"risks"`
	Alerts      AlertTotals  `json:"alerts"`
	// NotCovered is the alerts that evidence no risk of the DPIA.
	NotCovered NotCoveredReport `json:"not_covered_by_dpia"`
	Triage     TriageReport     `json:"triage"`
	Confirmed  []Confirmed      `json:"confirmed_misuse"`
	// Actions is the follow-up the IG team recorded with its decisions.
	Actions ActionsReport `json:"actions"`
	Routine RoutineReport `json:"routine_audits"`
	// Retention is how long the monitor keeps its own data (evidence of
	// storage limitation, UK GDPR art. 5(1)(e)).
	Retention RetentionReport `json:"retention"`
}

// DPIAInfo is the register's heading.
type DPIAInfo struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Version    string `json:"version"`
	Controller string `json:"controller"`
	ReviewBy   string `json:"review_by,omitempty"`
	ReviewFreq string `json:"review_frequency,omitempty"`
}

// PeriodInfo is one reporting period: whole local days, To inclusive.
type PeriodInfo struct {
	From     string `json:"from"` // YYYY-MM-DD, first day
	To       string `json:"to"`   // YYYY-MM-DD, last day (inclusive)
	Days     int    `json:"days"`
	Timezone string `json:"timezone"`
	Start    string `json:"start"` // RFC 3339 instant of From's local midnight
	End      string `json:"end"`   // RFC 3339 instant after the last day (exclusive)
}

// Definition explains one figure in plain words.
type Definition struct {
	Term    string `json:"term"`
	Meaning string `json:"meaning"`
}

// CheckInfo is one check as configured.
type CheckInfo struct {
	Name    string   `json:"name"`
	Enabled bool     `json:"enabled"`
	Risks   []string `json:"risks"` // of this DPIA, for the patterns without their own
	// PatternRisks are the patterns whose alerts evidence other risks of
	// this DPIA than the check's (checks.<name>.pattern_evidences), in the
	// check's pattern order; an empty Risks: not covered by the DPIA.
	PatternRisks []PatternRisks `json:"pattern_risks,omitempty"`
	// Summary is the settings in plain words, for the reports; Settings
	// hold every value.
	Summary  string    `json:"summary"`
	Settings []Setting `json:"settings"`
}

// PatternRisks is the risks of a DPIA that one pattern of a check evidences.
type PatternRisks struct {
	Pattern string   `json:"pattern"`
	Risks   []string `json:"risks"`
}

// RisksText says which risks the check's alerts evidence, readably: the
// check's risks, then the patterns that differ, e.g. "R2 (except
// outside-sharing-agreement: not covered by the DPIA)"; "" when the check
// evidences none and no pattern differs (the reports show that their way).
func (c CheckInfo) RisksText() string {
	base := strings.Join(c.Risks, ", ")
	if len(c.PatternRisks) == 0 {
		return base
	}
	parts := make([]string, len(c.PatternRisks))
	for i, p := range c.PatternRisks {
		parts[i] = p.Pattern + ": " + risksText(p.Risks, ", ")
	}
	if base == "" {
		base = NotCoveredRisks
	}
	return base + " (except " + strings.Join(parts, "; ") + ")"
}

// Setting is one configured value of a check, flattened to a dotted key.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Coverage2 is what the checks examined (named apart from the Source's
// evidencequery.Coverage, which is per query).
type Coverage2 struct {
	Events           int64          `json:"events"`
	Systems          []SystemCount  `json:"systems"`
	Days             []DayRow       `json:"days"`
	DaysWithoutData  []Gap          `json:"days_without_data"`
	LateDataRecorded bool           `json:"late_data_recorded"` // the store records arrival times
	DaysWithLateData []Gap          `json:"days_with_late_data"`
	LateEvents       int64          `json:"late_events"`
	StaffDays        int64          `json:"active_staff_days"`
	Previous         PreviousCounts `json:"previous_period"`
	// CompletenessRecorded: the store keeps the daemon's record of how far
	// each org's feed is complete (store.CompletenessPrefix), so
	// OrgCoverage.CompleteUpTo and feed-incomplete ranges are meaningful.
	CompletenessRecorded bool `json:"completeness_recorded"`
	// Orgs states, per org, how far its feed was complete when the pack
	// was made and the date ranges of the period its data does not cover.
	Orgs []OrgCoverage `json:"orgs"`
}

// OrgCoverage is what one org's data covers of the period.
type OrgCoverage struct {
	Org string `json:"org"`
	// CompleteUpTo is the org's feed completeness point when the pack was
	// made (RFC 3339 in the period's timezone): every access up to it is
	// stored and judged. "" when the feed had not completed any period,
	// or the store does not record it.
	CompleteUpTo string `json:"complete_up_to"`
	// Uncovered are the ranges of consecutive days the data does not
	// cover, by first day (the whole org before its systems).
	Uncovered []DateRange `json:"uncovered"`
}

// Why a range of days is not covered.
const (
	// UncoveredNoData: no access at all was recorded (by the org, or by
	// one of its systems when System is set) on days the feed had
	// completed: a feed may have stopped.
	UncoveredNoData = "no-data"
	// UncoveredFeedIncomplete: days after the org's completeness point
	// (or every day, when the feed had completed no period): accesses
	// may still arrive, so their figures may still grow.
	UncoveredFeedIncomplete = "feed-incomplete"
)

// DateRange is a run of consecutive local days of the period, both ends
// included.
type DateRange struct {
	From   string `json:"from"` // YYYY-MM-DD, first day
	To     string `json:"to"`   // YYYY-MM-DD, last day (inclusive)
	Days   int    `json:"days"`
	System string `json:"system"` // "" the whole org
	Reason string `json:"reason"` // UncoveredNoData or UncoveredFeedIncomplete
	Detail string `json:"detail"` // the reason in words
}

// PreviousCounts is the coverage of the previous period.
type PreviousCounts struct {
	Events    int64 `json:"events"`
	StaffDays int64 `json:"active_staff_days"`
}

// Gap is a day with no data (or late data) from one system of an org, or
// from the whole org when System is empty.
type Gap struct {
	Date   string `json:"date"`
	Org    string `json:"org"`
	System string `json:"system"`
	Events int64  `json:"events,omitempty"` // late events, for DaysWithLateData
}

// SystemCount is the events of one system of one org.
type SystemCount struct {
	Org    string `json:"org"`
	System string `json:"system"`
	Events int64  `json:"events"`
}

// DayRow is one org's local day.
type DayRow struct {
	Date        string        `json:"date"`
	Org         string        `json:"org"`
	Events      int64         `json:"events"`
	Late        int64         `json:"late"`
	ActiveStaff int64         `json:"active_staff"`
	Systems     []SystemCount `json:"systems"`
}

// RiskReport is one DPIA risk and its evidence.
type RiskReport struct {
	ID          string       `json:"id"`
	Title       string       `json:"title"`
	Register    RegisterRisk `json:"register"`
	Mitigations []string     `json:"mitigations"`
	Checks      []string     `json:"checks"` // enabled checks that evidence this risk
	Alerts      int64        `json:"alerts"`
	AlertsBy    []AlertCount `json:"alerts_by"`
	Triage      TriageCounts `json:"triage"`
	Confirmed   int64        `json:"confirmed_misuse"`
	Observed    Observed     `json:"observed_likelihood"`
	Previous    RiskPrevious `json:"previous_period"`
	// Status, Backlog and History are the first page's line and chart.
	Status  RiskStatus `json:"status"`
	Backlog Backlog    `json:"untriaged_backlog"`
	// History is the last HistoryPeriods periods, oldest first, this one
	// last; confirmed misuse is 0 where the store keeps no triage.
	History []PeriodAlerts `json:"history"`
}

// RegisterRisk is what the DPIA register says of a risk.
type RegisterRisk struct {
	Likelihood string `json:"likelihood"`
	Severity   string `json:"severity"`
	Score      string `json:"score"`
	Effect     string `json:"effect"`
	Residual   string `json:"residual"`
	Owner      string `json:"owner"`
}

// AlertCount is alerts of one check, pattern and severity.
type AlertCount struct {
	Check    string `json:"check"`
	Pattern  string `json:"pattern"`
	Severity string `json:"severity"`
	Alerts   int64  `json:"alerts"`
	Previous int64  `json:"previous_period"`
}

// TriageCounts is how alerts were triaged.
type TriageCounts struct {
	Available bool           `json:"available"`
	Outcomes  []OutcomeCount `json:"outcomes"` // every outcome, then "untriaged"
	Time      TimeToTriage   `json:"time_to_triage"`
}

// OutcomeCount is alerts whose latest decision is Outcome.
type OutcomeCount struct {
	Outcome string `json:"outcome"`
	Alerts  int64  `json:"alerts"`
}

// TimeToTriage is the distribution of time from an alert's first event to
// its first decision.
type TimeToTriage struct {
	Triaged    int64  `json:"triaged"`
	WithinHour int64  `json:"within_1h"`
	WithinDay  int64  `json:"within_24h"`
	WithinWeek int64  `json:"within_7d"`
	Later      int64  `json:"later"`
	MeanHours  string `json:"mean_hours"` // one decimal; "" when none triaged
}

// Observed is the observed-likelihood indicator beside the register's score.
type Observed struct {
	ConfirmedEpisodes int64  `json:"confirmed_episodes"`
	StaffDays         int64  `json:"active_staff_days"`
	RatePer10k        string `json:"rate_per_10000_staff_days"` // two decimals; "" not assessable
	// RateLow and RateHigh bound the rate's 95% interval (exact Poisson on
	// the confirmed count): what the few cases a period holds can show.
	RateLow  string `json:"rate_interval_low"`
	RateHigh string `json:"rate_interval_high"`
	// RateIfUndecided is the rate were every undecided alert of the period
	// confirmed: the most the backlog could raise it to.
	RateIfUndecided string `json:"rate_if_undecided_confirmed"`
	Level           string `json:"level"` // remote, possible, probable or not-assessable
	Residual        string `json:"register_residual"`
	// Versus is the level against Residual: above, in-line or below; ""
	// when either is missing.
	Versus     string `json:"versus_register"`
	Comparison string `json:"comparison"` // a plain sentence for the panel
}

// RiskPrevious is a risk's figures for the previous period.
type RiskPrevious struct {
	Alerts    int64  `json:"alerts"`
	Confirmed int64  `json:"confirmed_misuse"`
	Rate      string `json:"rate_per_10000_staff_days"`
	Level     string `json:"level"`
}

// AlertTotals counts distinct alerts across the DPIA (an alert evidencing
// two risks counts once here).
type AlertTotals struct {
	Total    int64        `json:"total"`
	Previous int64        `json:"previous_period"`
	By       []AlertCount `json:"by"`
}

// NotCoveredReport is the alerts of the period that evidence no risk of
// the DPIA: of a check or pattern the DPIA maps to no risk, or feed-integrity's (the
// access log itself was not what it should be). They are in the DPIA's
// totals and triage, under no risk.
type NotCoveredReport struct {
	Alerts   int64        `json:"alerts"`
	Previous int64        `json:"previous_period"`
	By       []AlertCount `json:"by"`
	Triage   TriageCounts `json:"triage"`
	Note     string       `json:"note"`
}

// NotCoveredRisks stands for the risks of an alert that evidences none of
// the DPIA's, wherever the reports list an alert's risks.
const NotCoveredRisks = "not covered by the DPIA"

// risksText lists risks, or says that there are none.
func risksText(risks []string, sep string) string {
	if len(risks) == 0 {
		return NotCoveredRisks
	}
	return strings.Join(risks, sep)
}

// TriageReport is triage across the DPIA.
type TriageReport struct {
	TriageCounts
	Note string `json:"note"`
}

// Confirmed is one confirmed-misuse episode; actor and subject are
// pseudonyms unless the pack was exported with identities.
type Confirmed struct {
	AlertID   string   `json:"alert_id"`
	Org       string   `json:"org"`
	Check     string   `json:"check"`
	Pattern   string   `json:"pattern"`
	Severity  string   `json:"severity"`
	Risks     []string `json:"risks"`
	Actor     string   `json:"actor"`
	Subject   string   `json:"subject"`
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
	Events    int64    `json:"events"`
	DecidedAt string   `json:"decided_at"`
}

// ActionsReport is the actions log: every alert of the period whose
// latest decision records a follow-up (owner, due day, status).
type ActionsReport struct {
	Available bool   `json:"available"`
	Note      string `json:"note"`
	// AsOf is the local day overdue is judged at: the period's last, so
	// that the same data and period give the same pack.
	AsOf    string       `json:"as_of"`
	Open    int          `json:"open"`
	Overdue int          `json:"overdue"`
	Done    int          `json:"done"`
	Items   []ActionItem `json:"items"`
}

// ActionItem is one alert's follow-up action.
type ActionItem struct {
	AlertID  string   `json:"alert_id"`
	Org      string   `json:"org"`
	Check    string   `json:"check"`
	Pattern  string   `json:"pattern"`
	Severity string   `json:"severity"`
	Risks    []string `json:"risks"`
	Outcome  string   `json:"outcome"` // the latest decision
	Owner    string   `json:"owner"`   // the controller's staff: a name or a role
	Due      string   `json:"due"`     // local day "YYYY-MM-DD", "" when none
	Status   string   `json:"status"`  // "open" or "done"
	// Overdue: open, and due on or before AsOf.
	Overdue   bool   `json:"overdue"`
	DecidedAt string `json:"decided_at"`
}

// RoutineReport is the managers' routine audits.
type RoutineReport struct {
	Available bool         `json:"available"`
	Note      string       `json:"note"`
	Orgs      []RoutineOrg `json:"orgs"`
	// Teams is each team's samples drawn in the period and how many of
	// their accesses the manager reviewed, from stores that keep samples.
	Teams []RoutineTeam `json:"teams"`
}

// RoutineTeam is one team's routine-audit samples of the period.
type RoutineTeam struct {
	Org      string `json:"org"`
	Team     string `json:"team"`
	Samples  int    `json:"samples"`
	Sampled  int    `json:"accesses_sampled"`
	Reviewed int    `json:"accesses_reviewed"`
}

// RoutineOrg is one org's routine audits.
type RoutineOrg struct {
	Org      string `json:"org"`
	Samples  int64  `json:"samples_reviewed"`
	Findings int64  `json:"findings"`
	Previous int64  `json:"previous_period_samples"`
}

// RetentionReport is the monitor's retention of its own data: the policy
// per org and class with where it comes from, what is held, and what
// retention deleted in the period.
type RetentionReport struct {
	// Available: the store applies retention and records its runs.
	Available bool   `json:"available"`
	Note      string `json:"note"`
	// LastRun is when retention last ran to the end (RFC 3339 in the
	// period's timezone), "" never.
	LastRun string         `json:"last_run"`
	Classes []RetentionRow `json:"classes"`
}

// RetentionRow is one org's class of data.
type RetentionRow struct {
	Org    string `json:"org"`
	Class  string `json:"class"` // events, check_state, view_logs or alerts
	Days   int    `json:"days"`  // 0: kept
	Source string `json:"source"`
	// Oldest is the oldest data of the class held when the pack was made
	// (RFC 3339 in the period's timezone), "" none. Not given for check
	// state, which is the checks' working memory, aged by its last write.
	Oldest string `json:"oldest_held"`
	// Deleted counts rows retention deleted during the period (check
	// state: all orgs together, on each org's row).
	Deleted int64 `json:"deleted_in_period"`
}
