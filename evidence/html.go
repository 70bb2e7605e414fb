package evidence

import (
	"bytes"
	"fmt"
	"github.com/dpiawatch/dpiawatch/triage"
	"html/template"
	"strings"

	"github.com/dpiawatch/dpiawatch/visible"
)

// HTML renders the report for people: one self-contained page (inline
// style, no scripts, fonts or images from elsewhere), written for a review
// panel rather than engineers. The page goes through visible.Text as a
// whole (the template holds no hidden character): a bidirectional control
// in a system name or an id shows as [U+202E].
func HTML(r *Report) ([]byte, error) {
	var b bytes.Buffer
	if err := htmlTmpl.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("evidence: render html: %w", err)
	}
	return []byte(visible.Text(b.String())), nil
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

// rangeText is a range of days as the reports write it: "2026-03-02 –
// 2026-03-05", or the day alone.
func rangeText(r DateRange) string { return daySpan(r.From, r.To) }

// anyUncovered reports whether some org's data leaves days uncovered.
func anyUncovered(orgs []OrgCoverage) bool {
	for _, o := range orgs {
		if len(o.Uncovered) > 0 {
			return true
		}
	}
	return false
}

// completeText is an org's completeness point in words.
func completeText(o OrgCoverage) string {
	if o.CompleteUpTo == "" {
		return "not complete for any period"
	}
	return "complete up to " + o.CompleteUpTo
}

