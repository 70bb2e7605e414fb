package evidence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/dpia"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// Options configure Build. Config, DPIA, From, To and Source are required.
type Options struct {
	Config *config.Config
	DPIA   string // register id
	// From and To are the first and last local day of the period
	// ("YYYY-MM-DD", To inclusive), in the DPIA's orgs' timezone.
	From, To string
	Source   Source
	// Identities shows actor and subject ids of confirmed misuse; without
	// it they are replaced by Pseudonym's result.
	Identities bool
	// Pseudonym returns the pseudonym of an actor or subject id (kind
	// "actor" or "subject"); nil, or "" from it, withholds the id.
	Pseudonym func(kind, id string) string
	// Progress, when set, is told after each finished step: what the step
	// was about (e.g. "Counting alerts"), how many of the total are done.
	// Export adds its own last steps (writing and signing the pack).
	Progress func(stage string, done, total int)
}

// MaxDays bounds a period: a year and a day covers any annual review.
const MaxDays = 366

// Observed-likelihood thresholds, in confirmed-misuse episodes per 10,000
// active staff-days: below possibleRate is remote, below probableRate
// possible, else probable.
const (
	possibleRate = 1
	probableRate = 10
)

// period is one reporting period's day bounds.
type period struct {
	info  PeriodInfo
	days  []time.Time // local midnights, len = days+1
	dates []string
}

func newPeriod(first time.Time, n int, loc *time.Location) period {
	p := period{days: make([]time.Time, n+1), dates: make([]string, n)}
	for i := 0; i <= n; i++ {
		p.days[i] = time.Date(first.Year(), first.Month(), first.Day()+i, 0, 0, 0, 0, loc)
		if i < n {
			p.dates[i] = p.days[i].Format(time.DateOnly)
		}
	}
	p.info = PeriodInfo{From: p.dates[0], To: p.dates[n-1], Days: n, Timezone: loc.String(),
		Start: p.days[0].Format(time.RFC3339), End: p.days[n].Format(time.RFC3339)}
	return p
}

