package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/storedjson"
	"github.com/dpiawatch/dpiawatch/triage"
)

// The embedded store answers every evidence aggregate with a grouped query;
// no event leaves the database. It records no arrival time, so late data
// is not reported (Coverage.LateRecorded false).
// evidenceDays is the days of a CoverageQuery as a table d(i, lo, hi), from
// one bound JSON array: each day is then a range seek on events_org_t.
const evidenceDays = `WITH d(i, lo, hi) AS (SELECT key, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`

func daysJSON(days []time.Time) (string, error) {
	if len(days) < 2 {
		return "", fmt.Errorf("evidence coverage: need at least two day bounds, got %d", len(days))
	}
	pairs := make([][2]int64, len(days)-1)
	for i := range pairs {
		pairs[i] = [2]int64{timeKey(days[i]), timeKey(days[i+1])}
	}
	b, err := storedjson.Marshal(pairs)
	return string(b), err
}

// EvidenceCoverage counts q.Org's events per day and system, and distinct
// actors per day.
func (s *Store) EvidenceCoverage(ctx context.Context, q evidencequery.CoverageQuery) (evidencequery.Coverage, error) {
	days, err := daysJSON(q.Days)
	if err != nil {
		return evidencequery.Coverage{}, fmt.Errorf("sqlite: %w", err)
	}
	out := evidencequery.Coverage{Actors: make([]int64, len(q.Days)-1)}
	rows, err := s.r.QueryContext(ctx, evidenceDays+`
SELECT d.i, e.system, count(*) FROM d JOIN events e ON e.org = ? AND e.t >= d.lo AND e.t < d.hi
GROUP BY d.i, e.system ORDER BY d.i, e.system`, days, q.Org)
	if err != nil {
		return evidencequery.Coverage{}, fmt.Errorf("sqlite: evidence coverage: %w", err)
	}
	for rows.Next() {
		var c evidencequery.DayCount
		if err := rows.Scan(&c.Day, &c.System, &c.Events); err != nil {
			rows.Close()
			return evidencequery.Coverage{}, fmt.Errorf("sqlite: evidence coverage: %w", err)
		}
		out.Days = append(out.Days, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return evidencequery.Coverage{}, fmt.Errorf("sqlite: evidence coverage: %w", err)
	}

	rows, err = s.r.QueryContext(ctx, evidenceDays+`
SELECT d.i, count(DISTINCT e.actor) FROM d JOIN events e ON e.org = ? AND e.t >= d.lo AND e.t < d.hi
GROUP BY d.i`, days, q.Org)
	if err != nil {
		return evidencequery.Coverage{}, fmt.Errorf("sqlite: evidence actors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			i int
			n int64
		)
		if err := rows.Scan(&i, &n); err != nil {
			return evidencequery.Coverage{}, fmt.Errorf("sqlite: evidence actors: %w", err)
		}
		if i >= 0 && i < len(out.Actors) {
			out.Actors[i] = n
		}
	}
	if err := rows.Err(); err != nil {
		return evidencequery.Coverage{}, fmt.Errorf("sqlite: evidence actors: %w", err)
	}
	return out, nil
}

// evidenceAlerts is the alerts of one DPIA first seen in a period, with the
// grouping columns; risks is the alert's risk list joined by commas.
const evidenceAlerts = `a AS (
	SELECT id, org, check_name AS chk,
		coalesce(json_extract(body, '$.pattern'), '') AS pat,
		coalesce(json_extract(body, '$.severity'), '') AS sev,
		coalesce((SELECT group_concat(r.value, ',') FROM json_each(body, '$.risks') r), '') AS risks,
		first_seen, last_seen, body
	FROM alerts WHERE json_extract(body, '$.dpia') = ? AND first_seen >= ? AND first_seen < ?
)`

func splitRisks(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// EvidenceAlerts counts the alerts of q by org, check, pattern, severity
// and risks.
func (s *Store) EvidenceAlerts(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.AlertGroup, error) {
	rows, err := s.r.QueryContext(ctx, `WITH `+evidenceAlerts+`
SELECT org, chk, pat, sev, risks, count(*) FROM a GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
		q.DPIA, timeKey(q.From), timeKey(q.To))
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence alerts: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.AlertGroup
	for rows.Next() {
		var (
			g     evidencequery.AlertGroup
			risks string
		)
		if err := rows.Scan(&g.Org, &g.Check, &g.Pattern, &g.Severity, &risks, &g.Alerts); err != nil {
			return nil, fmt.Errorf("sqlite: evidence alerts: %w", err)
		}
		g.Risks = splitRisks(risks)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: evidence alerts: %w", err)
	}
	return out, nil
}

// triageDecisions is every triage decision about the alerts in a: the
// alerting API's and Slack's (triages) and, when the web UI has created its
// table, the UI's (web_triage). latest ranks each alert's decisions, newest
// first; on a tie the alerting one wins.
func (s *Store) triageDecisions(ctx context.Context) (string, error) {
	var web int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'web_triage'`).Scan(&web); err != nil {
		return "", err
	}
	t := `SELECT alert_id, outcome, at, 1 AS src, seq FROM triages WHERE alert_id IN (SELECT id FROM a)`
	if web > 0 {
		t += ` UNION ALL SELECT alert_id, outcome, at, 0, 0 FROM web_triage WHERE alert_id IN (SELECT id FROM a)`
	}
	return `, t AS (` + t + `),
f AS (SELECT alert_id, min(at) AS first_at FROM t GROUP BY alert_id),
l AS (SELECT alert_id, outcome, at FROM (
	SELECT alert_id, outcome, at, row_number() OVER (PARTITION BY alert_id ORDER BY at DESC, src DESC, seq DESC) AS rn FROM t
) WHERE rn = 1)`, nil
}

// EvidenceTriage counts the alerts of q by latest outcome and time to first
// decision (from the alert's first event, in nanoseconds, never negative).
func (s *Store) EvidenceTriage(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.TriageGroup, error) {
	dec, err := s.triageDecisions(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence triage: %w", err)
	}
	const h = int64(time.Hour)
	rows, err := s.r.QueryContext(ctx, `WITH `+evidenceAlerts+dec+`,
x AS (SELECT a.org, a.chk, a.pat, a.sev, a.risks, a.first_seen, coalesce(l.outcome, '') AS outcome,
	CASE WHEN f.first_at IS NULL THEN NULL ELSE max(f.first_at - a.first_seen, 0) END AS d
	FROM a LEFT JOIN f ON f.alert_id = a.id LEFT JOIN l ON l.alert_id = a.id)
SELECT org, chk, pat, sev, risks, outcome, count(*),
	coalesce(sum(d <= ?), 0), coalesce(sum(d > ? AND d <= ?), 0), coalesce(sum(d > ? AND d <= ?), 0), coalesce(sum(d > ?), 0),
	coalesce(sum(d / 1000000000), 0), min(first_seen)
FROM x GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6`,
		q.DPIA, timeKey(q.From), timeKey(q.To), h, h, 24*h, 24*h, 7*24*h, 7*24*h)
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence triage: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.TriageGroup
	for rows.Next() {
		var (
			g        evidencequery.TriageGroup
			risks    string
			earliest int64
		)
		if err := rows.Scan(&g.Org, &g.Check, &g.Pattern, &g.Severity, &risks, &g.Outcome, &g.Alerts,
			&g.Buckets[evidencequery.BucketHour], &g.Buckets[evidencequery.BucketDay], &g.Buckets[evidencequery.BucketWeek], &g.Buckets[evidencequery.BucketLater],
			&g.Seconds, &earliest); err != nil {
			return nil, fmt.Errorf("sqlite: evidence triage: %w", err)
		}
		g.Risks, g.Earliest = splitRisks(risks), time.Unix(0, earliest).UTC()
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: evidence triage: %w", err)
	}
	return out, nil
}

// EvidenceConfirmed lists the alerts of q whose latest decision is
// confirmed misuse.
func (s *Store) EvidenceConfirmed(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.ConfirmedAlert, error) {
	dec, err := s.triageDecisions(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence confirmed: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `WITH `+evidenceAlerts+dec+`
SELECT a.id, a.org, a.chk, a.pat, a.sev, a.risks,
	coalesce(json_extract(a.body, '$.actor_id'), ''), coalesce(json_extract(a.body, '$.subject_id'), ''),
	a.first_seen, a.last_seen, coalesce(json_extract(a.body, '$.event_count'), 0), l.at
FROM a JOIN l ON l.alert_id = a.id WHERE l.outcome = ? ORDER BY a.first_seen, a.id`,
		q.DPIA, timeKey(q.From), timeKey(q.To), triage.ConfirmedMisuse)
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence confirmed: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.ConfirmedAlert
	for rows.Next() {
		var (
			c                   evidencequery.ConfirmedAlert
			risks               string
			first, last, decide int64
		)
		if err := rows.Scan(&c.ID, &c.Org, &c.Check, &c.Pattern, &c.Severity, &risks, &c.ActorID, &c.SubjectID,
			&first, &last, &c.Events, &decide); err != nil {
			return nil, fmt.Errorf("sqlite: evidence confirmed: %w", err)
		}
		c.Risks = splitRisks(risks)
		c.FirstSeen, c.LastSeen, c.DecidedAt = time.Unix(0, first).UTC(), time.Unix(0, last).UTC(), time.Unix(0, decide).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: evidence confirmed: %w", err)
	}
	return out, nil
}

// EvidenceActions lists the alerts of q whose latest decision records an
// action: the soonest due first (none last), then by first seen and id.
func (s *Store) EvidenceActions(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.ActionAlert, error) {
	rows, err := s.r.QueryContext(ctx, `WITH `+evidenceAlerts+`,
l AS (SELECT * FROM (
	SELECT alert_id, outcome, at, action_owner, action_due, action_status,
		row_number() OVER (PARTITION BY alert_id ORDER BY at DESC, seq DESC) AS rn
	FROM triages WHERE alert_id IN (SELECT id FROM a)
) WHERE rn = 1)
SELECT a.id, a.org, a.chk, a.pat, a.sev, a.risks, l.outcome, l.action_owner, l.action_due, l.action_status, a.first_seen, l.at
FROM a JOIN l ON l.alert_id = a.id WHERE l.action_owner != '' OR l.action_due != ''
ORDER BY l.action_due = '', l.action_due, a.first_seen, a.id`, q.DPIA, timeKey(q.From), timeKey(q.To))
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence actions: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.ActionAlert
	for rows.Next() {
		var (
			c             evidencequery.ActionAlert
			risks         string
			first, decide int64
		)
		if err := rows.Scan(&c.ID, &c.Org, &c.Check, &c.Pattern, &c.Severity, &risks, &c.Outcome, &c.Owner, &c.Due, &c.Status, &first, &decide); err != nil {
			return nil, fmt.Errorf("sqlite: evidence actions: %w", err)
		}
		c.Risks, c.FirstSeen, c.DecidedAt = splitRisks(risks), time.Unix(0, first).UTC(), time.Unix(0, decide).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: evidence actions: %w", err)
	}
	return out, nil
}

// EvidenceAudit appends e to the audit trail.
func (s *Store) EvidenceAudit(ctx context.Context, e audit.Entry) error {
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return insertAudit(ctx, tx, e) }); err != nil {
		return fmt.Errorf("sqlite: evidence audit: %w", err)
	}
	return nil
}
