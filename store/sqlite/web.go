package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// WebStore implements web.Store over the embedded store. Its tables
// (web_views; triages are store.Triages'; routine audits) come from the
// numbered migrations.
type WebStore struct{ *Store }

// Web returns the web UI's view of s.
func (s *Store) Web(context.Context) (WebStore, error) { return WebStore{s}, nil }

// webAlerts is every alert with the columns the UI filters on. The team is
// the one the actor's latest event up to the alert's last_seen names (one
// seek on events_org_actor_t per alert): alerts do not carry a team, and a
// worker who moved team keeps the alerts of their old one there.
const webAlerts = `WITH latest_triage AS (
	-- SQLite takes the bare columns from the row holding max(seq): the
	-- newest decision, from Slack, the API or the UI alike.
	SELECT alert_id, outcome, actor, at, note, source, action_owner, action_due, action_status, max(seq) FROM triages GROUP BY alert_id
), x AS (
	SELECT a.id, a.org, a.check_name, a.first_seen, a.last_seen, a.version, a.body,
		json_extract(a.body, '$.actor_id') AS actor,
		json_extract(a.body, '$.severity') AS severity,
		coalesce(json_extract(a.body, '$.dpia'), '') AS dpia,
		coalesce((SELECT json_extract(e.detail, '$.m') FROM events e
			WHERE e.org = a.org AND e.actor = json_extract(a.body, '$.actor_id') AND e.t <= a.last_seen
			ORDER BY e.t DESC LIMIT 1), '') AS team,
		t.outcome, t.actor AS by_user, t.at, t.note, t.source AS triage_source,
		t.action_owner, t.action_due, t.action_status
	FROM alerts a LEFT JOIN latest_triage t ON t.alert_id = a.id
)`

