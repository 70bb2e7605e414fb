// Package history fills a ClickHouse store with a synthetic county's stored
// history — a year of care-record access events, the alerts raised over it
// and their triage — generated inside ClickHouse by INSERT … SELECT from
// numbers(), so that hundreds of millions of rows never pass through Go.
// It exists to measure what reads a long history (the evidence export,
// backtest) at a county's real size rather than extrapolating (issue 14).
//
// The rows use the columns the daemon writes (store/clickhouse's events,
// alerts and audit tables, through the events' materialized view and
// projections); the distributions are documented on Options and in
// docs/evidence.md. Everything is deterministic in Options.Seed.
package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Options configures a fill. Zero values take the defaults in brackets.
type Options struct {
	Database string // the store's database [dpiawatch]
	Org      string // [wiltshire-council]
	DPIA     string // the alerts' DPIA [wiltshire-childrens-cms]
	Location *time.Location
	// From is the first local day filled; Days how many.
	From time.Time
	Days int
	// EventsPerDay is the mean over a week [1,000,000]: a weekday holds
	// 7/5.45 of it, a Saturday a quarter and a Sunday a fifth of a weekday.
	EventsPerDay int
	// Staff is the roster's size [10,466], Subjects the children and
	// families on record [105,000].
	Staff, Subjects int
	// EventsPerAlert is how many events one alert comes with [10,000]:
	// the simulated county's rate (101 episodes in 1.05 M events).
	EventsPerAlert int
	Seed           uint64
	// Progress, if set, is called after each day with its totals.
	Progress func(Day)
}

// Day is what one day's fill wrote.
type Day struct {
	Index          int
	Date           time.Time
	Events, Alerts int64
	Elapsed        time.Duration
}

