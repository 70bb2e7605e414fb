package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// Routine audits (migration 0004): samples of access per team and period,
// and managers' reviews of them.

var _ store.RoutineAudits = (*Store)(nil)

// ScanTeamEvents calls fn for each event of org and team in [from, to), by
// time then key (index events_org_t, then the team from detail).
func (s *Store) ScanTeamEvents(ctx context.Context, org, team string, from, to time.Time, fn func(event.Event) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT org, system, id, t, action, actor, subject, detail FROM events
WHERE org = ? AND t >= ? AND t < ? AND json_extract(detail, '$.m') = ? ORDER BY t, system, id`,
		org, timeKey(from), timeKey(to), team)
	if err != nil {
		return fmt.Errorf("sqlite: scan team events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			org, system, id, action, actor, subject, det string
			t                                            int64
		)
		if err := rows.Scan(&org, &system, &id, &t, &action, &actor, &subject, &det); err != nil {
			return fmt.Errorf("sqlite: scan team events: %w", err)
		}
		e, err := decodeEvent(org, system, id, t, action, actor, subject, det)
		if err != nil {
			return fmt.Errorf("sqlite: scan team events: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: scan team events: %w", err)
	}
	return nil
}

// AuditTeams returns the teams org's events in [from, to) name.
func (s *Store) AuditTeams(ctx context.Context, org string, from, to time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT json_extract(detail, '$.m') AS team FROM events
WHERE org = ? AND t >= ? AND t < ? AND coalesce(team, '') != '' ORDER BY 1`, org, timeKey(from), timeKey(to))
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit teams: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("sqlite: audit teams: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit teams: %w", err)
	}
	return out, nil
}