// Build queries the source and assembles the report.
func Build(ctx context.Context, o Options) (*Report, error) {
	cfg := o.Config
	if cfg == nil || o.Source == nil {
		return nil, errors.New("evidence: config and source are required")
	}
	reg, ok := cfg.Registers[o.DPIA]
	if !ok {
		ids := make([]string, 0, len(cfg.Registers))
		for id := range cfg.Registers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return nil, fmt.Errorf("evidence: unknown DPIA %q (configured: %s)", o.DPIA, strings.Join(ids, ", "))
	}
	var orgs []*config.Org
	for i := range cfg.Orgs {
		if cfg.Orgs[i].DPIA == o.DPIA {
			orgs = append(orgs, &cfg.Orgs[i])
		}
	}
	if len(orgs) == 0 {
		return nil, fmt.Errorf("evidence: no org is configured with DPIA %q", o.DPIA)
	}
	loc := orgs[0].Location
	if loc == nil {
		loc = time.UTC
	}
	for _, org := range orgs[1:] {
		if org.Location != nil && org.Location.String() != loc.String() {
			return nil, fmt.Errorf("evidence: the orgs of DPIA %s keep different timezones (%s, %s); days would not line up", o.DPIA, loc, org.Location)
		}
	}
	from, err := time.ParseInLocation(time.DateOnly, o.From, loc)
	if err != nil {
		return nil, fmt.Errorf("evidence: --from %q is not a date (YYYY-MM-DD)", o.From)
	}
	to, err := time.ParseInLocation(time.DateOnly, o.To, loc)
	if err != nil {
		return nil, fmt.Errorf("evidence: --to %q is not a date (YYYY-MM-DD)", o.To)
	}
	n := int(math.Round(to.Sub(from).Hours()/24)) + 1
	if n < 1 {
		return nil, fmt.Errorf("evidence: the period ends (%s) before it starts (%s)", o.To, o.From)
	}
	if n > MaxDays {
		return nil, fmt.Errorf("evidence: the period is %d days; at most %d", n, MaxDays)
	}
	cur := newPeriod(from, n, loc)
	// Older periods first: the charts read left to right.
	periods := []period{cur}
	for len(periods) < HistoryPeriods {
		periods = append([]period{periodBefore(periods[0], loc)}, periods...)
	}
	prev := periods[len(periods)-2]

	b := &builder{o: o, cfg: cfg, reg: reg, orgs: orgs, loc: loc}
	triage, hasTriage := o.Source.(TriageSource)
	routine, hasRoutine := o.Source.(RoutineAuditSource)
	older := len(periods) - 2 // periods charted but not compared in full
	b.total = 2*(len(orgs)+1) + older
	if hasTriage {
		b.total += 3 + older
	}
	if hasRoutine {
		b.total += 2
	}
	teams, hasTeams := o.Source.(RoutineCoverageSource)
	if hasTeams {
		b.total++
	}
	actions, hasActions := o.Source.(ActionSource)
	if hasActions {
		b.total++
	}
	if _, ok := o.Source.(store.StateLoader); ok {
		b.total++
	}
	retainer, hasRetention := o.Source.(store.Retainer)
	if hasRetention {
		b.total++
	}

	r := &Report{
		Format: FormatVersion,
		DPIA: DPIAInfo{ID: reg.ID, Title: reg.Title, Version: reg.Version, Controller: reg.Controller.Organisation,
			ReviewBy: reg.Review.By, ReviewFreq: reg.Review.Frequency},
		Period: cur.info, Previous: prev.info, Identities: o.Identities,
		Definitions: definitions(cfg.Evidence.LateAfter.D()),
		Checks:      checkInfos(cfg, o.DPIA),
	}
	for _, org := range orgs {
		r.Orgs = append(r.Orgs, org.ID)
	}

	// Coverage, this period and the previous one.
	covCur, err := b.coverage(ctx, cur)
	if err != nil {
		return nil, err
	}
	covPrev, err := b.coverage(ctx, prev)
	if err != nil {
		return nil, err
	}
	r.Coverage = covCur
	r.Coverage.Previous = PreviousCounts{Events: covPrev.Events, StaffDays: covPrev.StaffDays}
	complete, recorded, err := b.completeness(ctx)
	if err != nil {
		return nil, err
	}
	r.Coverage.CompletenessRecorded = recorded
	r.Coverage.Orgs = b.uncovered(cur, covCur.DaysWithoutData, complete, recorded)

	// Alerts.
	qCur := evidencequery.AlertQuery{DPIA: o.DPIA, From: cur.days[0], To: cur.days[len(cur.days)-1]}
	qPrev := evidencequery.AlertQuery{DPIA: o.DPIA, From: prev.days[0], To: prev.days[len(prev.days)-1]}
	gCur, err := b.alerts(ctx, qCur)
	if err != nil {
		return nil, err
	}
	gPrev, err := b.alerts(ctx, qPrev)
	if err != nil {
		return nil, err
	}

	// Triage.
	var tCur, tPrev []evidencequery.TriageGroup
	var confirmed []evidencequery.ConfirmedAlert
	if hasTriage {
		if tCur, err = triage.EvidenceTriage(ctx, qCur); err != nil {
			return nil, fmt.Errorf("evidence: triage: %w", err)
		}
		b.step(StageTriage)
		if tPrev, err = triage.EvidenceTriage(ctx, qPrev); err != nil {
			return nil, fmt.Errorf("evidence: triage: %w", err)
		}
		b.step(StageTriage)
		if confirmed, err = triage.EvidenceConfirmed(ctx, qCur); err != nil {
			return nil, fmt.Errorf("evidence: confirmed misuse: %w", err)
		}
		b.step(StageTriage)
	}

	// The older periods, for the charts: alerts and triage only.
	gAll := [][]evidencequery.AlertGroup{}
	tAll := [][]evidencequery.TriageGroup{}
	for _, p := range periods[:older] {
		q := evidencequery.AlertQuery{DPIA: o.DPIA, From: p.days[0], To: p.days[len(p.days)-1]}
		g, err := b.alerts(ctx, q)
		if err != nil {
			return nil, err
		}
		var tg []evidencequery.TriageGroup
		if hasTriage {
			if tg, err = triage.EvidenceTriage(ctx, q); err != nil {
				return nil, fmt.Errorf("evidence: triage: %w", err)
			}
			b.step(StageTriage)
		}
		gAll, tAll = append(gAll, g), append(tAll, tg)
	}
	gAll, tAll = append(gAll, gPrev, gCur), append(tAll, tPrev, tCur)

	for _, k := range reg.Risks {
		rr := b.risk(k, gCur, gPrev, tCur, tPrev, hasTriage, covCur.StaffDays, covPrev.StaffDays)
		if hasTriage {
			rr.Backlog = backlog(tCur, hasRisk(k.ID), cur.days[len(cur.days)-1], loc)
		}
		rr.History = history(periods, gAll, tAll, hasRisk(k.ID))
		rr.Status = status(rr)
		r.Risks = append(r.Risks, rr)
	}
	r.Alerts = totals(gCur, gPrev)
	r.Triage = TriageReport{TriageCounts: triageCounts(tCur, hasTriage, func(evidencequery.AlertGroup) bool { return true })}
	r.NotCovered = notCovered(reg.Risks, gCur, gPrev, tCur, hasTriage)
	if hasTriage {
		r.Triage.Note = "Triage decisions as recorded when the pack was exported; time to triage runs from an alert's first event to its first decision."
	} else {
		r.Triage.Note = "This store does not record triage decisions, so triage outcomes, confirmed misuse and the observed likelihood cannot be reported from it."
	}
	r.Confirmed = b.confirmed(confirmed)
	r.Actions = ActionsReport{AsOf: cur.dates[len(cur.dates)-1], Items: []ActionItem{},
		Note: "This store does not record follow-up actions with triage decisions."}
	if hasActions {
		as, err := actions.EvidenceActions(ctx, qCur)
		if err != nil {
			return nil, fmt.Errorf("evidence: actions: %w", err)
		}
		b.step(StageActions)
		r.Actions = actionsReport(as, r.Actions.AsOf)
	}

	// Routine audits.
	r.Routine = RoutineReport{Note: "No routine-audit data: this installation's store does not record managers' routine-audit reviews."}
	if hasRoutine {
		rc, err := routine.EvidenceRoutineAudits(ctx, qCur)
		if err != nil {
			return nil, fmt.Errorf("evidence: routine audits: %w", err)
		}
		b.step(StageRoutine)
		rp, err := routine.EvidenceRoutineAudits(ctx, qPrev)
		if err != nil {
			return nil, fmt.Errorf("evidence: routine audits: %w", err)
		}
		b.step(StageRoutine)
		r.Routine = routineReport(r.Orgs, rc, rp)
	}
	if hasTeams {
		cov, err := teams.AuditCoverage(ctx, r.Orgs, cur.days[0], cur.days[len(cur.days)-1])
		if err != nil {
			return nil, fmt.Errorf("evidence: routine-audit coverage: %w", err)
		}
		b.step(StageRoutine)
		r.Routine.Teams = routineTeams(cov)
	}
	if r.Routine.Teams == nil {
		r.Routine.Teams = []RoutineTeam{}
	}

	// Retention.
	r.Retention = RetentionReport{Note: "This store does not apply retention: it keeps the monitor's data until it is deleted by hand."}
	if hasRetention {
		st, err := retainer.RetentionStatus(ctx, cur.days[0], cur.days[len(cur.days)-1])
		if err != nil {
			return nil, fmt.Errorf("evidence: retention: %w", err)
		}
		b.step(StageRetention)
		r.Retention = b.retention(st)
	}
	return r, nil
}

