package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/store"
)

var _ store.Retainer = (*Store)(nil)

// Retention deletes in transactions of at most the policy's ChunkRows rows
// on the writer connection, so that Apply, waiting for that connection,
// waits one chunk at most (BenchmarkRetainChunk measures it); between
// chunks the connection goes back to the pool and a waiting Apply takes it.
// SQLite does not shrink its file: a database created with
// auto_vacuum=INCREMENTAL (every one this version creates) gives freed pages
// back in bounded steps after each run; an older one reuses them for new
// rows, and shrinks only by an offline VACUUM (docs/configuration.md).

// incrementalVacuumPages is how many free pages one step gives back (4 KiB
// pages: 16 MiB), one short write transaction each.
const incrementalVacuumPages = 4096

// Retain implements store.Retainer.
func (s *Store) Retain(ctx context.Context, p store.RetentionPolicy, now time.Time) (store.RetentionResult, error) {
	res := store.RetentionResult{Deleted: map[string]map[string]int64{}}
	count := func(org, class string, n int64) {
		if n == 0 {
			return
		}
		if res.Deleted[org] == nil {
			res.Deleted[org] = map[string]int64{}
		}
		res.Deleted[org][class] += n
	}
	// chunk runs one deletion transaction and times it.
	chunk := func(fn func(tx *sql.Tx) (int64, error)) (int64, error) {
		start := time.Now()
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = fn(tx)
			return err
		})
		res.Chunks++
		res.LongestChunk = max(res.LongestChunk, time.Since(start))
		return n, err
	}
	limit := p.Chunk()

	// Events: by org, oldest first, through events_org_t.
	orgs, err := s.distinctOrgs(ctx, `events`)
	if err != nil {
		return res, err
	}
	for _, org := range orgs {
		d := p.Period(org, store.RetainEvents)
		if d <= 0 {
			continue
		}
		cutoff := now.Add(-d).UnixNano()
		for {
			n, err := chunk(func(tx *sql.Tx) (int64, error) {
				return execCount(ctx, tx, `DELETE FROM events WHERE rowid IN (
					SELECT rowid FROM events WHERE org = ? AND t < ? ORDER BY t LIMIT ?)`, org, cutoff, limit)
			})
			if err != nil {
				return res, fmt.Errorf("sqlite: retention: events of %s: %w", org, err)
			}
			count(org, store.RetainEvents, n)
			if n < int64(limit) {
				break
			}
		}
	}

	// View logs: by org, through web_views_org_at.
	if orgs, err = s.distinctOrgs(ctx, `web_views`); err != nil {
		return res, err
	}
	for _, org := range orgs {
		d := p.Period(org, store.RetainViewLogs)
		if d <= 0 {
			continue
		}
		cutoff := now.Add(-d).UnixNano()
		for {
			n, err := chunk(func(tx *sql.Tx) (int64, error) {
				return execCount(ctx, tx, `DELETE FROM web_views WHERE rowid IN (
					SELECT rowid FROM web_views WHERE org = ? AND at < ? ORDER BY at LIMIT ?)`, org, cutoff, limit)
			})
			if err != nil {
				return res, fmt.Errorf("sqlite: retention: view logs of %s: %w", org, err)
			}
			count(org, store.RetainViewLogs, n)
			if n < int64(limit) {
				break
			}
		}
	}

	// Alerts: by org and last seen, only those whose newest triage is
	// final, each with everything that names it.
	if orgs, err = s.distinctOrgs(ctx, `alerts`); err != nil {
		return res, err
	}
	final := `(SELECT outcome FROM triages WHERE alert_id = a.id ORDER BY seq DESC LIMIT 1) IN ('` +
		strings.Join(store.FinalTriageOutcomes, "','") + `')`
	for _, org := range orgs {
		d := p.Period(org, store.RetainAlerts)
		if d <= 0 {
			continue
		}
		cutoff := now.Add(-d).UnixNano()
		for {
			n, err := chunk(func(tx *sql.Tx) (int64, error) {
				return deleteAlerts(ctx, tx, `SELECT id FROM alerts a WHERE org = ? AND last_seen < ? AND `+final+` LIMIT ?`, org, cutoff, limit)
			})
			if err != nil {
				return res, fmt.Errorf("sqlite: retention: alerts of %s: %w", org, err)
			}
			count(org, store.RetainAlerts, n)
			if n < int64(limit) {
				break
			}
		}
		var open int64
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM alerts a WHERE org = ? AND last_seen < ? AND NOT coalesce(`+final+`, 0)`,
			org, cutoff).Scan(&open); err != nil {
			return res, fmt.Errorf("sqlite: retention: open alerts of %s: %w", org, err)
		}
		res.KeptOpen += open
	}

	// Check state: keyed by task, not org, so aged by its last write
	// against the longest period of any org; only the checks' own keys and
	// conflict records, never pending events or clocks.
	if d := p.LongestPeriod(store.RetainCheckState); d > 0 {
		aged, agedArgs := agedState()
		where := `written_at < ? AND ` + aged
		args := append([]any{now.Add(-d).UnixNano()}, agedArgs...)
		for _, k := range p.KeepStateContaining {
			where += ` AND instr(key, ?) = 0`
			args = append(args, k)
		}
		args = append(args, limit)
		for {
			n, err := chunk(func(tx *sql.Tx) (int64, error) {
				return execCount(ctx, tx, `DELETE FROM check_state WHERE key IN (
					SELECT key FROM check_state WHERE `+where+` LIMIT ?)`, args...)
			})
			if err != nil {
				return res, fmt.Errorf("sqlite: retention: check state: %w", err)
			}
			count("", store.RetainCheckState, n)
			if n < int64(limit) {
				break
			}
		}
	}

	if err := s.recordRun(ctx, now, res); err != nil {
		return res, err
	}
	if err := s.incrementalVacuum(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// distinctOrgs lists the orgs of table, one index seek per org (the
// table's (org, …) index) rather than a scan.
func (s *Store) distinctOrgs(ctx context.Context, table string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `WITH RECURSIVE o(org) AS (
		SELECT min(org) FROM `+table+`
		UNION ALL
		SELECT (SELECT min(org) FROM `+table+` WHERE org > o.org) FROM o WHERE o.org IS NOT NULL
	) SELECT org FROM o WHERE org IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: retention: orgs of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var org string
		if err := rows.Scan(&org); err != nil {
			return nil, fmt.Errorf("sqlite: retention: orgs of %s: %w", table, err)
		}
		out = append(out, org)
	}
	return out, rows.Err()
}

