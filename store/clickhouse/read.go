package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// Alert returns the latest version of the alert with id, or store.ErrNotFound.
func (s *Store) Alert(ctx context.Context, id string) (alert.Alert, error) {
	var p params
	as, err := s.queryAlerts(ctx, `SELECT max(version), argMax(body, version) FROM `+s.db+`.alerts WHERE id = `+p.str(id)+` GROUP BY id`, p.list()...)
	if err != nil {
		return alert.Alert{}, fmt.Errorf("clickhouse: alert: %w", err)
	}
	if len(as) == 0 {
		return alert.Alert{}, fmt.Errorf("clickhouse: alert %s: %w", id, store.ErrNotFound)
	}
	return as[0], nil
}

// latestAlerts is the latest version of every alert, with the columns
// filters use; org is pushed inside to use the table's key.
func (s *Store) latestAlerts(p *params, org string) string {
	where := ""
	if org != "" {
		where = ` WHERE org = ` + p.str(org)
	}
	// Aliases differ from column names: ClickHouse would otherwise read
	// "version" inside argMax as the max(version) alias.
	return `SELECT id, max(version) AS cur_version, argMax(body, version) AS cur_body, argMax(check_name, version) AS cur_check,
	argMax(first_seen, version) AS cur_first, argMax(last_seen, version) AS cur_last, argMax(change_seq, version) AS cur_seq
FROM ` + s.db + `.alerts` + where + ` GROUP BY id`
}

// Alerts returns matching alerts ordered by FirstSeen, then ID.
func (s *Store) Alerts(ctx context.Context, f store.AlertFilter) ([]alert.Alert, error) {
	var p params
	var where []string
	latest := s.latestAlerts(&p, f.Org)
	if f.Check != "" {
		where = append(where, "cur_check = "+p.str(f.Check))
	}
	if !f.Since.IsZero() {
		where = append(where, "cur_last >= "+p.time(f.Since))
	}
	q := `SELECT cur_version, cur_body FROM (` + latest + `)` + whereClause(where) + ` ORDER BY cur_first, id`
	if f.Limit > 0 {
		q += ` LIMIT ` + p.int(int64(f.Limit))
	}
	out, err := s.queryAlerts(ctx, q, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: alerts: %w", err)
	}
	return out, nil
}