// retention reports each org's policy, class by class, beside what the
// store holds and deleted.
func (b *builder) retention(st store.RetentionStatus) RetentionReport {
	out := RetentionReport{Available: true, Classes: []RetentionRow{},
		Note: "The monitor's own data is deleted once its period has passed (0 days: kept). Alerts go with their triage only " +
			"once their latest decision is final; check state, keyed by task rather than org, goes when no org's period still covers it."}
	if !st.LastRun.IsZero() {
		out.LastRun = st.LastRun.In(b.loc).Format(time.RFC3339)
	}
	for _, org := range b.orgs {
		for _, c := range b.cfg.RetentionFor(org.ID) {
			row := RetentionRow{Org: org.ID, Class: c.Class, Days: c.Days, Source: c.Source, Deleted: st.Deleted[org.ID][c.Class]}
			if c.Class == store.RetainCheckState {
				row.Deleted = st.Deleted[""][c.Class]
			} else if t, ok := st.Oldest[org.ID][c.Class]; ok {
				row.Oldest = t.In(b.loc).Format(time.RFC3339)
			}
			out.Classes = append(out.Classes, row)
		}
	}
	return out
}

type builder struct {
	o           Options
	cfg         *config.Config
	reg         *dpia.Register
	orgs        []*config.Org
	loc         *time.Location
	done, total int
}

// Stages Progress names.
const (
	StageCoverage     = "Counting events per day"
	StageCompleteness = "Reading how far each feed is complete"
	StageAlerts       = "Counting alerts"
	StageTriage       = "Reading triage decisions"
	StageActions      = "Reading follow-up actions"
	StageRoutine      = "Reading routine audits"
	StageRetention    = "Reading retention"
	StageWrite        = "Writing the report (HTML, PDF, data files)"
	StageSign         = "Signing the pack"
)

func (b *builder) step(stage string) {
	b.done++
	if b.o.Progress != nil {
		b.o.Progress(stage, b.done, b.total)
	}
}