func inList(col string, vals []string, where []string, args []any) ([]string, []any) {
	if vals == nil {
		return where, args
	}
	if len(vals) == 0 {
		return append(where, "0"), args
	}
	where = append(where, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
	for _, v := range vals {
		args = append(args, v)
	}
	return where, args
}

// webWhere is the WHERE clause of q over x: the scope, then the filters.
func webWhere(q alertview.AlertQuery) (string, []any) {
	var (
		where []string
		args  []any
	)
	where, args = inList("x.org", q.Orgs, where, args)
	where, args = inList("x.team", q.Teams, where, args)
	for _, f := range []struct{ col, val string }{
		{"x.org", q.Org}, {"x.team", q.Team}, {"x.check_name", q.Check},
		{"x.severity", string(q.Severity)}, {"x.actor", q.ActorID}, {"x.dpia", q.DPIA},
	} {
		if f.val != "" {
			where, args = append(where, f.col+" = ?"), append(args, f.val)
		}
	}
	if q.Risk != "" {
		where, args = append(where, "EXISTS (SELECT 1 FROM json_each(x.body, '$.risks') r WHERE r.value = ?)"), append(args, q.Risk)
	}
	switch q.Status {
	case "":
	case alertview.StatusOpen:
		where = append(where, "x.outcome IS NULL")
	case alertview.StatusTriaged:
		where = append(where, "x.outcome IS NOT NULL")
	default:
		where, args = append(where, "x.outcome = ?"), append(args, q.Status)
	}
	return whereClause(where), args
}

// severityRank orders severities as alert.Severities does (unknown lowest).
var severityRank = func() string {
	var b strings.Builder
	b.WriteString("CASE x.severity")
	for i, sv := range alert.Severities {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", sv, i)
	}
	b.WriteString(" ELSE -1 END")
	return b.String()
}()

// WebAlerts returns one page of the alerts matching q in q.Order.
func (s WebStore) WebAlerts(ctx context.Context, q alertview.AlertQuery) ([]alertview.AlertRow, error) {
	where, args := webWhere(q)
	limit := q.Limit
	if limit <= 0 {
		limit = 500
	}
	order := ` ORDER BY x.last_seen DESC, x.id`
	if q.Order == alertview.OrderWork {
		order = ` ORDER BY ` + severityRank + ` DESC, x.first_seen, x.id`
	}
	return s.webRows(ctx, webAlerts+` SELECT x.version, x.body, x.team, x.outcome, x.by_user, x.at, x.note, x.triage_source, x.action_owner, x.action_due, x.action_status FROM x`+where+
		order+` LIMIT ? OFFSET ?`, append(args, limit, max(q.Offset, 0))...)
}

// WebStatusCounts counts the alerts matching q (its Status aside) per status.
func (s WebStore) WebStatusCounts(ctx context.Context, q alertview.AlertQuery) ([]alertview.StatusCount, error) {
	q.Status = ""
	where, args := webWhere(q)
	rows, err := s.r.QueryContext(ctx, webAlerts+` SELECT coalesce(x.outcome, ?), count(*) FROM x`+where+` GROUP BY 1 ORDER BY 1`,
		append([]any{alertview.StatusOpen}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: web status counts: %w", err)
	}
	defer rows.Close()
	var out []alertview.StatusCount
	for rows.Next() {
		var c alertview.StatusCount
		if err := rows.Scan(&c.Status, &c.Count); err != nil {
			return nil, fmt.Errorf("sqlite: web status counts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: web status counts: %w", err)
	}
	return out, nil
}

// WebAlert returns one alert with its team and triage.
func (s WebStore) WebAlert(ctx context.Context, id string) (alertview.AlertRow, error) {
	rows, err := s.webRows(ctx, webAlerts+` SELECT x.version, x.body, x.team, x.outcome, x.by_user, x.at, x.note, x.triage_source, x.action_owner, x.action_due, x.action_status FROM x WHERE x.id = ?`, id)
	if err != nil {
		return alertview.AlertRow{}, err
	}
	if len(rows) == 0 {
		return alertview.AlertRow{}, fmt.Errorf("sqlite: alert %s: %w", id, store.ErrNotFound)
	}
	return rows[0], nil
}

func (s WebStore) webRows(ctx context.Context, q string, args ...any) ([]alertview.AlertRow, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: web alerts: %w", err)
	}
	defer rows.Close()
	var out []alertview.AlertRow
	for rows.Next() {
		var (
			version         int64
			body, team      string
			outcome, by, nt sql.NullString
			source          sql.NullString
			at              sql.NullInt64
			owner, due, st  sql.NullString
		)
		if err := rows.Scan(&version, &body, &team, &outcome, &by, &at, &nt, &source, &owner, &due, &st); err != nil {
			return nil, fmt.Errorf("sqlite: web alerts: %w", err)
		}
		a, err := decodeAlert(version, body)
		if err != nil {
			return nil, err
		}
		r := alertview.AlertRow{Alert: a, Team: team}
		if outcome.Valid {
			r.Triage = &alertview.Triage{AlertID: a.ID, Outcome: outcome.String, By: by.String, At: time.Unix(0, at.Int64).UTC(), Note: nt.String, Source: source.String}
			if act := (triage.Action{Owner: owner.String, Due: due.String, Status: st.String}); !act.IsZero() {
				r.Triage.Action = &act
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: web alerts: %w", err)
	}
	return out, nil
}

// WebAlertCounts counts alerts in q's scope by org, DPIA, check, risk and team; an
// alert evidencing two risks counts under each, one evidencing none (risks
// null: not covered by the DPIA) under none, as ClickHouse's ARRAY JOIN
// leaves it out.
func (s WebStore) WebAlertCounts(ctx context.Context, q alertview.AlertQuery) ([]alertview.AlertCount, error) {
	where, args := webWhere(q)
	rows, err := s.r.QueryContext(ctx, webAlerts+` SELECT x.org, coalesce(json_extract(x.body, '$.dpia'), ''), x.check_name, r.value, x.team,
	sum(x.outcome IS NULL), sum(x.outcome IS NOT NULL), max(x.last_seen)
FROM x, json_each(coalesce(json_extract(x.body, '$.risks'), '[]')) r`+where+`
GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 4, 3, 5`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: web alert counts: %w", err)
	}
	defer rows.Close()
	var out []alertview.AlertCount
	for rows.Next() {
		var (
			c    alertview.AlertCount
			last int64
		)
		if err := rows.Scan(&c.Org, &c.DPIA, &c.Check, &c.Risk, &c.Team, &c.Open, &c.Triaged, &last); err != nil {
			return nil, fmt.Errorf("sqlite: web alert counts: %w", err)
		}
		c.LastSeen = time.Unix(0, last).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: web alert counts: %w", err)
	}
	return out, nil
}

const nsPerHour = int64(time.Hour)

// WebHourlyActivity counts events per UTC hour for one actor (index
// events_org_actor_t), one team (events_org_t, then the team from detail) or
// the whole org.
func (s WebStore) WebHourlyActivity(ctx context.Context, q alertview.ActivityQuery) ([]alertview.HourCount, int, error) {
	if q.ActorID != "" && q.Team != "" {
		return nil, 0, errors.New("sqlite: web activity: give an actor or a team, not both")
	}
	where := `WHERE org = ? AND t >= ? AND t < ?`
	args := []any{q.Org, timeKey(q.From), timeKey(q.To)}
	if q.ActorID != "" {
		where, args = where+` AND actor = ?`, append(args, q.ActorID)
	} else if q.Team != "" {
		where, args = where+` AND json_extract(detail, '$.m') = ?`, append(args, q.Team)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT t / ?, count(*) FROM events `+where+` GROUP BY 1 ORDER BY 1`, append([]any{nsPerHour}, args...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: web activity: %w", err)
	}
	defer rows.Close()
	var out []alertview.HourCount
	for rows.Next() {
		var h int64
		var n int
		if err := rows.Scan(&h, &n); err != nil {
			return nil, 0, fmt.Errorf("sqlite: web activity: %w", err)
		}
		out = append(out, alertview.HourCount{Hour: time.Unix(0, h*nsPerHour).UTC(), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: web activity: %w", err)
	}
	var actors int
	if err := s.r.QueryRowContext(ctx, `SELECT count(DISTINCT actor) FROM events `+where, args...).Scan(&actors); err != nil {
		return nil, 0, fmt.Errorf("sqlite: web activity: %w", err)
	}
	return out, actors, nil
}

// WebActorTeam returns the team of the actor's most recent event in org.
func (s WebStore) WebActorTeam(ctx context.Context, org, actorID string) (string, error) {
	var team sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT json_extract(detail, '$.m') FROM events WHERE org = ? AND actor = ? ORDER BY t DESC LIMIT 1`,
		org, actorID).Scan(&team)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: web actor team: %w", err)
	}
	return team.String, nil
}

// WebSetTriage records t as a triage from the UI.
//
// Deprecated: the UI calls AddTriage (store.Triages); this stays for callers
// written before triage had one record.
func (s WebStore) WebSetTriage(ctx context.Context, t alertview.Triage) error {
	_, err := s.AddTriage(ctx, triage.Decision{AlertID: t.AlertID, Outcome: t.Outcome, Actor: t.By, At: t.At, Note: t.Note, Source: alertview.TriageSource})
	return err
}

// WebRecordView appends v to the view log.
func (s WebStore) WebRecordView(ctx context.Context, v viewlog.View) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO web_views (at, user, role, kind, org, target, row_count) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		v.At.UnixNano(), v.User, v.Role, v.Kind, v.Org, v.Target, v.Rows)
	if err != nil {
		return fmt.Errorf("sqlite: web record view: %w", err)
	}
	return nil
}

// WebViews returns the latest views, newest first.
func (s WebStore) WebViews(ctx context.Context, limit int) ([]viewlog.View, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT at, user, role, kind, org, target, row_count FROM web_views ORDER BY at DESC, rowid DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: web views: %w", err)
	}
	defer rows.Close()
	var out []viewlog.View
	for rows.Next() {
		var (
			v  viewlog.View
			at int64
		)
		if err := rows.Scan(&at, &v.User, &v.Role, &v.Kind, &v.Org, &v.Target, &v.Rows); err != nil {
			return nil, fmt.Errorf("sqlite: web views: %w", err)
		}
		v.At = time.Unix(0, at).UTC()
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: web views: %w", err)
	}
	return out, nil
}

