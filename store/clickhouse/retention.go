package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dpiawatch/dpiawatch/store"
)

var _ store.Retainer = (*Store)(nil)

// Retention in ClickHouse: events also carry their org's period at write
// time (retention_days, applied by TTL at merges), but a period changed
// since, or data written before a period was set, is only reached by
// Retain. Its deletions are mutations (ALTER TABLE … DELETE): ClickHouse
// rewrites the parts in the background and inserts never wait for them, so
// the policy's ChunkRows does not apply. Retain waits for the mutations to
// finish (mutations_sync), so that a returned run has deleted what it says.

// Retain implements store.Retainer.
func (s *Store) Retain(ctx context.Context, p store.RetentionPolicy, now time.Time) (store.RetentionResult, error) {
	res := store.RetentionResult{Deleted: map[string]map[string]int64{}}
	sync := 1
	if s.schema.Cluster != "" {
		sync = 2 // every replica
	}
	mctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"mutations_sync": sync}))
	count := func(org, class string, n int64) {
		if n == 0 {
			return
		}
		if res.Deleted[org] == nil {
			res.Deleted[org] = map[string]int64{}
		}
		res.Deleted[org][class] += n
	}
	// mutate counts the rows where selects and, when there are any, deletes
	// them. Events are counted through the Distributed table on a cluster
	// and deleted in every shard's local one.
	// where's values are p's parameters.
	mutate := func(table, where string, p *params) (int64, error) {
		read := table
		if table == s.schema.eventsLocal() {
			read = "events"
		}
		var n uint64
		if err := s.conn.QueryRow(ctx, `SELECT count() FROM `+s.db+`.`+read+` WHERE `+where, p.list()...).Scan(&n); err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, nil
		}
		start := time.Now()
		err := s.conn.Exec(mctx, `ALTER TABLE `+s.db+`.`+table+s.schema.onCluster()+` DELETE WHERE `+where, p.list()...)
		res.Chunks++
		res.LongestChunk = max(res.LongestChunk, time.Since(start))
		return int64(n), err
	}

	for _, c := range []struct{ class, table, col string }{
		{store.RetainEvents, s.schema.eventsLocal(), "t"},
		{store.RetainViewLogs, "web_views", "at"},
	} {
		read := c.table
		if c.class == store.RetainEvents {
			read = "events"
		}
		orgs, err := s.orgsOf(ctx, read)
		if err != nil {
			return res, err
		}
		for _, org := range orgs {
			d := p.Period(org, c.class)
			if d <= 0 {
				continue
			}
			var q params
			n, err := mutate(c.table, `org = `+q.str(org)+` AND `+c.col+` < `+q.time(now.Add(-d)), &q)
			if err != nil {
				return res, fmt.Errorf("clickhouse: retention: %s of %s: %w", c.class, org, err)
			}
			count(org, c.class, n)
		}
	}

	// Alerts whose newest triage is final, with their triages and
	// managers' notes (audit rows of kinds triage and note), deliveries
	// and Slack message references.
	orgs, err := s.orgsOf(ctx, "alerts")
	if err != nil {
		return res, err
	}
	for _, org := range orgs {
		d := p.Period(org, store.RetainAlerts)
		if d <= 0 {
			continue
		}
		var q params
		old := `SELECT id, t.outcome AS outcome FROM (SELECT id, argMax(last_seen, version) AS ls FROM ` + s.db + `.alerts WHERE org = ` + q.str(org) +
			` GROUP BY id) a LEFT JOIN (SELECT object AS id, argMax(outcome, seq) AS outcome FROM ` + s.db + `.audit WHERE kind = 'triage' GROUP BY object) t USING id
			WHERE a.ls < ` + q.time(now.Add(-d))
		rows, err := s.conn.Query(ctx, old, q.list()...)
		if err != nil {
			return res, fmt.Errorf("clickhouse: retention: alerts of %s: %w", org, err)
		}
		var ids []string
		for rows.Next() {
			var id, outcome string
			if err := rows.Scan(&id, &outcome); err != nil {
				rows.Close()
				return res, fmt.Errorf("clickhouse: retention: alerts of %s: %w", org, err)
			}
			if isFinal(outcome) {
				ids = append(ids, id)
			} else {
				res.KeptOpen++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("clickhouse: retention: alerts of %s: %w", org, err)
		}
		if len(ids) == 0 {
			continue
		}
		var inp params
		in := inp.strs(ids)
		for _, m := range []struct{ table, where string }{
			{"triage_delivery", `seq IN (SELECT seq FROM ` + s.db + `.audit WHERE kind = 'triage' AND object IN ` + in + `)`},
			{"audit", `(kind IN ('triage', 'note') OR (kind = 'audit' AND action = 'alert.resend')) AND object IN ` + in},
			{"outbox_delivery", `alert_id IN ` + in},
			{"outbox_failure", `alert_id IN ` + in},
			{"message_refs", `alert_id IN ` + in},
			{"alerts", `id IN ` + in},
		} {
			if _, err := mutate(m.table, m.where, &inp); err != nil {
				return res, fmt.Errorf("clickhouse: retention: alerts of %s: %s: %w", org, m.table, err)
			}
		}
		count(org, store.RetainAlerts, int64(len(ids)))
	}

	// Check state: keyed by task, not org, so aged by its last write
	// against the longest period of any org; only the checks' own keys and
	// conflict records, never pending events or clocks. Every
	// version older than the cutoff goes; a key's count is whether its
	// newest version was live and older.
	if d := p.LongestPeriod(store.RetainCheckState); d > 0 {
		var q params
		before := `toDateTime(` + q.int(now.Add(-d).Unix()) + `, 'UTC')`
		keep := ` AND ` + agedState(&q)
		for _, k := range p.KeepStateContaining {
			keep += ` AND position(key, ` + q.str(k) + `) = 0`
		}
		var n uint64
		if err := s.conn.QueryRow(ctx, `SELECT count() FROM (SELECT key, argMax(deleted, seq) AS d, max(written_at) AS w FROM `+s.db+
			`.checkpoint WHERE kind = 'state'`+keep+` GROUP BY key) WHERE NOT d AND w < `+before, q.list()...).Scan(&n); err != nil {
			return res, fmt.Errorf("clickhouse: retention: check state: %w", err)
		}
		if _, err := mutate("checkpoint", `kind = 'state' AND written_at < `+before+keep, &q); err != nil {
			return res, fmt.Errorf("clickhouse: retention: check state: %w", err)
		}
		count("", store.RetainCheckState, int64(n))
	}

	if err := s.recordRetentionRun(ctx, now, res); err != nil {
		return res, err
	}
	return res, nil
}