func (b *builder) coverage(ctx context.Context, p period) (Coverage2, error) {
	out := Coverage2{LateDataRecorded: true, Systems: []SystemCount{}, Days: []DayRow{}, DaysWithoutData: []Gap{}, DaysWithLateData: []Gap{}}
	for _, org := range b.orgs {
		c, err := b.o.Source.EvidenceCoverage(ctx, evidencequery.CoverageQuery{Org: org.ID, Days: p.days, Location: b.loc, LateAfter: b.cfg.Evidence.LateAfter.D()})
		if err != nil {
			return Coverage2{}, fmt.Errorf("evidence: coverage of %s: %w", org.ID, err)
		}
		b.step(StageCoverage)
		out.LateDataRecorded = out.LateDataRecorded && c.LateRecorded
		systems := map[string]int64{}
		perDay := make([]map[string]evidencequery.DayCount, len(p.dates))
		for _, d := range c.Days {
			if d.Day < 0 || d.Day >= len(p.dates) {
				continue
			}
			if perDay[d.Day] == nil {
				perDay[d.Day] = map[string]evidencequery.DayCount{}
			}
			x := perDay[d.Day][d.System]
			x.Events += d.Events
			x.Late += d.Late
			perDay[d.Day][d.System] = x
			systems[d.System] += d.Events
		}
		names := sortedKeys(systems)
		for _, s := range names {
			out.Systems = append(out.Systems, SystemCount{Org: org.ID, System: s, Events: systems[s]})
			out.Events += systems[s]
		}
		for i, date := range p.dates {
			row := DayRow{Date: date, Org: org.ID, Systems: []SystemCount{}}
			if i < len(c.Actors) {
				row.ActiveStaff = c.Actors[i]
			}
			for _, s := range names {
				x := perDay[i][s]
				row.Events += x.Events
				row.Late += x.Late
				row.Systems = append(row.Systems, SystemCount{Org: org.ID, System: s, Events: x.Events})
				if x.Events == 0 && len(names) > 1 {
					out.DaysWithoutData = append(out.DaysWithoutData, Gap{Date: date, Org: org.ID, System: s})
				}
				if c.LateRecorded && x.Late > 0 {
					out.DaysWithLateData = append(out.DaysWithLateData, Gap{Date: date, Org: org.ID, System: s, Events: x.Late})
				}
			}
			if row.Events == 0 {
				out.DaysWithoutData = append(out.DaysWithoutData, Gap{Date: date, Org: org.ID})
			}
			out.LateEvents += row.Late
			out.StaffDays += row.ActiveStaff
			out.Days = append(out.Days, row)
		}
	}
	if !out.LateDataRecorded {
		out.LateEvents = 0
		out.DaysWithLateData = []Gap{}
		for i := range out.Days {
			out.Days[i].Late = 0
		}
	}
	slices.SortStableFunc(out.DaysWithoutData, func(a, b Gap) int {
		return cmp.Or(strings.Compare(a.Date, b.Date), strings.Compare(a.Org, b.Org), strings.Compare(a.System, b.System))
	})
	return out, nil
}

// completeness reads how far each org's feed is complete, from a source
// that keeps the daemon's state (every store does); recorded is false for
// one that does not.
func (b *builder) completeness(ctx context.Context) (complete map[string]time.Time, recorded bool, err error) {
	sl, ok := b.o.Source.(store.StateLoader)
	if !ok {
		return nil, false, nil
	}
	if complete, err = store.LoadCompleteness(ctx, sl); err != nil {
		return nil, false, fmt.Errorf("evidence: %w", err)
	}
	b.step(StageCompleteness)
	return complete, true, nil
}

// uncovered states, per org, the ranges of days of p its data does not
// cover: runs of days without data (whole org, then per system) before the
// feed's completeness point, and every day from the one holding that point
// on — there a missing access may be one still to come, so those days are
// "feed not complete" whatever they hold.
func (b *builder) uncovered(p period, gaps []Gap, complete map[string]time.Time, recorded bool) []OrgCoverage {
	n := len(p.dates)
	index := make(map[string]int, n)
	for i, d := range p.dates {
		index[d] = i
	}
	out := []OrgCoverage{}
	for _, org := range b.orgs {
		oc := OrgCoverage{Org: org.ID, Uncovered: []DateRange{}}
		first := n // the first day the feed has not completed
		if recorded {
			first = 0
			if t, ok := complete[org.ID]; ok {
				oc.CompleteUpTo = t.In(b.loc).Format(time.RFC3339)
				for first < n && !p.days[first+1].After(t) {
					first++
				}
			}
		}
		bySystem := map[string][]int{}
		for _, g := range gaps {
			if i, ok := index[g.Date]; ok && g.Org == org.ID && i < first {
				bySystem[g.System] = append(bySystem[g.System], i)
			}
		}
		for _, sys := range sortedKeys(bySystem) {
			detail := "no data"
			if sys != "" {
				detail = "no data from " + sys
			}
			for _, r := range runs(bySystem[sys]) {
				oc.Uncovered = append(oc.Uncovered, DateRange{From: p.dates[r[0]], To: p.dates[r[1]], Days: r[1] - r[0] + 1,
					System: sys, Reason: UncoveredNoData, Detail: detail})
			}
		}
		if first < n {
			detail := "feed not complete for any period"
			if oc.CompleteUpTo != "" {
				detail = "feed not complete after " + oc.CompleteUpTo
			}
			oc.Uncovered = append(oc.Uncovered, DateRange{From: p.dates[first], To: p.dates[n-1], Days: n - first,
				Reason: UncoveredFeedIncomplete, Detail: detail})
		}
		slices.SortStableFunc(oc.Uncovered, func(x, y DateRange) int {
			return cmp.Or(strings.Compare(x.From, y.From), strings.Compare(x.System, y.System)) // "": the whole org first
		})
		out = append(out, oc)
	}
	return out
}

