package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// WebStore implements web.Store over ClickHouse. Triage decisions are
// store.Triages' (audit rows of kind 'triage'), so Slack, the API and the UI
// share them; the view log is web_views (migration 5).
type WebStore struct{ *Store }

// Web returns the web UI's view of s.
func (s *Store) Web() WebStore { return WebStore{s} }

// webAlerts is every alert (latest version) with the columns the UI filters
// on: its team — the one its worker's latest event up to the alert's
// last_seen names, found by one join on events restricted by primary key to
// the alerts' (org, actor) — and its latest triage.
func (s WebStore) webAlerts() string {
	db := s.db
	return `WITH latest AS (
	SELECT id, argMax(org, version) AS a_org, max(version) AS a_version, argMax(body, version) AS a_body,
		argMax(check_name, version) AS a_check, argMax(severity, version) AS a_sev, argMax(actor, version) AS a_actor,
		argMax(dpia, version) AS a_dpia, argMax(first_seen, version) AS a_first, argMax(last_seen, version) AS a_last
	FROM ` + db + `.alerts GROUP BY id
), teams AS (
	SELECT l.id AS tid, argMax(e.actor_team, e.t) AS team
	FROM ` + s.events + ` AS e INNER JOIN latest AS l ON e.org = l.a_org AND e.actor = l.a_actor
	WHERE (e.org, e.actor) IN (SELECT a_org, a_actor FROM latest) AND e.t <= l.a_last
	GROUP BY l.id
), tri AS (
	SELECT object AS alert_id, argMax(outcome, seq) AS t_outcome, argMax(actor, seq) AS t_by, argMax(at, seq) AS t_at, argMax(note, seq) AS t_note, argMax(source, seq) AS t_source,
		argMax(action_owner, seq) AS t_owner, argMax(action_due, seq) AS t_due, argMax(toString(action_status), seq) AS t_status
	FROM ` + db + `.audit FINAL WHERE kind = 'triage' GROUP BY object
), x AS (
	SELECT l.id AS id, l.a_org AS org, l.a_version AS version, l.a_body AS body, l.a_check AS check_name, l.a_sev AS severity,
		l.a_actor AS actor, l.a_dpia AS dpia, l.a_first AS first_seen, l.a_last AS last_seen,
		toString(tm.team) AS team, tr.t_outcome AS outcome, tr.t_by AS by_user, tr.t_at AS triaged_at, tr.t_note AS note, tr.t_source AS triage_source,
		tr.t_owner AS action_owner, tr.t_due AS action_due, tr.t_status AS action_status,
		JSONExtract(l.a_body, 'risks', 'Array(String)') AS risks
	FROM latest AS l LEFT JOIN teams AS tm ON tm.tid = l.id LEFT JOIN tri AS tr ON tr.alert_id = l.id
)`
}

const webSettings = ` SETTINGS join_use_nulls = 0`

func inList(p *params, col string, vals []string, where []string) []string {
	if vals == nil {
		return where
	}
	if len(vals) == 0 {
		return append(where, "0")
	}
	return append(where, col+" IN "+p.strs(vals))
}

// webWhere is q's scope and filters over x.
func webWhere(p *params, q alertview.AlertQuery) []string {
	var where []string
	where = inList(p, "x.org", q.Orgs, where)
	where = inList(p, "x.team", q.Teams, where)
	for _, f := range []struct{ col, val string }{
		{"x.org", q.Org}, {"x.team", q.Team}, {"x.check_name", q.Check}, {"x.severity", string(q.Severity)}, {"x.actor", q.ActorID},
		{"x.dpia", q.DPIA},
	} {
		if f.val != "" {
			where = append(where, f.col+" = "+p.str(f.val))
		}
	}
	if q.Risk != "" {
		where = append(where, "has(x.risks, "+p.str(q.Risk)+")")
	}
	switch q.Status {
	case "":
	case alertview.StatusOpen:
		where = append(where, "x.outcome = ''")
	case alertview.StatusTriaged:
		where = append(where, "x.outcome != ''")
	default:
		where = append(where, "x.outcome = "+p.str(q.Status))
	}
	return where
}