// PutAuditSample stores a sample unless one is stored for its org, team and
// period, and returns the stored one. A new sample of a period its org's
// feed has not completed is refused (store.ErrFeedIncomplete).
func (s *Store) PutAuditSample(ctx context.Context, a routineaudit.Sample) (routineaudit.Sample, error) {
	if got, err := s.AuditSample(ctx, a.Org, a.Team, a.Period); err == nil {
		return got, nil // drawn before: that draw stands, whatever the feed does now
	} else if !errors.Is(err, store.ErrNotFound) {
		return routineaudit.Sample{}, err
	}
	// Outside the transaction: completeness only moves forward, so a point
	// read a moment early can only refuse a draw that was already allowed.
	if err := store.CheckComplete(ctx, s, a.Org, a.To); err != nil {
		return routineaudit.Sample{}, fmt.Errorf("sqlite: put audit sample: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_samples (org, team, period, dpia, from_t, to_t, population, seed, drawn_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			a.Org, a.Team, a.Period, a.DPIA, timeKey(a.From), timeKey(a.To), a.Population, a.Seed, a.DrawnAt.UnixNano())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // drawn before: that draw stands
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO audit_sample_items (org, team, period, n, system, event_id, t, actor, subject, action, record)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, it := range a.Items {
			if _, err := st.ExecContext(ctx, a.Org, a.Team, a.Period, it.N, it.System, it.EventID, timeKey(it.Time),
				it.ActorID, it.SubjectID, it.Action, it.Record); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return routineaudit.Sample{}, fmt.Errorf("sqlite: put audit sample: %w", err)
	}
	return s.AuditSample(ctx, a.Org, a.Team, a.Period)
}

// AuditSample returns a stored sample, or store.ErrNotFound.
func (s *Store) AuditSample(ctx context.Context, org, team, period string) (routineaudit.Sample, error) {
	a := routineaudit.Sample{Org: org, Team: team, Period: period}
	var from, to, drawn int64
	err := s.r.QueryRowContext(ctx, `SELECT dpia, from_t, to_t, population, seed, drawn_at FROM audit_samples WHERE org = ? AND team = ? AND period = ?`,
		org, team, period).Scan(&a.DPIA, &from, &to, &a.Population, &a.Seed, &drawn)
	if errors.Is(err, sql.ErrNoRows) {
		return routineaudit.Sample{}, fmt.Errorf("sqlite: audit sample: %w", store.ErrNotFound)
	}
	if err != nil {
		return routineaudit.Sample{}, fmt.Errorf("sqlite: audit sample: %w", err)
	}
	a.From, a.To, a.DrawnAt = time.Unix(0, from).UTC(), time.Unix(0, to).UTC(), time.Unix(0, drawn).UTC()
	rows, err := s.r.QueryContext(ctx, `SELECT n, system, event_id, t, actor, subject, action, record FROM audit_sample_items
WHERE org = ? AND team = ? AND period = ? ORDER BY n`, org, team, period)
	if err != nil {
		return routineaudit.Sample{}, fmt.Errorf("sqlite: audit sample: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			it routineaudit.SampleItem
			t  int64
		)
		if err := rows.Scan(&it.N, &it.System, &it.EventID, &t, &it.ActorID, &it.SubjectID, &it.Action, &it.Record); err != nil {
			return routineaudit.Sample{}, fmt.Errorf("sqlite: audit sample: %w", err)
		}
		it.Time = time.Unix(0, t).UTC()
		a.Items = append(a.Items, it)
	}
	if err := rows.Err(); err != nil {
		return routineaudit.Sample{}, fmt.Errorf("sqlite: audit sample: %w", err)
	}
	return a, nil
}

// AddAuditReview stores r and its audit entry in one transaction.
func (s *Store) AddAuditReview(ctx context.Context, r routineaudit.Review) (routineaudit.Review, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var items int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_sample_items WHERE org = ? AND team = ? AND period = ? AND n = ?`,
			r.Org, r.Team, r.Period, r.N).Scan(&items); err != nil {
			return err
		}
		if items == 0 {
			return store.ErrNotFound
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_reviews (org, team, period, n, outcome, reviewer, at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Org, r.Team, r.Period, r.N, r.Outcome, r.Reviewer, r.At.UnixNano(), r.Note)
		if err != nil {
			return err
		}
		if r.Seq, err = res.LastInsertId(); err != nil {
			return err
		}
		detail, _ := storedjson.Marshal(map[string]any{"seq": r.Seq, "org": r.Org, "team": r.Team, "period": r.Period, "item": r.N, "note": r.Note})
		return insertAudit(ctx, tx, audit.Entry{At: r.At, Actor: r.Reviewer, Action: "routine-audit." + r.Outcome,
			Object: r.Org + "/" + r.Team + "/" + r.Period, Detail: string(detail)})
	})
	if err != nil {
		return routineaudit.Review{}, fmt.Errorf("sqlite: add audit review: %w", err)
	}
	return r, nil
}

// AuditReviews returns the reviews of one sample, oldest first.
func (s *Store) AuditReviews(ctx context.Context, org, team, period string) ([]routineaudit.Review, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, n, outcome, reviewer, at, note FROM audit_reviews
WHERE org = ? AND team = ? AND period = ? ORDER BY seq`, org, team, period)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit reviews: %w", err)
	}
	defer rows.Close()
	var out []routineaudit.Review
	for rows.Next() {
		r := routineaudit.Review{Org: org, Team: team, Period: period}
		var at int64
		if err := rows.Scan(&r.Seq, &r.N, &r.Outcome, &r.Reviewer, &at, &r.Note); err != nil {
			return nil, fmt.Errorf("sqlite: audit reviews: %w", err)
		}
		r.At = time.Unix(0, at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit reviews: %w", err)
	}
	return out, nil
}

// latestReviews is each sampled item with its newest review's outcome (NULL
// when unreviewed), for the samples in s.
const latestReviews = `i AS (
	SELECT i.org, i.team, i.period,
		(SELECT r.outcome FROM audit_reviews r WHERE r.org = i.org AND r.team = i.team AND r.period = i.period AND r.n = i.n
			ORDER BY r.seq DESC LIMIT 1) AS outcome
	FROM audit_sample_items i JOIN s USING (org, team, period)
)`

// AuditCoverage returns how much of each stored sample was reviewed.
func (s *Store) AuditCoverage(ctx context.Context, orgs []string, from, to time.Time) ([]routineaudit.Coverage, error) {
	var (
		where []string
		args  = []any{timeKey(from), timeKey(to)}
	)
	where, args = inList("org", orgs, where, args)
	cond := ""
	for _, w := range where {
		cond += " AND " + w
	}
	rows, err := s.r.QueryContext(ctx, `WITH s AS (SELECT org, team, period, dpia, from_t, population FROM audit_samples WHERE from_t >= ? AND from_t < ?`+cond+`),
`+latestReviews+`
SELECT s.org, s.dpia, s.team, s.period, s.from_t, s.population, count(i.org), count(i.outcome),
	coalesce(sum(i.outcome = ?), 0), coalesce(sum(i.outcome = ?), 0), coalesce(sum(i.outcome = ?), 0)
FROM s LEFT JOIN i USING (org, team, period) GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY s.org, s.from_t, s.team`,
		append(args, routineaudit.ReviewReasonable, routineaudit.ReviewQuery, routineaudit.ReviewRefer)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit coverage: %w", err)
	}
	defer rows.Close()
	var out []routineaudit.Coverage
	for rows.Next() {
		var (
			c    routineaudit.Coverage
			from int64
		)
		if err := rows.Scan(&c.Org, &c.DPIA, &c.Team, &c.Period, &from, &c.Population, &c.Sampled, &c.Reviewed, &c.Reasonable, &c.Query, &c.Refer); err != nil {
			return nil, fmt.Errorf("sqlite: audit coverage: %w", err)
		}
		c.From = time.Unix(0, from).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit coverage: %w", err)
	}
	return out, nil
}

// EvidenceRoutineAudits counts, per org of q's DPIA, the sampled accesses
// in [q.From, q.To) that were reviewed, and those referred as possible
// misuse (their newest review).
func (s *Store) EvidenceRoutineAudits(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.RoutineAuditGroup, error) {
	rows, err := s.r.QueryContext(ctx, `WITH s AS (SELECT org, team, period FROM audit_samples WHERE dpia = ?),
x AS (
	SELECT i.org,
		(SELECT r.outcome FROM audit_reviews r WHERE r.org = i.org AND r.team = i.team AND r.period = i.period AND r.n = i.n
			ORDER BY r.seq DESC LIMIT 1) AS outcome
	FROM audit_sample_items i JOIN s USING (org, team, period) WHERE i.t >= ? AND i.t < ?
)
SELECT org, count(outcome), coalesce(sum(outcome = ?), 0) FROM x GROUP BY org ORDER BY org`,
		q.DPIA, timeKey(q.From), timeKey(q.To), routineaudit.ReviewRefer)
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence routine audits: %w", err)
	}
	defer rows.Close()
	var out []evidencequery.RoutineAuditGroup
	for rows.Next() {
		var g evidencequery.RoutineAuditGroup
		if err := rows.Scan(&g.Org, &g.Samples, &g.Findings); err != nil {
			return nil, fmt.Errorf("sqlite: evidence routine audits: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: evidence routine audits: %w", err)
	}
	return out, nil
}