// runs merges ascending day indices into [first, last] runs of
// consecutive days.
func runs(days []int) [][2]int {
	var out [][2]int
	for _, d := range days {
		if k := len(out) - 1; k >= 0 && out[k][1]+1 >= d {
			out[k][1] = max(out[k][1], d)
			continue
		}
		out = append(out, [2]int{d, d})
	}
	return out
}

func (b *builder) alerts(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.AlertGroup, error) {
	g, err := b.o.Source.EvidenceAlerts(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("evidence: alerts: %w", err)
	}
	b.step(StageAlerts)
	return g, nil
}

type alertKey struct{ check, pattern, severity string }

func countBy(groups []evidencequery.AlertGroup, keep func(evidencequery.AlertGroup) bool) (map[alertKey]int64, int64) {
	m := map[alertKey]int64{}
	var total int64
	for _, g := range groups {
		if keep(g) {
			m[alertKey{g.Check, g.Pattern, g.Severity}] += g.Alerts
			total += g.Alerts
		}
	}
	return m, total
}

// alertCounts merges this period's and the previous one's counts, ordered
// by check, pattern and severity (lowest first).
func alertCounts(cur, prev map[alertKey]int64) []AlertCount {
	keys := map[alertKey]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range prev {
		keys[k] = true
	}
	out := []AlertCount{}
	for k := range keys {
		out = append(out, AlertCount{Check: k.check, Pattern: k.pattern, Severity: k.severity, Alerts: cur[k], Previous: prev[k]})
	}
	slices.SortFunc(out, func(a, b AlertCount) int {
		return cmp.Or(strings.Compare(a.Check, b.Check), strings.Compare(a.Pattern, b.Pattern),
			cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)), strings.Compare(a.Severity, b.Severity))
	})
	return out
}

func severityRank(s string) int {
	for i, v := range []string{"low", "medium", "high", "critical"} {
		if v == s {
			return i
		}
	}
	return 4
}

func totals(cur, prev []evidencequery.AlertGroup) AlertTotals {
	all := func(evidencequery.AlertGroup) bool { return true }
	c, ct := countBy(cur, all)
	p, pt := countBy(prev, all)
	return AlertTotals{Total: ct, Previous: pt, By: alertCounts(c, p)}
}

// notCovered reports the alerts that evidence none of risks.
func notCovered(risks []dpia.Risk, gCur, gPrev []evidencequery.AlertGroup, tCur []evidencequery.TriageGroup, hasTriage bool) NotCoveredReport {
	none := func(g evidencequery.AlertGroup) bool {
		return !slices.ContainsFunc(risks, func(k dpia.Risk) bool { return slices.Contains(g.Risks, k.ID) })
	}
	c, ct := countBy(gCur, none)
	p, pt := countBy(gPrev, none)
	return NotCoveredReport{Alerts: ct, Previous: pt, By: alertCounts(c, p), Triage: triageCounts(tCur, hasTriage, none),
		Note: "Alerts that evidence no risk in this DPIA: of a check or pattern the DPIA maps to no risk (none of its risks describes what was seen), or of feed-integrity, raised when the " +
			"access log itself is not what it should be (an event sent again with the same id but other content). They count in the " +
			"totals and triage across the DPIA but under no risk above; the panel should weigh them on their own, as no mitigation " +
			"of the DPIA covers them."}
}

func hasRisk(id string) func(evidencequery.AlertGroup) bool {
	return func(g evidencequery.AlertGroup) bool { return slices.Contains(g.Risks, id) }
}

// triageCounts sums the triage groups keep selects.
func triageCounts(groups []evidencequery.TriageGroup, available bool, keep func(evidencequery.AlertGroup) bool) TriageCounts {
	out := TriageCounts{Available: available, Outcomes: []OutcomeCount{}}
	if !available {
		return out
	}
	by := map[string]int64{}
	var seconds int64
	for _, g := range groups {
		if !keep(g.AlertGroup) {
			continue
		}
		by[g.Outcome] += g.Alerts
		if g.Outcome != "" {
			out.Time.Triaged += g.Alerts
		}
		out.Time.WithinHour += g.Buckets[evidencequery.BucketHour]
		out.Time.WithinDay += g.Buckets[evidencequery.BucketDay]
		out.Time.WithinWeek += g.Buckets[evidencequery.BucketWeek]
		out.Time.Later += g.Buckets[evidencequery.BucketLater]
		seconds += g.Seconds
	}
	for _, oc := range triage.Outcomes {
		out.Outcomes = append(out.Outcomes, OutcomeCount{Outcome: oc, Alerts: by[oc]})
		delete(by, oc)
	}
	// Outcomes this binary does not know still count, by name.
	for _, oc := range sortedKeys(by) {
		if oc != "" {
			out.Outcomes = append(out.Outcomes, OutcomeCount{Outcome: oc, Alerts: by[oc]})
		}
	}
	out.Outcomes = append(out.Outcomes, OutcomeCount{Outcome: "untriaged", Alerts: by[""]})
	if out.Time.Triaged > 0 {
		// Integer tenths, so that every platform prints the same digits.
		tenths := (seconds*10 + out.Time.Triaged*1800) / (out.Time.Triaged * 3600)
		out.Time.MeanHours = fmt.Sprintf("%d.%d", tenths/10, tenths%10)
	}
	return out
}