// WebAlertTrend counts the alerts in q's scope first seen in [from, to) per
// org, risk and UTC day.
func (s WebStore) WebAlertTrend(ctx context.Context, q alertview.AlertQuery, from, to time.Time) ([]alertview.TrendCount, error) {
	where, args := webWhere(q)
	cond := " WHERE "
	if where != "" {
		cond = where + " AND "
	}
	const day = int64(24 * time.Hour)
	rows, err := s.r.QueryContext(ctx, webAlerts+` SELECT x.org, r.value, x.first_seen / ?, count(*)
FROM x, json_each(coalesce(json_extract(x.body, '$.risks'), '[]')) r`+cond+`x.first_seen >= ? AND x.first_seen < ?
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, append(append([]any{day}, args...), timeKey(from), timeKey(to))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: web alert trend: %w", err)
	}
	defer rows.Close()
	var out []alertview.TrendCount
	for rows.Next() {
		var (
			c alertview.TrendCount
			d int64
		)
		if err := rows.Scan(&c.Org, &c.Risk, &d, &c.Count); err != nil {
			return nil, fmt.Errorf("sqlite: web alert trend: %w", err)
		}
		c.Day = time.Unix(0, d*day).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: web alert trend: %w", err)
	}
	return out, nil
}

// WebFeeds reports, per org (nil: all) and system with events since since,
// the newest event time and the events since recent (index events_org_t).
func (s WebStore) WebFeeds(ctx context.Context, orgs []string, since, recent time.Time) ([]alertview.Feed, error) {
	where, args := inList("org", orgs, []string{"t >= ?"}, []any{timeKey(recent), timeKey(since)})
	rows, err := s.r.QueryContext(ctx, `SELECT org, system, max(t), sum(t >= ?) FROM events`+whereClause(where)+` GROUP BY 1, 2 ORDER BY 1, 2`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: web feeds: %w", err)
	}
	defer rows.Close()
	var out []alertview.Feed
	for rows.Next() {
		var (
			f    alertview.Feed
			last int64
		)
		if err := rows.Scan(&f.Org, &f.System, &last, &f.Recent); err != nil {
			return nil, fmt.Errorf("sqlite: web feeds: %w", err)
		}
		f.LastEvent = time.Unix(0, last).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: web feeds: %w", err)
	}
	return out, nil
}
