package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/triage"
)

// The ClickHouse store answers the evidence aggregates with grouped queries
// over events, the latest alert versions and the audit table's triages: a
// county's quarter (tens of millions of events) is one scan of the
// period's partitions, and nothing but counts leaves the server (plus the
// confirmed-misuse alerts, few by nature). It records no routine audits.

// EvidenceCoverage counts q.Org's events per local day and system, late
// events among them (stored more than q.LateAfter after their event time),
// and distinct actors per day. Days are bucketed by ClickHouse in
// q.Location; its time-zone data must agree with Go's on the bounds.
//
// It is one scan: GROUPING SETS give the rows per day and system and the
// rows per day (grouping(system) = 1) with its distinct actors from the
// same read. FINAL makes the scan read the whole sorting key, ids
// included, to fold duplicates; over a county's quarter on chDB that was
// 3 × the plain scan, and two such scans (counts, then actors) were the
// export's whole cost (docs/evidence.md).
func (s *Store) EvidenceCoverage(ctx context.Context, q evidencequery.CoverageQuery) (evidencequery.Coverage, error) {
	n := len(q.Days) - 1
	if n < 1 || q.Location == nil {
		return evidencequery.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: need day bounds and a location")
	}
	var p params
	day := `dateDiff('day', toDate(` + p.str(q.Days[0].In(q.Location).Format("2006-01-02")) + `), toDate(t, ` + p.str(q.Location.String()) + `))`
	where := ` WHERE org = ` + p.str(q.Org) + ` AND t >= ` + p.time(q.Days[0]) + ` AND t < ` + p.time(q.Days[n])
	late := `toUInt64(0)`
	if q.LateAfter > 0 {
		late = `countIf(dateDiff('second', t, inserted_at) > ` + p.int(int64(q.LateAfter.Seconds())) + `)`
	}
	out := evidencequery.Coverage{Actors: make([]int64, n), LateRecorded: q.LateAfter > 0}

	start := time.Now()
	rows, err := s.conn.Query(ctx, `SELECT `+day+` AS day_index, system, grouping(system) AS whole_day, count(), `+late+`,
	if(whole_day = 1, uniqExact(actor), 0) FROM `+s.events+` FINAL`+where+`
GROUP BY GROUPING SETS ((day_index, system), (day_index)) ORDER BY day_index, whole_day, system`, p.list()...)
	if err != nil {
		return evidencequery.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			i                     int64
			sys                   string
			wholeDay              uint64
			events, lateN, actors uint64
		)
		if err := rows.Scan(&i, &sys, &wholeDay, &events, &lateN, &actors); err != nil {
			return evidencequery.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: %w", err)
		}
		if i < 0 || i >= int64(n) {
			continue // outside the bounds: a zone disagreement at an edge
		}
		if wholeDay != 0 {
			out.Actors[i] = int64(actors)
			continue
		}
		out.Days = append(out.Days, evidencequery.DayCount{Day: int(i), System: sys, Events: int64(events), Late: int64(lateN)})
	}
	if err := rows.Err(); err != nil {
		return evidencequery.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: %w", err)
	}
	s.logQuery("coverage", start, len(out.Days), q.Days[0], q.Days[n])
	return out, nil
}

// logQuery logs an evidence query's time at debug level (`--log-level
// debug`): over a county's year these are the export's cost.
func (s *Store) logQuery(name string, start time.Time, rows int, from, to time.Time) {
	s.log.Debug("evidence query", "query", name, "from", from, "to", to, "rows", rows, "elapsed", time.Since(start).Round(time.Millisecond))
}

// evidenceAlerts is the latest version of each alert of q, one row per id
// with the grouping columns; e_risks is the alert's risk list joined by
// commas. Aliases differ from column names: inside argMax ClickHouse would
// otherwise read an alias rather than the column.
func (s *Store) evidenceAlerts(p *params, q evidencequery.AlertQuery) string {
	return `SELECT id, e_org, e_check, e_pattern, e_severity, e_risks, e_first, e_last, e_actor, e_subject, e_events FROM (
	SELECT id, any(org) AS e_org, argMax(check_name, version) AS e_check, argMax(pattern, version) AS e_pattern,
		argMax(severity, version) AS e_severity, argMax(dpia, version) AS e_dpia, argMax(first_seen, version) AS e_first,
		argMax(last_seen, version) AS e_last, argMax(body, version) AS e_body,
		arrayStringConcat(JSONExtract(e_body, 'risks', 'Array(String)'), ',') AS e_risks,
		JSONExtractString(e_body, 'actor_id') AS e_actor, JSONExtractString(e_body, 'subject_id') AS e_subject,
		JSONExtractInt(e_body, 'event_count') AS e_events
	FROM ` + s.db + `.alerts GROUP BY id
) WHERE e_dpia = ` + p.str(q.DPIA) + ` AND e_first >= ` + p.time(q.From) + ` AND e_first < ` + p.time(q.To)
}