func outcome(t TriageCounts, name string) int64 {
	for _, o := range t.Outcomes {
		if o.Outcome == name {
			return o.Alerts
		}
	}
	return 0
}

func (b *builder) risk(k dpia.Risk, gCur, gPrev []evidencequery.AlertGroup, tCur, tPrev []evidencequery.TriageGroup, hasTriage bool, staffCur, staffPrev int64) RiskReport {
	keep := hasRisk(k.ID)
	c, ct := countBy(gCur, keep)
	p, pt := countBy(gPrev, keep)
	checks := slices.Clone(b.cfg.RiskChecks()[b.o.DPIA][k.ID])
	slices.Sort(checks)
	if checks == nil {
		checks = []string{}
	}
	rr := RiskReport{
		ID: k.ID, Title: k.Title,
		Register: RegisterRisk{Likelihood: string(k.Likelihood), Severity: string(k.Severity), Score: string(k.Score),
			Effect: k.Effect, Residual: string(k.Residual), Owner: k.Owner},
		Mitigations: append([]string{}, k.Mitigations...),
		Checks:      checks,
		Alerts:      ct, AlertsBy: alertCounts(c, p),
		Triage: triageCounts(tCur, hasTriage, keep),
	}
	prevTriage := triageCounts(tPrev, hasTriage, keep)
	rr.Confirmed = outcome(rr.Triage, triage.ConfirmedMisuse)
	rr.Observed = observe(rr.Confirmed, staffCur, hasTriage, string(k.Residual), outcome(rr.Triage, "untriaged"), len(checks) > 0)
	po := observe(outcome(prevTriage, triage.ConfirmedMisuse), staffPrev, hasTriage, string(k.Residual), 0, len(checks) > 0)
	rr.Previous = RiskPrevious{Alerts: pt, Confirmed: po.ConfirmedEpisodes, Rate: po.RatePer10k, Level: po.Level}
	return rr
}

// Observed-likelihood levels.
const (
	LevelRemote        = "remote"
	LevelPossible      = "possible"
	LevelProbable      = "probable"
	LevelNotAssessable = "not-assessable"
)

func levelRank(s string) int {
	switch s {
	case LevelRemote, string(dpia.ScoreLow):
		return 0
	case LevelPossible, string(dpia.ScoreMedium):
		return 1
	case LevelProbable, string(dpia.ScoreHigh):
		return 2
	}
	return -1
}

// observe computes the observed-likelihood indicator (see definitions).
func observe(confirmed, staffDays int64, hasTriage bool, residual string, untriaged int64, monitored bool) Observed {
	o := Observed{ConfirmedEpisodes: confirmed, StaffDays: staffDays, Residual: residual, Level: LevelNotAssessable}
	switch {
	case !monitored:
		o.Comparison = "Not assessable: no enabled check looks for this risk, so dpiawatch cannot observe it."
		return o
	case !hasTriage:
		o.Comparison = "Not assessable: this installation does not record the IG team's decisions on alerts, so confirmed misuse is unknown."
		return o
	case staffDays == 0:
		o.Comparison = "Not assessable: no staff activity was recorded in the period, so there is nothing to measure against."
		return o
	}
	// Two decimals by integer arithmetic, rounded half up.
	hundredths := (confirmed*10000*100*2 + staffDays) / (2 * staffDays)
	o.RatePer10k = fmt.Sprintf("%d.%02d", hundredths/100, hundredths%100)
	lo, hi := poissonInterval(confirmed)
	o.RateLow, o.RateHigh = per10k(lo, staffDays), per10k(hi, staffDays)
	o.RateIfUndecided = per10k(float64(confirmed+untriaged), staffDays)
	switch {
	case confirmed*10000 < possibleRate*staffDays:
		o.Level = LevelRemote
	case confirmed*10000 < probableRate*staffDays:
		o.Level = LevelPossible
	default:
		o.Level = LevelProbable
	}
	// Plain sentences for a review panel: what was seen, against what the
	// DPIA expects, and what the panel might do about it.
	switch lr, rr := levelRank(o.Level), levelRank(residual); {
	case rr < 0:
		o.Comparison = fmt.Sprintf("The DPIA gives no residual risk for this risk, so there is nothing to compare the observed likelihood (%s) with; the panel should weigh it on its own.", o.Level)
	case lr > rr:
		o.Versus = VersusAbove
		o.Comparison = fmt.Sprintf("Higher than the DPIA expects: misuse was confirmed often enough to rate the likelihood %s, against a %s residual risk in the DPIA. The panel should consider whether the mitigations work as the DPIA assumes.", o.Level, residual)
	case lr == rr:
		o.Versus = VersusInLine
		o.Comparison = fmt.Sprintf("As the DPIA expects: the observed likelihood (%s) matches the DPIA's %s residual risk.", o.Level, residual)
	default:
		o.Versus = VersusBelow
		o.Comparison = fmt.Sprintf("Lower than the DPIA expects: the observed likelihood (%s) is below the DPIA's %s residual risk. Few confirmed cases support the mitigations working, though misuse that no check detects cannot show here.", o.Level, residual)
	}
	switch {
	case untriaged == 1:
		o.Comparison += " 1 alert had not been decided when this pack was made, so the true rate may be higher."
	case untriaged > 1:
		o.Comparison += fmt.Sprintf(" %d alerts had not been decided when this pack was made, so the true rate may be higher.", untriaged)
	}
	return o
}