func execCount(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	r, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// deleteAlerts deletes the alerts pick selects with their triages and
// managers' notes (and their audit entries, which copy the text),
// deliveries and Slack message references, and returns how many alerts
// went.
func deleteAlerts(ctx context.Context, tx *sql.Tx, pick string, args ...any) (int64, error) {
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS retention_alerts (id TEXT PRIMARY KEY)`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM temp.retention_alerts`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO temp.retention_alerts (id) `+pick, args...); err != nil {
		return 0, err
	}
	for _, q := range []string{
		`DELETE FROM triage_delivery WHERE seq IN (SELECT seq FROM triages WHERE alert_id IN (SELECT id FROM temp.retention_alerts))`,
		`DELETE FROM triages WHERE alert_id IN (SELECT id FROM temp.retention_alerts)`,
		`DELETE FROM alert_notes WHERE alert_id IN (SELECT id FROM temp.retention_alerts)`,
		`DELETE FROM audit WHERE (action LIKE 'triage.%' OR action IN ('alert.resend', 'alert.note')) AND object IN (SELECT id FROM temp.retention_alerts)`,
		`DELETE FROM outbox_delivery WHERE alert_id IN (SELECT id FROM temp.retention_alerts)`,
		`DELETE FROM outbox_failure WHERE alert_id IN (SELECT id FROM temp.retention_alerts)`,
		`DELETE FROM message_refs WHERE alert_id IN (SELECT id FROM temp.retention_alerts)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	return execCount(ctx, tx, `DELETE FROM alerts WHERE id IN (SELECT id FROM temp.retention_alerts)`)
}

// recordRun keeps what the run deleted for the evidence pack.
func (s *Store) recordRun(ctx context.Context, now time.Time, res store.RetentionResult) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		at := now.UnixNano()
		if _, err := tx.ExecContext(ctx, `INSERT INTO retention_runs (at, org, class, deleted) VALUES (?, '', '', 0)`, at); err != nil {
			return err
		}
		for org, m := range res.Deleted {
			for class, n := range m {
				if _, err := tx.ExecContext(ctx, `INSERT INTO retention_runs (at, org, class, deleted) VALUES (?, ?, ?, ?)`, at, org, class, n); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: retention: record run: %w", err)
	}
	return nil
}

// incrementalVacuum gives the free pages back to the file system, a step
// at a time, when the database was created with auto_vacuum=INCREMENTAL.
func (s *Store) incrementalVacuum(ctx context.Context) error {
	var mode int
	if err := s.w.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: retention: auto_vacuum: %w", err)
	}
	if mode != 2 {
		return nil // free pages are reused for new rows
	}
	for {
		var free int
		if err := s.w.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
			return fmt.Errorf("sqlite: retention: freelist_count: %w", err)
		}
		if free == 0 {
			return nil
		}
		if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, incrementalVacuumPages)); err != nil {
			return fmt.Errorf("sqlite: retention: incremental_vacuum: %w", err)
		}
		if free <= incrementalVacuumPages {
			return nil
		}
	}
}

