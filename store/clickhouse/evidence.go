package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/dpiawatch/dpiawatch/evidence"
)

// The ClickHouse store answers the evidence aggregates with grouped queries
// over events and the latest alert versions: a county's quarter (tens of
// millions of events) is two scans of the period's partitions, and nothing
// but counts leaves the server. It keeps no triage decisions, routine
// audits or audit trail yet, so it offers evidence.Source only.
var _ evidence.Source = (*Store)(nil)

// EvidenceCoverage counts q.Org's events per local day and system, late
// events among them (stored more than q.LateAfter after their event time),
// and distinct actors per day. Days are bucketed by ClickHouse in
// q.Location; its time-zone data must agree with Go's on the bounds.
func (s *Store) EvidenceCoverage(ctx context.Context, q evidence.CoverageQuery) (evidence.Coverage, error) {
	n := len(q.Days) - 1
	if n < 1 || q.Location == nil {
		return evidence.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: need day bounds and a location")
	}
	tz := quote(q.Location.String())
	day := `dateDiff('day', toDate(` + quote(q.Days[0].In(q.Location).Format("2006-01-02")) + `), toDate(t, ` + tz + `))`
	where := ` WHERE org = ` + quote(q.Org) + ` AND t >= ` + timeLit(clampTime(q.Days[0])) + ` AND t < ` + timeLit(clampTime(q.Days[n]))
	late := `toUInt64(0)`
	if q.LateAfter > 0 {
		late = `countIf(dateDiff('second', t, inserted_at) > ` + strconv.FormatInt(int64(q.LateAfter.Seconds()), 10) + `)`
	}
	out := evidence.Coverage{Actors: make([]int64, n), LateRecorded: q.LateAfter > 0}

	rows, err := s.conn.Query(ctx, `SELECT `+day+` AS day_index, system, count(), `+late+` FROM `+s.events+` FINAL`+where+
		` GROUP BY day_index, system ORDER BY day_index, system`)
	if err != nil {
		return evidence.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: %w", err)
	}
	for rows.Next() {
		var (
			i             int64
			sys           string
			events, lateN uint64
		)
		if err := rows.Scan(&i, &sys, &events, &lateN); err != nil {
			rows.Close()
			return evidence.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: %w", err)
		}
		if i < 0 || i >= int64(n) {
			continue // outside the bounds: a zone disagreement at an edge
		}
		out.Days = append(out.Days, evidence.DayCount{Day: int(i), System: sys, Events: int64(events), Late: int64(lateN)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return evidence.Coverage{}, fmt.Errorf("clickhouse: evidence coverage: %w", err)
	}

	rows, err = s.conn.Query(ctx, `SELECT `+day+` AS day_index, uniqExact(actor) FROM `+s.events+` FINAL`+where+` GROUP BY day_index`)
	if err != nil {
		return evidence.Coverage{}, fmt.Errorf("clickhouse: evidence actors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			i int64
			a uint64
		)
		if err := rows.Scan(&i, &a); err != nil {
			return evidence.Coverage{}, fmt.Errorf("clickhouse: evidence actors: %w", err)
		}
		if i >= 0 && i < int64(n) {
			out.Actors[i] = int64(a)
		}
	}
	if err := rows.Err(); err != nil {
		return evidence.Coverage{}, fmt.Errorf("clickhouse: evidence actors: %w", err)
	}
	return out, nil
}

// EvidenceAlerts counts the latest versions of the alerts of q by org,
// check, pattern, severity and risks.
func (s *Store) EvidenceAlerts(ctx context.Context, q evidence.AlertQuery) ([]evidence.AlertGroup, error) {
	// Aliases differ from column names: inside argMax ClickHouse would
	// otherwise read an alias rather than the column.
	rows, err := s.conn.Query(ctx, `SELECT e_org, e_check, e_pattern, e_severity, e_risks, count() FROM (
	SELECT id, any(org) AS e_org, argMax(check_name, version) AS e_check, argMax(pattern, version) AS e_pattern,
		argMax(severity, version) AS e_severity, argMax(dpia, version) AS e_dpia, argMax(first_seen, version) AS e_first,
		arrayStringConcat(JSONExtract(argMax(body, version), 'risks', 'Array(String)'), ',') AS e_risks
	FROM `+s.db+`.alerts GROUP BY id
) WHERE e_dpia = `+quote(q.DPIA)+` AND e_first >= `+timeLit(clampTime(q.From))+` AND e_first < `+timeLit(clampTime(q.To))+`
GROUP BY e_org, e_check, e_pattern, e_severity, e_risks ORDER BY e_org, e_check, e_pattern, e_severity, e_risks`)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: evidence alerts: %w", err)
	}
	defer rows.Close()
	var out []evidence.AlertGroup
	for rows.Next() {
		var (
			g     evidence.AlertGroup
			risks string
			n     uint64
		)
		if err := rows.Scan(&g.Org, &g.Check, &g.Pattern, &g.Severity, &risks, &n); err != nil {
			return nil, fmt.Errorf("clickhouse: evidence alerts: %w", err)
		}
		if risks != "" {
			g.Risks = strings.Split(risks, ",")
		}
		g.Alerts = int64(n)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: evidence alerts: %w", err)
	}
	return out, nil
}