// Observed.Versus values: the observed likelihood against the register's
// residual risk.
const (
	VersusAbove  = "above"
	VersusInLine = "in-line"
	VersusBelow  = "below"
)

func (b *builder) confirmed(cs []evidencequery.ConfirmedAlert) []Confirmed {
	out := []Confirmed{}
	for _, c := range cs {
		out = append(out, Confirmed{
			AlertID: c.ID, Org: c.Org, Check: c.Check, Pattern: c.Pattern, Severity: c.Severity,
			Risks: append([]string{}, c.Risks...), Actor: b.identity("actor", c.ActorID), Subject: b.identity("subject", c.SubjectID),
			FirstSeen: c.FirstSeen.UTC().Format(time.RFC3339), LastSeen: c.LastSeen.UTC().Format(time.RFC3339),
			Events: c.Events, DecidedAt: c.DecidedAt.UTC().Format(time.RFC3339),
		})
	}
	return out
}

// actionsReport is the actions log, overdue judged at asOf (a local day).
func actionsReport(as []evidencequery.ActionAlert, asOf string) ActionsReport {
	out := ActionsReport{Available: true, AsOf: asOf, Items: []ActionItem{},
		Note: "Follow-up actions recorded with the latest triage decision of each alert of the period, as when the pack was exported; " +
			"overdue: still open on the period's last day, with its due day passed or that day."}
	for _, a := range as {
		act := triage.Action{Owner: a.Owner, Due: a.Due, Status: a.Status}
		it := ActionItem{AlertID: a.ID, Org: a.Org, Check: a.Check, Pattern: a.Pattern, Severity: a.Severity,
			Risks: append([]string{}, a.Risks...), Outcome: a.Outcome, Owner: a.Owner, Due: a.Due,
			Status: cmp.Or(a.Status, triage.ActionOpen), Overdue: act.Overdue(nextDay(asOf)),
			DecidedAt: a.DecidedAt.UTC().Format(time.RFC3339)}
		switch {
		case it.Status == triage.ActionDone:
			out.Done++
		case it.Overdue:
			out.Overdue++
			out.Open++
		default:
			out.Open++
		}
		out.Items = append(out.Items, it)
	}
	return out
}