// change compares a count with the previous period's in words.
func change(cur, prev int64) string {
	switch {
	case cur == prev:
		return "the same as"
	case cur > prev:
		return fmt.Sprintf("%d more than", cur-prev)
	}
	return fmt.Sprintf("%d fewer than", prev-cur)
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"level": levelWords, "versus": versusWords, "outcome": outcomeWords, "dash": orDash, "change": change, "join": strings.Join, "risks": risksText,
	"span": rangeText, "anyUncovered": anyUncovered, "complete": completeText,
	"residual": residualText, "status": statusWords, "direction": directionWords, "rate": rateText, "backlog": backlogText,
	"local": func(r *Report, s string) string { return r.localTime(s) }, "why": func(r *Report, o OrgCoverage, u DateRange) string { return r.uncoveredText(o, u) },
	"days": func(n int) string { return plural(n, "day") }, "day": dayText, "actionStatus": triage.ActionLabel,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DPIA evidence: {{.DPIA.Title}} — {{.Period.From}} to {{.Period.To}}</title>
<style>
body{font-family:Arial,Helvetica,sans-serif;line-height:1.45;color:#0b0c0c;max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.8rem;margin-bottom:.2rem}h2{font-size:1.35rem;border-bottom:2px solid #1d70b8;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1rem}th,td{border:1px solid #b1b4b6;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f2f1}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{background:#f3f2f1;border-left:5px solid #1d70b8;padding:.5rem .8rem}
.warn{background:#fff7e6;border-left:5px solid #f47738;padding:.5rem .8rem}
.rag-red{background:#d4351c;color:#fff;font-weight:bold}.rag-amber{background:#f47738;font-weight:bold}.rag-green{background:#00703c;color:#fff;font-weight:bold}.rag-grey{background:#f3f2f1}
.lvl-probable{color:#d4351c;font-weight:bold}.lvl-possible{color:#b35c00;font-weight:bold}.lvl-remote{color:#00703c;font-weight:bold}
small{color:#505a5f}
</style>
</head>
<body>
<h1>DPIA evidence pack</h1>
<p><strong>{{.DPIA.Title}}</strong> ({{.DPIA.ID}}{{with .DPIA.Version}}, {{.}}{{end}}) — {{.DPIA.Controller}}<br>
Period: <strong>{{.Period.From}} to {{.Period.To}}</strong> ({{.Period.Days}} days, {{.Period.Timezone}}), compared with {{.Previous.From}} to {{.Previous.To}}.<br>
Organisations: {{join .Orgs ", "}}.{{if .DPIA.ReviewFreq}} Review: {{.DPIA.ReviewFreq}}{{if .DPIA.ReviewBy}} by {{.DPIA.ReviewBy}}{{end}}.{{end}}</p>
<p class="note">This pack shows, risk by risk, whether the mitigations the DPIA promised are working: what was watched, what the
checks found, what the information-governance team decided, and how often misuse was confirmed.
{{if .Identities}}<strong>It contains staff and client identifiers</strong> (exported with identities on request).{{else}}People are shown by pseudonyms only.{{end}}
Its files are listed with their fingerprints in manifest.json, which is signed; <code>dpiawatch evidence verify</code> checks them.</p>

<h2>Summary by risk</h2>
<table>
<thead><tr><th>Risk</th><th>Status</th><th>Residual risk in the DPIA</th><th>Since last period</th><th>Checks watching it</th><th>Alerts</th><th>Confirmed misuse</th><th>Rate per 10,000 staff-days (95% interval)</th><th>Observed likelihood</th><th>Against the DPIA</th><th>Undecided alerts</th></tr></thead>
<tbody>
{{range .Risks}}<tr><td><strong>{{.ID}}</strong> {{.Title}}</td><td class="rag-{{.Status.RAG}}">{{status .Status.RAG}}</td><td>{{residual .Register.Residual}}</td><td>{{direction .Status.Direction}}</td><td>{{if .Checks}}{{join .Checks ", "}}{{else}}none: needs other evidence{{end}}</td>
<td class="n">{{.Alerts}}</td><td class="n">{{if .Triage.Available}}{{.Confirmed}}{{else}}not recorded{{end}}</td><td class="n">{{rate .Observed}}</td>
<td class="lvl-{{.Observed.Level}}">{{level .Observed.Level}}</td><td>{{versus .Observed.Versus}}</td><td>{{backlog .}}</td></tr>
{{end}}</tbody>
</table>
{{range .Risks}}{{if .Status.LowerBound}}<p class="warn"><strong>Lower bound:</strong> alerts of the period had not all been decided when this pack was made; the rates and statuses count only decided alerts and may rise.</p>{{break}}{{end}}{{end}}

<h2>What was watched</h2>
<p>{{.Coverage.Events}} access events were examined ({{.Coverage.Previous.Events}} in the previous period), over
{{.Coverage.StaffDays}} active staff-days ({{.Coverage.Previous.StaffDays}} before).</p>
<table><thead><tr><th>Organisation</th><th>System</th><th>Events examined</th></tr></thead><tbody>
{{range .Coverage.Systems}}<tr><td>{{.Org}}</td><td>{{.System}}</td><td class="n">{{.Events}}</td></tr>
{{else}}<tr><td colspan="3">No events were recorded in the period.</td></tr>{{end}}</tbody></table>
{{if .Coverage.LateDataRecorded}}{{if .Coverage.DaysWithLateData}}<p class="warn"><strong>Late data:</strong> {{.Coverage.LateEvents}} events arrived late, on
{{range $i, $g := .Coverage.DaysWithLateData}}{{if $i}}; {{end}}{{$g.Date}} ({{$g.Org}}, {{$g.System}}: {{$g.Events}}){{end}}.</p>{{else}}<p>No data arrived late.</p>{{end}}
{{else}}<p><small>Late data: this store does not record when events arrived, so late data cannot be reported.</small></p>{{end}}

<h3>Data not covered</h3>
{{if .Coverage.CompletenessRecorded}}<p>Feeds when this pack was made: {{range $i, $o := .Coverage.Orgs}}{{if $i}}; {{end}}{{$o.Org}} {{if $o.CompleteUpTo}}complete up to {{local $ $o.CompleteUpTo}}{{else}}not complete for any period{{end}}{{end}}.</p>
{{else}}<p><small>This store does not record how far each feed is complete, so days a feed had not yet completed cannot be told apart from days it had.</small></p>{{end}}
{{if anyUncovered .Coverage.Orgs}}<table><thead><tr><th>Organisation</th><th>Dates</th><th>Days</th><th>Why</th></tr></thead><tbody>
{{range $o := .Coverage.Orgs}}{{range .Uncovered}}<tr><td>{{$o.Org}}</td><td>{{span .}}</td><td class="n">{{.Days}}</td><td>{{why $ $o .}}</td></tr>
{{end}}{{end}}</tbody></table>
<p class="warn">The checks could not see all access on these days: the figures of this pack do not cover them, and those after a feed's completeness point may still grow.</p>
{{else}}<p>The data covers every day of the period.</p>{{end}}

<h3>What the checks look for</h3>
<table><thead><tr><th>Check</th><th>Enabled</th><th>Evidences risks</th><th>What it looks for</th></tr></thead><tbody>
{{range .Checks}}<tr><td>{{.Name}}</td><td>{{if .Enabled}}yes{{else}}<strong>no</strong>{{end}}</td><td>{{with .RisksText}}{{.}}{{else}}—{{end}}</td>
<td>{{.Summary}}</td></tr>
{{end}}</tbody></table>
<p><small>Every setting of every check is in evidence.json and checks.csv.</small></p>

<h2>Risk by risk</h2>
{{range .Risks}}
<h3>{{.ID}}: {{.Title}}</h3>
<p>In the DPIA: likelihood {{residual .Register.Likelihood}}, severity {{residual .Register.Severity}}, overall risk {{residual .Register.Score}};
{{with .Register.Effect}}effect of the measures {{.}}; {{end}}residual risk after the measures <strong>{{residual .Register.Residual}}</strong>.</p>
<p><strong>Mitigations promised:</strong></p>
<ul>{{range .Mitigations}}<li>{{.}}</li>{{else}}<li>None recorded in the DPIA.</li>{{end}}</ul>
<p><strong>Evidenced by:</strong> {{if .Checks}}{{join .Checks ", "}}{{else}}no enabled check — dpiawatch cannot observe this risk.{{end}}</p>
<p><strong>Alerts:</strong> {{.Alerts}}, {{change .Alerts .Previous.Alerts}} the previous period ({{.Previous.Alerts}}).</p>
{{if .AlertsBy}}<table><thead><tr><th>Check</th><th>Pattern</th><th>Severity</th><th>Alerts</th><th>Previous period</th></tr></thead><tbody>
{{range .AlertsBy}}<tr><td>{{.Check}}</td><td>{{.Pattern}}</td><td>{{.Severity}}</td><td class="n">{{.Alerts}}</td><td class="n">{{.Previous}}</td></tr>
{{end}}</tbody></table>{{end}}
{{if .Triage.Available}}<p><strong>Triage:</strong>
{{range $i, $o := .Triage.Outcomes}}{{if $i}}, {{end}}{{outcome $o.Outcome}} {{$o.Alerts}}{{end}}.
{{with .Triage.Time}}{{if .Triaged}}Time from the first event to the first decision: {{.WithinHour}} within an hour, {{.WithinDay}} within a day, {{.WithinWeek}} within a week, {{.Later}} later (on average {{.MeanHours}} hours).{{end}}{{end}}</p>
{{else}}<p><strong>Triage:</strong> not recorded by this store.</p>{{end}}
<p><strong>Observed likelihood:</strong> <span class="lvl-{{.Observed.Level}}">{{level .Observed.Level}}</span>{{if .Observed.RatePer10k}}
({{.Observed.ConfirmedEpisodes}} confirmed in {{.Observed.StaffDays}} active staff-days: {{.Observed.RatePer10k}} per 10,000; 95% interval {{.Observed.RateLow}} to {{.Observed.RateHigh}}){{end}};
residual risk in the DPIA {{residual .Register.Residual}}. {{.Observed.Comparison}}
In the previous period: {{level .Previous.Level}}{{if .Previous.Rate}} ({{.Previous.Confirmed}} confirmed; {{.Previous.Rate}} per 10,000){{end}}.</p>
{{end}}

<h2>Alerts not covered by the DPIA</h2>
<p>{{.NotCovered.Note}}</p>
{{if .NotCovered.By}}<table><thead><tr><th>Check</th><th>Pattern</th><th>Severity</th><th>Alerts</th><th>Previous period</th></tr></thead><tbody>
{{range .NotCovered.By}}<tr><td>{{.Check}}</td><td>{{.Pattern}}</td><td>{{.Severity}}</td><td class="n">{{.Alerts}}</td><td class="n">{{.Previous}}</td></tr>
{{end}}</tbody></table>{{else}}<p>None in this period or the previous one.</p>{{end}}

<h2>Confirmed misuse</h2>
{{if .Triage.Available}}{{if .Confirmed}}<table><thead><tr><th>Alert</th><th>Check / pattern</th><th>Risks</th><th>Account</th><th>Person</th><th>First seen</th><th>Decided</th></tr></thead><tbody>
{{range .Confirmed}}<tr><td>{{.AlertID}}</td><td>{{.Check}} / {{.Pattern}}</td><td>{{risks .Risks ", "}}</td><td>{{dash .Actor}}</td><td>{{dash .Subject}}</td><td>{{local $ .FirstSeen}}</td><td>{{local $ .DecidedAt}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No alert of the period was confirmed as misuse.</p>{{end}}
{{else}}<p>{{.Triage.Note}}</p>{{end}}

<h2>Actions from triage</h2>
{{if .Actions.Available}}<p>{{.Actions.Open}} open ({{.Actions.Overdue}} overdue on {{day .Actions.AsOf}}), {{.Actions.Done}} done. {{.Actions.Note}}</p>
{{if .Actions.Items}}<table><thead><tr><th>Alert</th><th>Check / pattern</th><th>Risks</th><th>Decision</th><th>Owner</th><th>Due</th><th>Status</th></tr></thead><tbody>
{{range .Actions.Items}}<tr><td>{{.AlertID}}</td><td>{{.Check}} / {{.Pattern}}</td><td>{{risks .Risks ", "}}</td><td>{{outcome .Outcome}}</td><td>{{dash .Owner}}</td><td>{{if .Due}}{{day .Due}}{{else}}none{{end}}</td><td>{{actionStatus .Status}}{{if .Overdue}} <strong class="warn">overdue</strong>{{end}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No decision of the period records a follow-up action.</p>{{end}}
{{else}}<p>{{.Actions.Note}}</p>{{end}}

<h2>Triage across the DPIA</h2>
<p>{{.Alerts.Total}} alerts in the period ({{.Alerts.Previous}} in the previous one). {{.Triage.Note}}</p>
{{if .Triage.Available}}<table><thead><tr><th>Latest decision</th><th>Alerts</th></tr></thead><tbody>
{{range .Triage.Outcomes}}<tr><td>{{outcome .Outcome}}</td><td class="n">{{.Alerts}}</td></tr>{{end}}</tbody></table>{{end}}

<h2>Routine audits</h2>
{{if .Routine.Available}}<table><thead><tr><th>Organisation</th><th>Samples reviewed</th><th>Findings</th><th>Previous period</th></tr></thead><tbody>
{{range .Routine.Orgs}}<tr><td>{{.Org}}</td><td class="n">{{.Samples}}</td><td class="n">{{.Findings}}</td><td class="n">{{.Previous}}</td></tr>{{end}}</tbody></table>
{{else}}<p class="warn">{{.Routine.Note}}</p>{{end}}

<h2>Retention of the monitor's data</h2>
{{if .Retention.Available}}<p>{{.Retention.Note}} Last run: {{if .Retention.LastRun}}{{local $ .Retention.LastRun}}{{else}}never{{end}}.</p>
<table><thead><tr><th>Organisation</th><th>Data</th><th>Kept for</th><th>Set by</th><th>Oldest held</th><th>Deleted in the period</th></tr></thead><tbody>
{{range .Retention.Classes}}<tr><td>{{.Org}}</td><td>{{.Class}}</td><td>{{if .Days}}{{days .Days}}{{else}}kept{{end}}</td><td>{{.Source}}</td><td>{{if .Oldest}}{{local $ .Oldest}}{{else}}nothing held{{end}}</td><td class="n">{{.Deleted}}</td></tr>
{{end}}</tbody></table>
{{else}}<p class="warn">{{.Retention.Note}}</p>{{end}}

<h2>How to read these figures</h2>
<dl>{{range .Definitions}}<dt><strong>{{.Term}}</strong></dt><dd>{{.Meaning}}</dd>{{end}}</dl>
</body>
</html>
`))
