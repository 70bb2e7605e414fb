package evidence

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/dpiawatch/dpiawatch/csvsafe"
)

// File is one file of a pack.
type File struct {
	Name string
	Data []byte
}

// DataFiles renders the report as evidence.json and CSV files: the same
// numbers as the human report, byte-identical for the same data and period.
func DataFiles(r *Report) ([]File, error) {
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("evidence: encode json: %w", err)
	}
	files := []File{{Name: "evidence.json", Data: append(j, '\n')}}
	for _, t := range csvTables(r) {
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		if err := w.Write(t.header); err != nil {
			return nil, err
		}
		for _, row := range t.rows {
			if err := w.Write(csvsafe.Row(row)); err != nil {
				return nil, fmt.Errorf("evidence: %s: %w", t.name, err)
			}
		}
		if w.Flush(); w.Error() != nil {
			return nil, fmt.Errorf("evidence: %s: %w", t.name, w.Error())
		}
		files = append(files, File{Name: t.name, Data: b.Bytes()})
	}
	return files, nil
}

type table struct {
	name   string
	header []string
	rows   [][]string
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

func csvTables(r *Report) []table {
	risks := table{name: "risks.csv", header: []string{"risk", "title", "register_likelihood", "register_severity", "register_score",
		"register_residual", "checks", "alerts", "alerts_previous", "triaged", "untriaged", "confirmed_misuse", "confirmed_misuse_previous",
		"active_staff_days", "rate_per_10000_staff_days", "observed_likelihood", "observed_versus_register", "rate_previous", "observed_likelihood_previous"}}
	mitigations := table{name: "mitigations.csv", header: []string{"risk", "number", "mitigation"}}
	alerts := table{name: "alerts.csv", header: []string{"scope", "check", "pattern", "severity", "alerts", "alerts_previous"}}
	triage := table{name: "triage.csv", header: []string{"scope", "outcome", "alerts"}}
	ttt := table{name: "time_to_triage.csv", header: []string{"scope", "triaged", "within_1h", "within_24h", "within_7d", "later", "mean_hours"}}
	addTriage := func(scope string, t TriageCounts) {
		if !t.Available {
			return
		}
		for _, o := range t.Outcomes {
			triage.rows = append(triage.rows, []string{scope, o.Outcome, i64(o.Alerts)})
		}
		x := t.Time
		ttt.rows = append(ttt.rows, []string{scope, i64(x.Triaged), i64(x.WithinHour), i64(x.WithinDay), i64(x.WithinWeek), i64(x.Later), x.MeanHours})
	}
	for _, k := range r.Risks {
		risks.rows = append(risks.rows, []string{k.ID, k.Title, k.Register.Likelihood, k.Register.Severity, k.Register.Score,
			k.Register.Residual, strings.Join(k.Checks, ";"), i64(k.Alerts), i64(k.Previous.Alerts), i64(k.Triage.Time.Triaged),
			i64(outcome(k.Triage, "untriaged")), i64(k.Confirmed), i64(k.Previous.Confirmed), i64(k.Observed.StaffDays),
			k.Observed.RatePer10k, k.Observed.Level, k.Observed.Versus, k.Previous.Rate, k.Previous.Level})
		for i, m := range k.Mitigations {
			mitigations.rows = append(mitigations.rows, []string{k.ID, strconv.Itoa(i + 1), m})
		}
		for _, a := range k.AlertsBy {
			alerts.rows = append(alerts.rows, []string{k.ID, a.Check, a.Pattern, a.Severity, i64(a.Alerts), i64(a.Previous)})
		}
		addTriage(k.ID, k.Triage)
	}
	for _, a := range r.Alerts.By {
		alerts.rows = append(alerts.rows, []string{"all", a.Check, a.Pattern, a.Severity, i64(a.Alerts), i64(a.Previous)})
	}
	addTriage("all", r.Triage.TriageCounts)
	for _, a := range r.NotCovered.By {
		alerts.rows = append(alerts.rows, []string{"not_covered_by_dpia", a.Check, a.Pattern, a.Severity, i64(a.Alerts), i64(a.Previous)})
	}
	addTriage("not_covered_by_dpia", r.NotCovered.Triage)

	checks := table{name: "checks.csv", header: []string{"check", "enabled", "risks", "setting", "value"}}
	for _, c := range r.Checks {
		base := []string{c.Name, strconv.FormatBool(c.Enabled), strings.Join(c.Risks, ";")}
		if len(c.Settings) == 0 {
			checks.rows = append(checks.rows, append(base, "", ""))
		}
		for _, s := range c.Settings {
			checks.rows = append(checks.rows, append(append([]string{}, base...), s.Key, s.Value))
		}
		for _, p := range c.PatternRisks { // the patterns whose risks differ from the column's
			checks.rows = append(checks.rows, append(append([]string{}, base...), "pattern_evidences."+p.Pattern, "["+strings.Join(p.Risks, ", ")+"]"))
		}
	}

	systems := table{name: "coverage_systems.csv", header: []string{"org", "system", "events"}}
	for _, s := range r.Coverage.Systems {
		systems.rows = append(systems.rows, []string{s.Org, s.System, i64(s.Events)})
	}
	days := table{name: "coverage_days.csv", header: []string{"date", "org", "system", "events", "late", "active_staff"}}
	late := func(n int64) string {
		if !r.Coverage.LateDataRecorded {
			return "" // not recorded by the store: not zero
		}
		return i64(n)
	}
	for _, d := range r.Coverage.Days {
		days.rows = append(days.rows, []string{d.Date, d.Org, "", i64(d.Events), late(d.Late), i64(d.ActiveStaff)})
		for _, s := range d.Systems {
			days.rows = append(days.rows, []string{d.Date, d.Org, s.System, i64(s.Events), "", ""})
		}
	}
	gaps := table{name: "coverage_gaps.csv", header: []string{"kind", "date", "org", "system", "events"}}
	for _, g := range r.Coverage.DaysWithoutData {
		gaps.rows = append(gaps.rows, []string{"no-data", g.Date, g.Org, g.System, "0"})
	}
	for _, g := range r.Coverage.DaysWithLateData {
		gaps.rows = append(gaps.rows, []string{"late-data", g.Date, g.Org, g.System, i64(g.Events)})
	}

	ranges := table{name: "coverage_ranges.csv", header: []string{"org", "from", "to", "days", "system", "reason", "detail"}}
	for _, o := range r.Coverage.Orgs {
		for _, u := range o.Uncovered {
			ranges.rows = append(ranges.rows, []string{o.Org, u.From, u.To, strconv.Itoa(u.Days), u.System, u.Reason, u.Detail})
		}
	}

	confirmed := table{name: "confirmed_misuse.csv", header: []string{"alert_id", "org", "check", "pattern", "severity", "risks",
		"actor", "subject", "first_seen", "last_seen", "events", "decided_at"}}
	for _, c := range r.Confirmed {
		confirmed.rows = append(confirmed.rows, []string{c.AlertID, c.Org, c.Check, c.Pattern, c.Severity, risksText(c.Risks, ";"),
			c.Actor, c.Subject, c.FirstSeen, c.LastSeen, i64(c.Events), c.DecidedAt})
	}
	actions := table{name: "actions.csv", header: []string{"alert_id", "org", "check", "pattern", "severity", "risks",
		"outcome", "owner", "due", "status", "overdue", "decided_at"}}
	for _, a := range r.Actions.Items {
		actions.rows = append(actions.rows, []string{a.AlertID, a.Org, a.Check, a.Pattern, a.Severity, risksText(a.Risks, ";"),
			a.Outcome, a.Owner, a.Due, a.Status, strconv.FormatBool(a.Overdue), a.DecidedAt})
	}
	routine := table{name: "routine_audits.csv", header: []string{"org", "samples_reviewed", "findings", "previous_period_samples"}}
	for _, o := range r.Routine.Orgs {
		routine.rows = append(routine.rows, []string{o.Org, i64(o.Samples), i64(o.Findings), i64(o.Previous)})
	}
	retention := table{name: "retention.csv", header: []string{"org", "class", "days", "source", "oldest_held", "deleted_in_period", "last_run"}}
	for _, c := range r.Retention.Classes {
		retention.rows = append(retention.rows, []string{c.Org, c.Class, strconv.Itoa(c.Days), c.Source, c.Oldest, i64(c.Deleted), r.Retention.LastRun})
	}
	return []table{risks, mitigations, alerts, triage, ttt, checks, systems, days, gaps, ranges, confirmed, actions, routine, retention}
}