// nextDay is the local day after day ("YYYY-MM-DD").
func nextDay(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// identity is id itself with identities, else its pseudonym, else withheld.
func (b *builder) identity(kind, id string) string {
	if id == "" {
		return ""
	}
	if b.o.Identities {
		return id
	}
	if b.o.Pseudonym != nil {
		if p := b.o.Pseudonym(kind, id); p != "" {
			return p
		}
	}
	return "withheld"
}

func routineReport(orgs []string, cur, prev []evidencequery.RoutineAuditGroup) RoutineReport {
	out := RoutineReport{Available: true, Note: "Samples of access that managers reviewed in their routine audits.", Orgs: []RoutineOrg{}}
	for _, org := range orgs {
		ro := RoutineOrg{Org: org}
		for _, g := range cur {
			if g.Org == org {
				ro.Samples += g.Samples
				ro.Findings += g.Findings
			}
		}
		for _, g := range prev {
			if g.Org == org {
				ro.Previous += g.Samples
			}
		}
		out.Orgs = append(out.Orgs, ro)
	}
	return out
}

// routineTeams sums each team's samples of the period.
func routineTeams(cov []routineaudit.Coverage) []RoutineTeam {
	out := []RoutineTeam{}
	for _, c := range cov {
		i := slices.IndexFunc(out, func(t RoutineTeam) bool { return t.Org == c.Org && t.Team == c.Team })
		if i < 0 {
			out = append(out, RoutineTeam{Org: c.Org, Team: c.Team})
			i = len(out) - 1
		}
		out[i].Samples++
		out[i].Sampled += c.Sampled
		out[i].Reviewed += c.Reviewed
	}
	slices.SortFunc(out, func(a, b RoutineTeam) int {
		return cmp.Or(strings.Compare(a.Org, b.Org), strings.Compare(a.Team, b.Team))
	})
	return out
}

func definitions(lateAfter time.Duration) []Definition {
	return []Definition{
		{"Period", "Whole local days in the DPIA's timezone; the previous period is the same number of days just before it."},
		{"Events examined", "Access events stored for the DPIA's orgs with an event time inside the period: every one of them went through the enabled checks."},
		{"Days without data", "A local day on which an org (or one of its systems that logged in the period) recorded no access at all: a feed may have stopped."},
		{"Feed complete up to", "The event time up to which every access of an org had been stored and judged when the pack was made, as the daemon records it with each batch. Accesses after it may still arrive, so the figures of the days from it on may still grow."},
		{"Data not covered", "Per org, the ranges of consecutive days the data does not cover: days without data (of the whole org, or of one of its systems) up to the feed's completeness point, and every day from that point on (feed not complete)."},
		{"Late data", fmt.Sprintf("Events stored more than %s after their event time. Only stores that record arrival times (ClickHouse) can report it.", lateAfter)},
		{"Alert", "One episode found by a check: the same account, check and pattern, events close in time. Counted in the period its first event falls in."},
		{"Time to triage", "From an alert's first event to the first triage decision recorded for it."},
		{"Confirmed misuse", "Alerts whose latest triage decision is confirmed-misuse: the IG team found the access inappropriate."},
		{"Active staff-days", "The number of (account, local day) pairs with at least one access event: how much work the checks watched."},
		{"Observed likelihood", fmt.Sprintf("Confirmed-misuse episodes evidencing the risk per 10,000 active staff-days in the period: under %d is remote, %d to under %d possible, %d or more probable. It is shown beside the register's residual risk score (low, medium, high read against remote, possible, probable). Alerts not yet triaged are not counted, so the rate is a lower bound while any remain.", possibleRate, possibleRate, probableRate, probableRate)},
		{"Pseudonyms", "Accounts and people are shown as keyed pseudonyms (the same as in alerts and the web UI) unless the pack was exported with identities."},
	}
}

// checkInfos lists every configured check (each registered check's
// section), its risks for dpiaID and its settings.
func checkInfos(cfg *config.Config, dpiaID string) []CheckInfo {
	out := []CheckInfo{}
	orgs := map[string]bool{}
	for _, o := range cfg.Orgs {
		if o.DPIA == dpiaID {
			orgs[o.ID] = true
		}
	}
	for _, s := range cfg.Checks.Sections() {
		ci := CheckInfo{Name: s.Name, Enabled: s.Section.IsEnabled(), Risks: []string{}, Settings: []Setting{}}
		ci.Risks = append(ci.Risks, s.Section.EvidencedRisks()[dpiaID]...)
		ci.PatternRisks = patternRisks(s, dpiaID, ci.Risks)
		if b, err := yaml.Marshal(s.Section); err == nil {
			var n yaml.Node
			if yaml.Unmarshal(b, &n) == nil && len(n.Content) == 1 {
				flatten(n.Content[0], "", orgs, &ci.Settings)
			}
		}
		ci.Summary = settingsSummary(ci)
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b CheckInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// patternRisks lists the patterns of a check whose own mapping for dpiaID
// differs from the check's risks, in the check's pattern order.
func patternRisks(s config.NamedSection, dpiaID string, checkRisks []string) []PatternRisks {
	var out []PatternRisks
	for _, p := range s.Patterns {
		rs := config.RisksOf(s.Section, p, dpiaID)
		if !slices.Equal(rs, checkRisks) {
			out = append(out, PatternRisks{Pattern: p, Risks: append([]string{}, rs...)})
		}
	}
	return out
}

// flatten writes a YAML tree as dotted keys, in document order; enabled
// and the risk mappings are shown apart, so they are left out, and so are list
// items (sites, overrides) that name another DPIA's org. Kept items keep
// their index in the configuration file.
func flatten(n *yaml.Node, prefix string, orgs map[string]bool, out *[]Setting) {
	switch n.Kind {
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			*out = append(*out, Setting{Key: prefix, Value: "{}"})
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if prefix == "" && (k == "enabled" || k == "evidences" || k == "pattern_evidences") {
				continue
			}
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(n.Content[i+1], key, orgs, out)
		}
	case yaml.SequenceNode:
		scalars := true
		var vals []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				scalars = false
				break
			}
			vals = append(vals, c.Value)
		}
		if scalars {
			*out = append(*out, Setting{Key: prefix, Value: "[" + strings.Join(vals, ", ") + "]"})
			return
		}
		for i, c := range n.Content {
			if org := mappingValue(c, "org"); org != "" && !orgs[org] {
				continue
			}
			flatten(c, fmt.Sprintf("%s[%d]", prefix, i), orgs, out)
		}
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return // an optional setting left unset
		}
		*out = append(*out, Setting{Key: prefix, Value: n.Value})
	}
}

// mappingValue is the scalar under key in mapping n, or "".
func mappingValue(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