// Result totals a fill.
type Result struct {
	Events, Alerts, Triaged int64
	Elapsed                 time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Database == "" {
		o.Database = "dpiawatch"
	}
	if o.Org == "" {
		o.Org = "wiltshire-council"
	}
	if o.DPIA == "" {
		o.DPIA = "wiltshire-childrens-cms"
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.EventsPerDay <= 0 {
		o.EventsPerDay = 1_000_000
	}
	if o.Staff <= 0 {
		o.Staff = 10_466
	}
	if o.Subjects <= 0 {
		o.Subjects = 105_000
	}
	if o.EventsPerAlert <= 0 {
		o.EventsPerAlert = 10_000
	}
	if o.Days <= 0 || o.From.IsZero() {
		return o, errors.New("history: From and a positive Days are required")
	}
	if o.Staff < 2*len(teams) {
		return o, fmt.Errorf("history: %d staff cannot fill %d teams", o.Staff, len(teams))
	}
	return o, nil
}

// team is one team of the synthetic county: its share of the staff, the
// role its staff hold and the record types they open.
type team struct {
	name, role string
	share      int
	types      []string
	net        string // the site network its laptops sit on
}

// teams after the simulated Wiltshire (simulate/orgs.go), scaled to the
// roster; the emergency duty team, last, works the nights.
var teams = []team{
	{"mash", "social-worker", 60, []string{"referral", "case-note", "strategy-discussion", "assessment"}, "10.10"},
	{"child-protection", "social-worker", 220, []string{"case-note", "child-protection-plan", "assessment", "strategy-discussion"}, "10.20"},
	{"children-in-care", "social-worker", 180, []string{"case-note", "placement", "assessment", "health-assessment"}, "10.30"},
	{"care-leavers", "personal-adviser", 60, []string{"case-note", "pathway-plan"}, "10.40"},
	{"early-help", "family-support-worker", 250, []string{"early-help-assessment", "case-note"}, "10.10"},
	{"sen", "sen-officer", 200, []string{"ehcp", "case-note", "assessment"}, "10.20"},
	{"education-welfare", "education-welfare-officer", 120, []string{"attendance", "case-note"}, "10.30"},
	{"fostering", "fostering-social-worker", 80, []string{"fostering-assessment", "placement", "case-note"}, "10.40"},
	{"admissions", "admissions-officer", 100, []string{"admission", "case-note"}, "10.10"},
	{"early-years", "early-years-officer", 100, []string{"funding", "attendance"}, "10.20"},
	{"virtual-school", "virtual-school-officer", 40, []string{"attendance", "assessment", "case-note"}, "10.30"},
	{"emergency-duty-team", "emergency-duty-team", 15, []string{"case-note", "strategy-discussion", "referral"}, "10.10"},
}

// hourWeights is the share of a day's events starting in each local hour,
// in ten-thousandths: office hours with a lunch dip, a thin night.
var hourWeights = [24]int{30, 20, 15, 15, 15, 25, 60, 250, 700, 1050, 1100, 1050, 750, 950, 1050, 1000, 800, 450, 200, 140, 110, 90, 70, 60}

// alertKinds is the mix of the alerts raised, with their severity and the
// Wiltshire DPIA risks the shipped configuration maps each check to.
var alertKinds = []struct {
	check, pattern, severity string
	risks                    string // JSON array
	weight                   int
}{
	{"no-business-need", "no-relationship", "high", `["R1","R4"]`, 34},
	{"no-business-need", "relationship-ended", "high", `["R1","R4"]`, 8},
	{"out-of-hours", "outside-working-hours", "medium", `["R1","R4"]`, 22},
	{"out-of-hours", "bank-holiday", "medium", `["R1","R4"]`, 3},
	{"unlocked-session", "unlocked-gap", "medium", `["R1"]`, 12},
	{"shared-credential", "concurrent-sessions", "medium", `["R1"]`, 8},
	{"shared-credential", "external-without-mfa", "medium", `["R1"]`, 4},
	{"shared-credential", "used-after-leaving", "medium", `["R1"]`, 2},
	{"bulk-access", "bulk-access", "high", `["R1","R4"]`, 7},
}

// Fill writes o.Days days of history into the store's tables over conn,
// one day at a time (three statements: events, alerts, triage). The
// database must be migrated (clickhouse.Open). Filling a date again
// writes the same events and alerts, which the engine folds (FINAL on
// read), and its triage decisions again under new sequence numbers.
func Fill(ctx context.Context, conn driver.Conn, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	var seqBase uint64
	if err := conn.QueryRow(ctx, `SELECT max(seq) FROM `+o.Database+`.audit`).Scan(&seqBase); err != nil {
		return Result{}, fmt.Errorf("history: audit sequence: %w", err)
	}
	start := time.Now()
	var res Result
	y, m, d := o.From.In(o.Location).Date()
	for i := range o.Days {
		dayStart := time.Date(y, m, d+i, 0, 0, 0, 0, o.Location)
		dayEnd := time.Date(y, m, d+i+1, 0, 0, 0, 0, o.Location)
		t0 := time.Now()
		events := o.eventsOn(dayStart)
		alerts := max(int64(1), events/int64(o.EventsPerAlert))
		key := dayNumber(dayStart)
		if err := conn.Exec(ctx, o.eventsSQL(key, dayStart, dayEnd, events), o.params()...); err != nil {
			return res, fmt.Errorf("history: events of %s: %w", dayStart.Format(time.DateOnly), err)
		}
		if err := conn.Exec(ctx, o.alertsSQL(key, dayStart, dayEnd, alerts), o.params()...); err != nil {
			return res, fmt.Errorf("history: alerts of %s: %w", dayStart.Format(time.DateOnly), err)
		}
		// Sequence numbers: the day's alerts' own range above what is stored.
		seq := seqBase + uint64(res.Alerts) + 1
		if err := conn.Exec(ctx, o.triageSQL(key, dayStart, dayEnd, alerts, seq), o.params()...); err != nil {
			return res, fmt.Errorf("history: triage of %s: %w", dayStart.Format(time.DateOnly), err)
		}
		res.Events += events
		res.Alerts += alerts
		if o.Progress != nil {
			o.Progress(Day{Index: i, Date: dayStart, Events: events, Alerts: alerts, Elapsed: time.Since(t0)})
		}
	}
	var triaged uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM `+o.Database+`.audit WHERE kind = 'triage' AND seq > {seq_base:UInt64}`,
		clickhouse.Named("seq_base", strconv.FormatUint(seqBase, 10))).Scan(&triaged); err != nil {
		return res, fmt.Errorf("history: count triage: %w", err)
	}
	res.Triaged = int64(triaged)
	res.Elapsed = time.Since(start)
	return res, nil
}

// dayNumber is the local date's number of days since 1970-01-01. It keys
// every hash and id of the date's rows, so that each date has rows of its
// own whichever fill writes it, and a date filled again writes the same
// events and alerts (which the engine folds).
func dayNumber(day time.Time) int {
	y, m, d := day.Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// eventsOn is the number of events of the local day starting at day.
func (o Options) eventsOn(day time.Time) int64 {
	weekday := float64(o.EventsPerDay) * 7 / 5.45
	switch day.Weekday() {
	case time.Saturday:
		return int64(weekday * 0.25)
	case time.Sunday:
		return int64(weekday * 0.20)
	}
	return int64(weekday)
}

// params are the string values every statement binds.
func (o Options) params() []any {
	return []any{clickhouse.Named("org", o.Org), clickhouse.Named("dpia", o.DPIA), clickhouse.Named("tz", o.Location.String())}
}

// sqlStrings renders constant strings of this package (never input) as a
// ClickHouse array literal.
func sqlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func sqlInts(ns []int) string {
	q := make([]string, len(ns))
	for i, n := range ns {
		q[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// cumulative returns the running sums of w.
func cumulative(w []int) []int {
	out := make([]int, len(w))
	sum := 0
	for i, x := range w {
		sum += x
		out[i] = sum
	}
	return out
}

// teamBounds is each team's last staff rank + 1, the roster shared by
// share (at least one person each).
func (o Options) teamBounds() []int {
	total := 0
	for _, t := range teams {
		total += t.share
	}
	bounds := make([]int, len(teams))
	n := 0
	for i, t := range teams {
		n += max(1, t.share*o.Staff/total)
		bounds[i] = min(n, o.Staff)
	}
	bounds[len(bounds)-1] = o.Staff
	return bounds
}

// eventsSQL inserts one local day's events. Two hashes of the row number
// (ha, hb) are cut into independent draws:
//   - the local hour by hourWeights, the second within it, the nanosecond;
//   - the actor: staff rank floor(Staff·u^1.6) (a few heavy users, a long
//     tail), or at night (before 07:00, from 20:00) seven times in ten a
//     member of the emergency duty team; team, role, laptop and site
//     network follow from the rank;
//   - the subject: nine times in ten one of the actor's caseload of 40,
//     else anyone of Subjects; sensitivity tags by subject;
//   - system liquidlogic 80 %, eclipse 12 %, capita-one 8 %; action view
//     60 %, update 20 %, search 8 %, create 5 %, login 3 %, logout 2.5 %,
//     lock 1 %, print/export/share 0.5 %; failure 0.4 %;
//   - arrival (inserted_at) 2–31 s after the event, 0.2 % two hours late.
func (o Options) eventsSQL(day int, dayStart, dayEnd time.Time, n int64) string {
	bounds := o.teamBounds()
	edtFirst := bounds[len(bounds)-2]
	types := make([]string, len(teams))
	roles := make([]string, len(teams))
	names := make([]string, len(teams))
	nets := make([]string, len(teams))
	for i, t := range teams {
		types[i] = sqlStrings(t.types)
		roles[i], names[i], nets[i] = t.role, t.name, t.net
	}
	seconds := int64(dayEnd.Sub(dayStart) / time.Second)
	r := strconv.Itoa
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	return `INSERT INTO ` + o.Database + `.events (org, system, id, t, tz_offset, action, actor, actor_role, actor_team, actor_org,
	subject, sensitivity, record_type, record_id, session_id, device, ip, mfa, outcome, src_topic, src_partition, src_offset,
	batch, retention_days, inserted_at)
SELECT {org:String}, system, concat(prefix, lower(hex(hb))), t, timeZoneOffset(toDateTime(t, {tz:String})), action,
	concat('wc-', leftPad(toString(rank + 1), 5, '0')), ` + sqlStrings(roles) + `[ti], ` + sqlStrings(names) + `[ti], {org:String},
	concat('ch-', leftPad(toString(subj + 1), 6, '0')),
	[[], [], [], [], ['safeguarding'], ['child-protection'], ['looked-after'], ['sen'], ['mental-health'], ['cse-risk', 'safeguarding']][subj % 10 + 1],
	rtype, concat('r-', toString(subj + 1), '-', toString(hb % 7)),
	concat('s-', toString(rank + 1), '-` + r(day) + `'), concat('lt-', leftPad(toString(rank + 1), 5, '0')),
	concat(` + sqlStrings(nets) + `[ti], '.', toString(intDiv(rank, 250)), '.', toString(rank % 250 + 2)),
	CAST(NULL, 'Nullable(Bool)'), if(intDiv(hb, 1000) % 1000 < 4, 'failure', 'success'),
	'access-events', toInt32(number % 3), toInt64(` + i64(int64(day)*10_000_000) + ` + number),
	concat('hist-` + r(day) + `-', toString(intDiv(number, 20000))), 0,
	toDateTime(t) + if(intDiv(hb, 1000000) % 1000 < 2, 7200, 2 + hb % 30)
FROM (
	SELECT number, ha, hb, hour, t, rank, ti, subj, system, prefix, action,
		arrayElement(` + "[" + strings.Join(types, ", ") + "]" + `[ti], intDiv(hb, 1000000000) % length(` + "[" + strings.Join(types, ", ") + "]" + `[ti]) + 1) AS rtype
	FROM (
		SELECT number, ha, hb, hour, t, rank, arrayFirstIndex(x -> x > rank, ` + sqlInts(bounds) + `) AS ti, subj, system, prefix, action
		FROM (
			SELECT number, ha, hb,
				arrayFirstIndex(x -> x > ha % 10000, ` + sqlInts(cumulative(hourWeights[:])) + `) - 1 AS hour,
				fromUnixTimestamp64Nano(toInt64(` + i64(dayStart.UnixNano()) + ` + least(hour * 3600 + intDiv(ha, 10000) % 3600, ` + i64(seconds-1) + `) * 1000000000
					+ intDiv(ha, 36000000) % 1000000000), 'UTC') AS t,
				if((hour < 7 OR hour >= 20) AND intDiv(hb, 1000000000000) % 10 < 7,
					` + r(edtFirst) + ` + intDiv(ha, 36000000000000000) % ` + r(o.Staff-edtFirst) + `,
					toUInt64(floor(pow((intDiv(ha, 36000000000000) % 1000) / 1000 + (number % 1000) / 1000000, 1.6) * ` + r(o.Staff) + `))) AS rank,
				if(intDiv(hb, 10000000000000) % 10 < 9, (rank * 40 + intDiv(hb, 100000000000000) % 40) % ` + r(o.Subjects) + `,
					intDiv(hb, 10000000) % ` + r(o.Subjects) + `) AS subj,
				multiIf(intDiv(ha, 360000000000000) % 100 < 80, 'liquidlogic', intDiv(ha, 360000000000000) % 100 < 92, 'eclipse', 'capita-one') AS system,
				multiIf(system = 'liquidlogic', 'lql-', system = 'eclipse', 'ecl-', 'c1-') AS prefix,
				multiIf(hb % 1000 < 600, 'view', hb % 1000 < 800, 'update', hb % 1000 < 880, 'search', hb % 1000 < 930, 'create',
					hb % 1000 < 960, 'login', hb % 1000 < 985, 'logout', hb % 1000 < 995, 'lock',
					['print', 'export', 'share'][hb % 3 + 1]) AS action
			FROM (SELECT number, cityHash64(number, ` + r(day) + `, ` + strconv.FormatUint(o.Seed, 10) + `) AS ha, cityHash64(ha) AS hb FROM numbers(` + i64(n) + `))
		)
	)
)`
}

// alertsSQL inserts one day's alerts, one version each, first seen during
// the day (office hours mostly, as the events), actors skewed as the
// events', kinds by alertKinds' weights; each lasts up to an hour and
// covers 1–20 events.
func (o Options) alertsSQL(day int, dayStart, dayEnd time.Time, n int64) string {
	checks, patterns, sevs, risks := make([]string, len(alertKinds)), make([]string, len(alertKinds)), make([]string, len(alertKinds)), make([]string, len(alertKinds))
	weights := make([]int, len(alertKinds))
	for i, k := range alertKinds {
		checks[i], patterns[i], sevs[i], risks[i], weights[i] = k.check, k.pattern, k.severity, k.risks, k.weight
	}
	cum := cumulative(weights)
	seconds := int64(dayEnd.Sub(dayStart) / time.Second)
	r := strconv.Itoa
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	return `INSERT INTO ` + o.Database + `.alerts (id, org, check_name, pattern, severity, dpia, actor, subject, first_seen, last_seen,
	version, change_seq, updated_at, batch, body)
SELECT id, {org:String}, chk, pat, sev, {dpia:String}, actor, subject, first, last, 1, ` + i64(int64(day)*1_000_000) + ` + number,
	toDateTime64(last, 3, 'UTC'), concat('hist-` + r(day) + `'),
	concat('{"id":"', id, '","check":"', chk, '","pattern":"', pat, '","severity":"', sev, '","org":"', {org:String},
		'","actor_id":"', actor, '","subject_id":"', subject, '","first_seen":"', formatDateTime(first, '%Y-%m-%dT%H:%i:%SZ', 'UTC'),
		'","last_seen":"', formatDateTime(last, '%Y-%m-%dT%H:%i:%SZ', 'UTC'), '","event_ids":[],"dpia":"', {dpia:String},
		'","risks":', risks, ',"explanation":"synthetic history","event_count":', toString(events), '}')
FROM (
	SELECT number, concat('a-', lower(hex(h))) AS id, k,
		` + sqlStrings(checks) + `[k] AS chk, ` + sqlStrings(patterns) + `[k] AS pat, ` + sqlStrings(sevs) + `[k] AS sev,
		` + sqlStrings(risks) + `[k] AS risks,
		concat('wc-', leftPad(toString(toUInt64(floor(pow((h % 1000) / 1000, 1.6) * ` + r(o.Staff) + `)) + 1), 5, '0')) AS actor,
		concat('ch-', leftPad(toString(intDiv(h, 1000) % ` + r(o.Subjects) + ` + 1), 6, '0')) AS subject,
		fromUnixTimestamp64Nano(toInt64(` + i64(dayStart.UnixNano()) + ` + least((arrayFirstIndex(x -> x > intDiv(h, 1000000000) % 10000, ` + sqlInts(cumulative(hourWeights[:])) + `) - 1) * 3600
			+ intDiv(h, 10000000000000) % 3600, ` + i64(seconds-1) + `) * 1000000000), 'UTC') AS first,
		first + toIntervalSecond(intDiv(h, 1000000000000000) % 3600) AS last, 1 + h % 20 AS events
	FROM (SELECT number, cityHash64(number, ` + r(day) + `, ` + strconv.FormatUint(o.Seed, 10) + `, 'alert') AS h,
		arrayFirstIndex(x -> x > cityHash64(h) % ` + r(cum[len(cum)-1]) + `, ` + sqlInts(cum) + `) AS k
		FROM numbers(` + i64(n) + `))
)`
}

// triageSQL records the IG team's decisions on one day's alerts, as the
// alerting API writes them (an audit row of kind triage each): nine in
// ten decided, false positive 55 %, explained 30 %, acknowledged 12 %,
// confirmed misuse 3 %; the first decision within the hour 40 %, the day
// 35 %, the week 20 %, later 5 %. Alert ids and first seen are recomputed
// from alertsSQL's hash, so no join is needed.
func (o Options) triageSQL(day int, dayStart, dayEnd time.Time, n int64, seq uint64) string {
	seconds := int64(dayEnd.Sub(dayStart) / time.Second)
	r := strconv.Itoa
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	return `INSERT INTO ` + o.Database + `.audit (seq, at, org, actor, action, object, kind, outcome, source)
SELECT ` + strconv.FormatUint(seq, 10) + ` + number, first + toIntervalSecond(delay), {org:String},
	concat('ig-', toString(g % 6 + 1)), concat('triage.', oc), concat('a-', lower(hex(h))), 'triage', oc, 'web'
FROM (
	SELECT number, h, cityHash64(h, 'triage') AS g,
		fromUnixTimestamp64Nano(toInt64(` + i64(dayStart.UnixNano()) + ` + least((arrayFirstIndex(x -> x > intDiv(h, 1000000000) % 10000, ` + sqlInts(cumulative(hourWeights[:])) + `) - 1) * 3600
			+ intDiv(h, 10000000000000) % 3600, ` + i64(seconds-1) + `) * 1000000000), 'UTC') AS first,
		multiIf(g % 100 < 55, 'false-positive', g % 100 < 85, 'explained', g % 100 < 97, 'acknowledged', 'confirmed-misuse') AS oc,
		multiIf(intDiv(g, 100) % 100 < 40, 60 + intDiv(g, 10000) % 3500, intDiv(g, 100) % 100 < 75, 3600 + intDiv(g, 10000) % 82800,
			intDiv(g, 100) % 100 < 95, 86400 + intDiv(g, 10000) % 518400, 604800 + intDiv(g, 10000) % 1814400) AS delay
	FROM (SELECT number, cityHash64(number, ` + r(day) + `, ` + strconv.FormatUint(o.Seed, 10) + `, 'alert') AS h FROM numbers(` + i64(n) + `))
	WHERE intDiv(cityHash64(h, 'triage'), 1000000) % 10 < 9
)`
}