// severityRank orders severities as alert.Severities does (unknown lowest).
var severityRank = func() string {
	var b strings.Builder
	b.WriteString("indexOf([")
	for i, sv := range alert.Severities {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "'%s'", sv)
	}
	b.WriteString("], x.severity)")
	return b.String()
}()

// WebAlerts returns one page of the alerts matching q in q.Order.
func (s WebStore) WebAlerts(ctx context.Context, q alertview.AlertQuery) ([]alertview.AlertRow, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 500
	}
	order := ` ORDER BY x.last_seen DESC, x.id`
	if q.Order == alertview.OrderWork {
		order = ` ORDER BY ` + severityRank + ` DESC, x.first_seen, x.id`
	}
	var p params
	where := whereClause(webWhere(&p, q))
	return s.webRows(ctx, s.webAlerts()+` SELECT x.version, x.body, x.team, x.outcome, x.by_user, x.triaged_at, x.note, x.triage_source, x.action_owner, x.action_due, x.action_status FROM x`+
		where+order+` LIMIT `+p.int(int64(limit))+` OFFSET `+p.int(int64(max(q.Offset, 0)))+webSettings, p.list()...)
}

// WebStatusCounts counts the alerts matching q (its Status aside) per status.
func (s WebStore) WebStatusCounts(ctx context.Context, q alertview.AlertQuery) ([]alertview.StatusCount, error) {
	q.Status = ""
	var p params
	open := p.str(alertview.StatusOpen)
	rows, err := s.conn.Query(ctx, s.webAlerts()+` SELECT if(x.outcome = '', `+open+`, x.outcome) AS st, toInt64(count()) FROM x`+
		whereClause(webWhere(&p, q))+` GROUP BY st ORDER BY st`+webSettings, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: web status counts: %w", err)
	}
	defer rows.Close()
	var out []alertview.StatusCount
	for rows.Next() {
		var (
			c alertview.StatusCount
			n int64
		)
		if err := rows.Scan(&c.Status, &n); err != nil {
			return nil, fmt.Errorf("clickhouse: web status counts: %w", err)
		}
		c.Count = int(n)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: web status counts: %w", err)
	}
	return out, nil
}

// WebAlert returns one alert with its team and triage.
func (s WebStore) WebAlert(ctx context.Context, id string) (alertview.AlertRow, error) {
	var p params
	rows, err := s.webRows(ctx, s.webAlerts()+` SELECT x.version, x.body, x.team, x.outcome, x.by_user, x.triaged_at, x.note, x.triage_source, x.action_owner, x.action_due, x.action_status FROM x WHERE x.id = `+
		p.str(id)+webSettings, p.list()...)
	if err != nil {
		return alertview.AlertRow{}, err
	}
	if len(rows) == 0 {
		return alertview.AlertRow{}, fmt.Errorf("clickhouse: alert %s: %w", id, store.ErrNotFound)
	}
	return rows[0], nil
}