func (s *Store) queryAlerts(ctx context.Context, q string, args ...any) ([]alert.Alert, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alert.Alert
	for rows.Next() {
		var (
			version uint64
			body    string
		)
		if err := rows.Scan(&version, &body); err != nil {
			return nil, err
		}
		var a alert.Alert
		if err := storedjson.Unmarshal([]byte(body), &a); err != nil {
			return nil, fmt.Errorf("decode stored alert: %w", err)
		}
		a.Version = int64(version)
		out = append(out, a)
	}
	return out, rows.Err()
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func eventWhere(p *params, f store.EventFilter) string {
	var where []string
	if f.Org != "" {
		where = append(where, "org = "+p.str(f.Org))
	}
	if f.ActorID != "" {
		where = append(where, "actor = "+p.str(f.ActorID))
	}
	if !f.From.IsZero() {
		where = append(where, "t >= "+p.time(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "t < "+p.time(f.To))
	}
	return whereClause(where)
}

// ScanEvents calls fn for each matching event, ordered by time then key
// (org, system, id). An error from fn stops the scan and is returned.
// FINAL folds the duplicate rows a retried batch may have left.
func (s *Store) ScanEvents(ctx context.Context, f store.EventFilter, fn func(event.Event) error) error {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT `+eventSelectList+` FROM `+s.events+` FINAL`+eventWhere(&p, f)+
		` ORDER BY t, far_sec, far_nsec, org, system, id`, p.list()...)
	if err != nil {
		return fmt.Errorf("clickhouse: scan events: %w", err)
	}
	defer rows.Close()
	var r eventRow
	dest := r.dest()
	for rows.Next() {
		r = eventRow{}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("clickhouse: scan events: %w", err)
		}
		if err := fn(decodeEvent(&r)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse: scan events: %w", err)
	}
	return nil
}

var _ store.EventLoader = (*Store)(nil)

// EventsByKey implements store.EventLoader: per org, the events whose id is
// one of the keys', kept where the system matches too.
func (s *Store) EventsByKey(ctx context.Context, keys []event.Key) ([]event.Event, error) {
	byOrg := map[string][]event.Key{}
	for _, k := range keys {
		byOrg[k.Org] = append(byOrg[k.Org], k)
	}
	var out []event.Event
	for org, ks := range byOrg {
		want := make(map[event.Key]bool, len(ks))
		for _, k := range ks {
			want[k] = true
		}
		for _, c := range chunks(len(ks), func(i int) int { return len(ks[i].ID) }) {
			ids := make([]string, 0, c[1]-c[0])
			for _, k := range ks[c[0]:c[1]] {
				ids = append(ids, k.ID)
			}
			var p params
			rows, err := s.conn.Query(ctx, `SELECT `+eventSelectList+` FROM `+s.events+` FINAL WHERE org = `+p.str(org)+
				` AND id IN `+p.strs(ids), p.list()...)
			if err != nil {
				return nil, fmt.Errorf("clickhouse: events by key: %w", err)
			}
			var r eventRow
			dest := r.dest()
			for rows.Next() {
				r = eventRow{}
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return nil, fmt.Errorf("clickhouse: events by key: %w", err)
				}
				if ev := decodeEvent(&r); want[ev.Key()] {
					out = append(out, ev)
				}
			}
			if err := rows.Err(); err != nil {
				rows.Close()
				return nil, fmt.Errorf("clickhouse: events by key: %w", err)
			}
			rows.Close()
		}
	}
	return out, nil
}

// CountEvents counts matching events.
func (s *Store) CountEvents(ctx context.Context, f store.EventFilter) (int64, error) {
	var n uint64
	var p params
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM `+s.events+` FINAL`+eventWhere(&p, f), p.list()...).Scan(&n); err != nil {
		return 0, fmt.Errorf("clickhouse: count events: %w", err)
	}
	return int64(n), nil
}

// LoadState returns every saved state entry whose key starts with prefix,
// ordered by key: the latest write of each key, deletions dropped.
func (s *Store) LoadState(ctx context.Context, prefix string) ([]store.StateEntry, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT key, argMax(value, seq) AS v, argMax(deleted, seq) AS d FROM `+s.db+
		`.checkpoint WHERE kind = 'state' AND startsWith(key, `+p.str(prefix)+`) GROUP BY key HAVING NOT d ORDER BY key`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: load state: %w", err)
	}
	defer rows.Close()
	var out []store.StateEntry
	for rows.Next() {
		var (
			key, value string
			deleted    bool
		)
		if err := rows.Scan(&key, &value, &deleted); err != nil {
			return nil, fmt.Errorf("clickhouse: load state: %w", err)
		}
		out = append(out, store.StateEntry{Key: key, Value: []byte(value)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: load state: %w", err)
	}
	return out, nil
}

// Pending returns up to limit alerts (limit <= 0: all) whose latest version
// receiver has not been given, oldest change first.
func (s *Store) Pending(ctx context.Context, receiver string, limit int) ([]alert.Alert, error) {
	var p params
	q := `SELECT a.cur_version, a.cur_body FROM (` + s.latestAlerts(&p, "") + `) AS a
LEFT JOIN (SELECT alert_id, max(delivered_version) AS dv FROM ` + s.db + `.outbox_delivery WHERE receiver = ` + p.str(receiver) + ` GROUP BY alert_id) AS d
ON d.alert_id = a.id
WHERE d.dv < a.cur_version
ORDER BY a.cur_seq, a.id
SETTINGS join_use_nulls = 0`
	if limit > 0 {
		q = strings.Replace(q, "\nSETTINGS", "\nLIMIT "+p.int(int64(limit))+"\nSETTINGS", 1)
	}
	out, err := s.queryAlerts(ctx, q, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: pending: %w", err)
	}
	return out, nil
}

// MarkDelivered records that receiver has been given version of alertID. A
// late mark for an older version never lowers what is recorded: the
// highest mark is the one read.
func (s *Store) MarkDelivered(ctx context.Context, receiver, alertID string, version int64) error {
	if version < 0 {
		return fmt.Errorf("clickhouse: mark delivered: negative version %d", version)
	}
	var p params
	if err := s.conn.Exec(ctx, `INSERT INTO `+s.db+`.outbox_delivery (receiver, alert_id, delivered_version) SELECT `+
		p.str(receiver)+`, `+p.str(alertID)+`, `+p.int(version), p.list()...); err != nil {
		return fmt.Errorf("clickhouse: mark delivered: %w", err)
	}
	return nil
}