// RetentionStatus implements store.Retainer.
func (s *Store) RetentionStatus(ctx context.Context, from, to time.Time) (store.RetentionStatus, error) {
	st := store.RetentionStatus{Deleted: map[string]map[string]int64{}, Oldest: map[string]map[string]time.Time{}}
	var last sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(at) FROM retention_runs`).Scan(&last); err != nil {
		return st, fmt.Errorf("sqlite: retention status: %w", err)
	}
	if last.Valid {
		st.LastRun = time.Unix(0, last.Int64).UTC()
	}
	rows, err := s.r.QueryContext(ctx, `SELECT org, class, sum(deleted) FROM retention_runs
		WHERE at >= ? AND at < ? AND class != '' GROUP BY org, class`, from.UnixNano(), to.UnixNano())
	if err != nil {
		return st, fmt.Errorf("sqlite: retention status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			org, class string
			n          int64
		)
		if err := rows.Scan(&org, &class, &n); err != nil {
			return st, fmt.Errorf("sqlite: retention status: %w", err)
		}
		if st.Deleted[org] == nil {
			st.Deleted[org] = map[string]int64{}
		}
		st.Deleted[org][class] = n
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("sqlite: retention status: %w", err)
	}
	oldest := func(org, class string, ns int64) {
		if st.Oldest[org] == nil {
			st.Oldest[org] = map[string]time.Time{}
		}
		st.Oldest[org][class] = time.Unix(0, ns).UTC()
	}
	for _, q := range []struct{ table, col, class string }{
		{"events", "t", store.RetainEvents}, {"web_views", "at", store.RetainViewLogs}, {"alerts", "last_seen", store.RetainAlerts},
	} {
		orgs, err := s.distinctOrgs(ctx, q.table)
		if err != nil {
			return st, err
		}
		for _, org := range orgs {
			var ns int64
			if err := s.r.QueryRowContext(ctx, `SELECT min(`+q.col+`) FROM `+q.table+` WHERE org = ?`, org).Scan(&ns); err != nil {
				return st, fmt.Errorf("sqlite: retention status: oldest %s: %w", q.class, err)
			}
			oldest(org, q.class, ns)
		}
	}
	var ns sql.NullInt64
	aged, agedArgs := agedState()
	if err := s.r.QueryRowContext(ctx, `SELECT min(written_at) FROM check_state WHERE `+aged, agedArgs...).Scan(&ns); err != nil {
		return st, fmt.Errorf("sqlite: retention status: oldest check state: %w", err)
	}
	if ns.Valid {
		oldest("", store.RetainCheckState, ns.Int64)
	}
	return st, nil
}

// agedState is the condition on check_state.key that selects the state
// retention ages (store.AgedStateMarkers), with its arguments.
func agedState() (string, []any) {
	conds := make([]string, len(store.AgedStateMarkers))
	args := make([]any, len(store.AgedStateMarkers))
	for i, m := range store.AgedStateMarkers {
		conds[i], args[i] = `instr(key, ?) > 0`, m
	}
	return `(` + strings.Join(conds, ` OR `) + `)`, args
}