func (s WebStore) webRows(ctx context.Context, q string, args ...any) ([]alertview.AlertRow, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: web alerts: %w", err)
	}
	defer rows.Close()
	var out []alertview.AlertRow
	for rows.Next() {
		var (
			version                    uint64
			body, team, outcome, by, n string
			source                     string
			at                         time.Time
			act                        triage.Action
		)
		if err := rows.Scan(&version, &body, &team, &outcome, &by, &at, &n, &source, &act.Owner, &act.Due, &act.Status); err != nil {
			return nil, fmt.Errorf("clickhouse: web alerts: %w", err)
		}
		var a alert.Alert
		if err := storedjson.Unmarshal([]byte(body), &a); err != nil {
			return nil, fmt.Errorf("clickhouse: decode stored alert: %w", err)
		}
		a.Version = int64(version)
		r := alertview.AlertRow{Alert: a, Team: team}
		if outcome != "" {
			r.Triage = &alertview.Triage{AlertID: a.ID, Outcome: outcome, By: by, At: at.UTC(), Note: n, Source: source}
			if !act.IsZero() {
				r.Triage.Action = &act
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: web alerts: %w", err)
	}
	return out, nil
}

// WebAlertCounts counts alerts in q's scope by org, DPIA, check, risk and
// team; an alert evidencing two risks counts under each.
func (s WebStore) WebAlertCounts(ctx context.Context, q alertview.AlertQuery) ([]alertview.AlertCount, error) {
	var p params
	rows, err := s.conn.Query(ctx, s.webAlerts()+` SELECT x.org, x.dpia, x.check_name, risk, x.team,
	toInt64(countIf(x.outcome = '')), toInt64(countIf(x.outcome != '')), max(x.last_seen)
FROM x ARRAY JOIN x.risks AS risk`+whereClause(webWhere(&p, q))+`
GROUP BY x.org, x.dpia, x.check_name, risk, x.team ORDER BY 1, 2, 4, 3, 5`+webSettings, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: web alert counts: %w", err)
	}
	defer rows.Close()
	var out []alertview.AlertCount
	for rows.Next() {
		var (
			c             alertview.AlertCount
			open, triaged int64
		)
		if err := rows.Scan(&c.Org, &c.DPIA, &c.Check, &c.Risk, &c.Team, &open, &triaged, &c.LastSeen); err != nil {
			return nil, fmt.Errorf("clickhouse: web alert counts: %w", err)
		}
		c.Open, c.Triaged, c.LastSeen = int(open), int(triaged), c.LastSeen.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: web alert counts: %w", err)
	}
	return out, nil
}

// WebAlertTrend counts the alerts in q's scope first seen in [from, to) per
// org, risk and UTC day.
func (s WebStore) WebAlertTrend(ctx context.Context, q alertview.AlertQuery, from, to time.Time) ([]alertview.TrendCount, error) {
	var p params
	where := append(webWhere(&p, q), "x.first_seen >= "+p.time(from), "x.first_seen < "+p.time(to))
	rows, err := s.conn.Query(ctx, s.webAlerts()+` SELECT x.org, risk, toStartOfDay(x.first_seen, 'UTC') AS d, toInt64(count())
FROM x ARRAY JOIN x.risks AS risk`+whereClause(where)+` GROUP BY x.org, risk, d ORDER BY 1, 2, 3`+webSettings, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: web alert trend: %w", err)
	}
	defer rows.Close()
	var out []alertview.TrendCount
	for rows.Next() {
		var (
			c alertview.TrendCount
			n int64
		)
		if err := rows.Scan(&c.Org, &c.Risk, &c.Day, &n); err != nil {
			return nil, fmt.Errorf("clickhouse: web alert trend: %w", err)
		}
		c.Count, c.Day = int(n), c.Day.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: web alert trend: %w", err)
	}
	return out, nil
}

// WebHourlyActivity counts events per UTC hour for one actor, one team or
// the whole org from the hourly rollup (dashboards' numbers: a rare
// re-insert under another token counts twice there).
func (s WebStore) WebHourlyActivity(ctx context.Context, q alertview.ActivityQuery) ([]alertview.HourCount, int, error) {
	if q.ActorID != "" && q.Team != "" {
		return nil, 0, errors.New("clickhouse: web activity: give an actor or a team, not both")
	}
	var p params
	where := []string{"org = " + p.str(q.Org), "hour >= toStartOfHour(" + p.time(q.From) + ")", "hour < " + p.time(q.To)}
	if q.ActorID != "" {
		where = append(where, "actor = "+p.str(q.ActorID))
	} else if q.Team != "" {
		where = append(where, "actor_team = "+p.str(q.Team))
	}
	rows, err := s.conn.Query(ctx, `SELECT hour, toInt64(sum(events)) FROM `+s.db+`.events_hourly`+whereClause(where)+` GROUP BY hour ORDER BY hour`, p.list()...)
	if err != nil {
		return nil, 0, fmt.Errorf("clickhouse: web activity: %w", err)
	}
	defer rows.Close()
	var out []alertview.HourCount
	for rows.Next() {
		var (
			h time.Time
			n int64
		)
		if err := rows.Scan(&h, &n); err != nil {
			return nil, 0, fmt.Errorf("clickhouse: web activity: %w", err)
		}
		out = append(out, alertview.HourCount{Hour: h.UTC(), Count: int(n)})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("clickhouse: web activity: %w", err)
	}
	var actors uint64
	if err := s.conn.QueryRow(ctx, `SELECT uniqExact(actor) FROM `+s.db+`.events_hourly`+whereClause(where), p.list()...).Scan(&actors); err != nil {
		return nil, 0, fmt.Errorf("clickhouse: web activity: %w", err)
	}
	return out, int(actors), nil
}

// WebActorTeam returns the team of the actor's most recent event in org.
func (s WebStore) WebActorTeam(ctx context.Context, org, actorID string) (string, error) {
	var team string
	var p params
	if err := s.conn.QueryRow(ctx, `SELECT toString(argMax(actor_team, t)) FROM `+s.events+` WHERE org = `+p.str(org)+
		` AND actor = `+p.str(actorID), p.list()...).Scan(&team); err != nil {
		return "", fmt.Errorf("clickhouse: web actor team: %w", err)
	}
	return team, nil
}

// WebFeeds reports, per org and system with events since since, the
// newest event time and the events since recent.
func (s WebStore) WebFeeds(ctx context.Context, orgs []string, since, recent time.Time) ([]alertview.Feed, error) {
	var p params
	where := inList(&p, "org", orgs, []string{"t >= " + p.time(since)})
	rows, err := s.conn.Query(ctx, `SELECT toString(org), toString(system), max(t), toInt64(countIf(t >= `+p.time(recent)+`)) FROM `+
		s.events+` FINAL`+whereClause(where)+` GROUP BY org, system ORDER BY 1, 2`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: web feeds: %w", err)
	}
	defer rows.Close()
	var out []alertview.Feed
	for rows.Next() {
		var (
			f alertview.Feed
			n int64
		)
		if err := rows.Scan(&f.Org, &f.System, &f.LastEvent, &n); err != nil {
			return nil, fmt.Errorf("clickhouse: web feeds: %w", err)
		}
		f.Recent, f.LastEvent = int(n), f.LastEvent.UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: web feeds: %w", err)
	}
	return out, nil
}

// WebRecordView appends v to the view log.
func (s WebStore) WebRecordView(ctx context.Context, v viewlog.View) error {
	if err := s.insertRow(ctx, `INSERT INTO `+s.db+`.web_views (at, user, role, kind, org, target, row_count)`, "",
		clampTime(v.At), v.User, v.Role, v.Kind, v.Org, v.Target, uint32(max(v.Rows, 0))); err != nil {
		return fmt.Errorf("clickhouse: web record view: %w", err)
	}
	return nil
}

// WebViews returns the latest views, newest first.
func (s WebStore) WebViews(ctx context.Context, limit int) ([]viewlog.View, error) {
	var p params
	q := `SELECT at, user, toString(role), toString(kind), toString(org), target, toInt64(row_count) FROM ` + s.db + `.web_views ORDER BY at DESC`
	if limit > 0 {
		q += ` LIMIT ` + p.int(int64(limit))
	}
	rows, err := s.conn.Query(ctx, q, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: web views: %w", err)
	}
	defer rows.Close()
	var out []viewlog.View
	for rows.Next() {
		var (
			v viewlog.View
			n int64
		)
		if err := rows.Scan(&v.At, &v.User, &v.Role, &v.Kind, &v.Org, &v.Target, &n); err != nil {
			return nil, fmt.Errorf("clickhouse: web views: %w", err)
		}
		v.At, v.Rows = v.At.UTC(), int(n)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: web views: %w", err)
	}
	return out, nil
}