func isFinal(outcome string) bool {
	for _, o := range store.FinalTriageOutcomes {
		if o == outcome {
			return true
		}
	}
	return false
}

// orgsOf lists the orgs that have rows in table.
func (s *Store) orgsOf(ctx context.Context, table string) ([]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT toString(org) FROM `+s.db+`.`+table)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: retention: orgs of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var org string
		if err := rows.Scan(&org); err != nil {
			return nil, fmt.Errorf("clickhouse: retention: orgs of %s: %w", table, err)
		}
		out = append(out, org)
	}
	return out, rows.Err()
}

func (s *Store) recordRetentionRun(ctx context.Context, now time.Time, res store.RetentionResult) error {
	// One block, so one insert: the run's marker row and its counts land
	// together.
	at := now.UTC()
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO `+s.db+`.retention_runs (at, org, class, deleted)`)
	if err != nil {
		return fmt.Errorf("clickhouse: retention: record run: %w", err)
	}
	err = b.Append(at, "", "", uint64(0))
	for org, m := range res.Deleted {
		for class, n := range m {
			if err == nil {
				err = b.Append(at, org, class, uint64(n))
			}
		}
	}
	if err != nil {
		_ = b.Abort()
		return fmt.Errorf("clickhouse: retention: record run: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: retention: record run: %w", err)
	}
	return nil
}

// RetentionStatus implements store.Retainer.
func (s *Store) RetentionStatus(ctx context.Context, from, to time.Time) (store.RetentionStatus, error) {
	st := store.RetentionStatus{Deleted: map[string]map[string]int64{}, Oldest: map[string]map[string]time.Time{}}
	var runs uint64
	var last time.Time
	if err := s.conn.QueryRow(ctx, `SELECT count(), max(at) FROM `+s.db+`.retention_runs`).Scan(&runs, &last); err != nil {
		return st, fmt.Errorf("clickhouse: retention status: %w", err)
	}
	if runs > 0 {
		st.LastRun = last.UTC()
	}
	var p params
	rows, err := s.conn.Query(ctx, `SELECT toString(org), toString(class), toInt64(sum(deleted)) FROM `+s.db+`.retention_runs WHERE at >= `+p.time(from)+
		` AND at < `+p.time(to)+` AND class != '' GROUP BY org, class`, p.list()...)
	if err != nil {
		return st, fmt.Errorf("clickhouse: retention status: %w", err)
	}
	for rows.Next() {
		var (
			org, class string
			n          int64
		)
		if err := rows.Scan(&org, &class, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("clickhouse: retention status: %w", err)
		}
		if st.Deleted[org] == nil {
			st.Deleted[org] = map[string]int64{}
		}
		st.Deleted[org][class] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("clickhouse: retention status: %w", err)
	}
	var marker params
	for _, q := range []struct {
		class, query string
		args         []any
	}{
		{store.RetainEvents, `SELECT toString(org), min(t) FROM ` + s.events + ` GROUP BY org`, nil},
		{store.RetainViewLogs, `SELECT toString(org), min(at) FROM ` + s.db + `.web_views GROUP BY org`, nil},
		{store.RetainAlerts, `SELECT toString(org), min(ls) FROM (SELECT org, id, argMax(last_seen, version) AS ls FROM ` + s.db + `.alerts GROUP BY org, id) GROUP BY org`, nil},
		{store.RetainCheckState, `SELECT '', toDateTime64(min(written_at), 9, 'UTC') FROM ` + s.db + `.checkpoint WHERE kind = 'state' AND ` +
			agedState(&marker) + ` HAVING count() > 0`, marker.list()},
	} {
		rows, err := s.conn.Query(ctx, q.query, q.args...)
		if err != nil {
			return st, fmt.Errorf("clickhouse: retention status: oldest %s: %w", q.class, err)
		}
		for rows.Next() {
			var (
				org string
				t   time.Time
			)
			if err := rows.Scan(&org, &t); err != nil {
				rows.Close()
				return st, fmt.Errorf("clickhouse: retention status: oldest %s: %w", q.class, err)
			}
			if st.Oldest[org] == nil {
				st.Oldest[org] = map[string]time.Time{}
			}
			st.Oldest[org][q.class] = t.UTC()
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return st, fmt.Errorf("clickhouse: retention status: oldest %s: %w", q.class, err)
		}
	}
	return st, nil
}

// agedState is the condition on a checkpoint state key that selects the
// state retention ages (store.AgedStateMarkers), its markers bound in q.
func agedState(q *params) string {
	conds := make([]string, len(store.AgedStateMarkers))
	for i, m := range store.AgedStateMarkers {
		conds[i] = `position(key, ` + q.str(m) + `) > 0`
	}
	return `(` + strings.Join(conds, ` OR `) + `)`
}