// evidenceTriages is each triaged alert's latest outcome (newest decision
// time, then the later write, as the embedded store orders them), when that
// decision was made, and when its first decision was made. Only the alerts
// named by the CTE a are read.
func (s *Store) evidenceTriages() string {
	return `SELECT object AS t_alert, argMax(outcome, (at, seq)) AS t_outcome, min(at) AS t_first, max(at) AS t_decided
	FROM ` + s.db + `.audit FINAL WHERE kind = 'triage' AND object IN (SELECT id FROM a) GROUP BY object`
}

// EvidenceAlerts counts the latest versions of the alerts of q by org,
// check, pattern, severity and risks.
func (s *Store) EvidenceAlerts(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.AlertGroup, error) {
	var p params
	start := time.Now()
	rows, err := s.conn.Query(ctx, `SELECT e_org, e_check, e_pattern, e_severity, e_risks, count() FROM (`+s.evidenceAlerts(&p, q)+`)
GROUP BY e_org, e_check, e_pattern, e_severity, e_risks ORDER BY e_org, e_check, e_pattern, e_severity, e_risks`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: evidence alerts: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.AlertGroup
	for rows.Next() {
		var (
			g     evidencequery.AlertGroup
			risks string
			n     uint64
		)
		if err := rows.Scan(&g.Org, &g.Check, &g.Pattern, &g.Severity, &risks, &n); err != nil {
			return nil, fmt.Errorf("clickhouse: evidence alerts: %w", err)
		}
		g.Risks = splitRisks(risks)
		g.Alerts = int64(n)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: evidence alerts: %w", err)
	}
	s.logQuery("alerts", start, len(out), q.From, q.To)
	return out, nil
}

func splitRisks(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// EvidenceTriage counts the alerts of q by latest outcome and by time from
// the alert's first event to its first decision (never negative), as the
// embedded store does: whole seconds summed per alert, truncated.
func (s *Store) EvidenceTriage(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.TriageGroup, error) {
	const h = int64(time.Hour)
	d := func(lo, hi int64) string {
		c := `t_alert != ''`
		if lo >= 0 {
			c += ` AND d > ` + strconv.FormatInt(lo, 10)
		}
		if hi >= 0 {
			c += ` AND d <= ` + strconv.FormatInt(hi, 10)
		}
		return `countIf(` + c + `)`
	}
	// Unmatched rows of the LEFT JOIN get an empty alert id and outcome
	// (column defaults, or NULLs under join_use_nulls): "untriaged".
	var p params
	start := time.Now()
	rows, err := s.conn.Query(ctx, `WITH a AS (`+s.evidenceAlerts(&p, q)+`)
SELECT e_org, e_check, e_pattern, e_severity, e_risks, t_outcome, count(),
	`+d(-1, h)+`, `+d(h, 24*h)+`, `+d(24*h, 7*24*h)+`, `+d(7*24*h, -1)+`,
	sumIf(intDiv(d, 1000000000), t_alert != ''), min(e_first)
FROM (
	SELECT a.e_org AS e_org, a.e_check AS e_check, a.e_pattern AS e_pattern, a.e_severity AS e_severity, a.e_risks AS e_risks, a.e_first AS e_first,
		ifNull(t.t_alert, '') AS t_alert, ifNull(t.t_outcome, '') AS t_outcome,
		greatest(toUnixTimestamp64Nano(t.t_first) - toUnixTimestamp64Nano(a.e_first), 0) AS d
	FROM a LEFT JOIN (`+s.evidenceTriages()+`) AS t ON t.t_alert = a.id
)
GROUP BY e_org, e_check, e_pattern, e_severity, e_risks, t_outcome ORDER BY e_org, e_check, e_pattern, e_severity, e_risks, t_outcome`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: evidence triage: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.TriageGroup
	for rows.Next() {
		var (
			g                 evidencequery.TriageGroup
			risks             string
			n, b0, b1, b2, b3 uint64
			seconds           int64
		)
		if err := rows.Scan(&g.Org, &g.Check, &g.Pattern, &g.Severity, &risks, &g.Outcome, &n, &b0, &b1, &b2, &b3, &seconds, &g.Earliest); err != nil {
			return nil, fmt.Errorf("clickhouse: evidence triage: %w", err)
		}
		g.Risks, g.Earliest = splitRisks(risks), g.Earliest.UTC()
		g.Alerts, g.Seconds = int64(n), seconds
		g.Buckets = [4]int64{int64(b0), int64(b1), int64(b2), int64(b3)}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: evidence triage: %w", err)
	}
	s.logQuery("triage", start, len(out), q.From, q.To)
	return out, nil
}

// EvidenceConfirmed lists the alerts of q whose latest decision is
// confirmed misuse, by first seen then id.
func (s *Store) EvidenceConfirmed(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.ConfirmedAlert, error) {
	var p params
	start := time.Now()
	rows, err := s.conn.Query(ctx, `WITH a AS (`+s.evidenceAlerts(&p, q)+`)
SELECT a.id, a.e_org, a.e_check, a.e_pattern, a.e_severity, a.e_risks, a.e_actor, a.e_subject, a.e_first, a.e_last, a.e_events, t.t_decided
FROM a INNER JOIN (`+s.evidenceTriages()+`) AS t ON t.t_alert = a.id
WHERE t.t_outcome = `+p.str(triage.ConfirmedMisuse)+` ORDER BY a.e_first, a.id`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: evidence confirmed: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.ConfirmedAlert
	for rows.Next() {
		var (
			c     evidencequery.ConfirmedAlert
			risks string
		)
		if err := rows.Scan(&c.ID, &c.Org, &c.Check, &c.Pattern, &c.Severity, &risks, &c.ActorID, &c.SubjectID,
			&c.FirstSeen, &c.LastSeen, &c.Events, &c.DecidedAt); err != nil {
			return nil, fmt.Errorf("clickhouse: evidence confirmed: %w", err)
		}
		c.Risks = splitRisks(risks)
		c.FirstSeen, c.LastSeen, c.DecidedAt = c.FirstSeen.UTC(), c.LastSeen.UTC(), c.DecidedAt.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: evidence confirmed: %w", err)
	}
	s.logQuery("confirmed", start, len(out), q.From, q.To)
	return out, nil
}

// EvidenceActions lists the alerts of q whose latest decision (newest
// decision time, then the later write, as the embedded store orders them)
// records an action: the soonest due first (none last), then by first
// seen and id.
func (s *Store) EvidenceActions(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.ActionAlert, error) {
	var p params
	rows, err := s.conn.Query(ctx, `WITH a AS (`+s.evidenceAlerts(&p, q)+`)
SELECT a.id, a.e_org, a.e_check, a.e_pattern, a.e_severity, a.e_risks, t.t_outcome, t.t_owner, t.t_due, t.t_status, a.e_first, t.t_decided
FROM a INNER JOIN (
	SELECT object AS t_alert, argMax(outcome, (at, seq)) AS t_outcome, argMax(action_owner, (at, seq)) AS t_owner,
		argMax(action_due, (at, seq)) AS t_due, argMax(toString(action_status), (at, seq)) AS t_status, max(at) AS t_decided
	FROM `+s.db+`.audit FINAL WHERE kind = 'triage' AND object IN (SELECT id FROM a) GROUP BY object
) AS t ON t.t_alert = a.id
WHERE t.t_owner != '' OR t.t_due != ''
ORDER BY t.t_due = '', t.t_due, a.e_first, a.id`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: evidence actions: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.ActionAlert
	for rows.Next() {
		var (
			c     evidencequery.ActionAlert
			risks string
		)
		if err := rows.Scan(&c.ID, &c.Org, &c.Check, &c.Pattern, &c.Severity, &risks, &c.Outcome, &c.Owner, &c.Due, &c.Status, &c.FirstSeen, &c.DecidedAt); err != nil {
			return nil, fmt.Errorf("clickhouse: evidence actions: %w", err)
		}
		c.Risks, c.FirstSeen, c.DecidedAt = splitRisks(risks), c.FirstSeen.UTC(), c.DecidedAt.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: evidence actions: %w", err)
	}
	return out, nil
}

// EvidenceAudit appends e to the audit trail as a plain entry. Its row is
// one insert, so it lands whole; the seq is its deduplication token.
func (s *Store) EvidenceAudit(ctx context.Context, e audit.Entry) error {
	if err := s.insertAudit(ctx, auditRow{seq: s.nextSeq(), e: e, kind: "audit"}); err != nil {
		return fmt.Errorf("clickhouse: evidence audit: %w", err)
	}
	return nil
}
