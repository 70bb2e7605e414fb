package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// Alert returns the alert with id, or store.ErrNotFound.
func (s *Store) Alert(ctx context.Context, id string) (alert.Alert, error) {
	var (
		version int64
		body    string
	)
	err := s.r.QueryRowContext(ctx, `SELECT version, body FROM alerts WHERE id = ?`, id).Scan(&version, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Alert{}, fmt.Errorf("sqlite: alert %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return alert.Alert{}, fmt.Errorf("sqlite: alert: %w", err)
	}
	return decodeAlert(version, body)
}

func decodeAlert(version int64, body string) (alert.Alert, error) {
	var a alert.Alert
	if err := storedjson.Unmarshal([]byte(body), &a); err != nil {
		return alert.Alert{}, fmt.Errorf("sqlite: decode stored alert: %w", err)
	}
	a.Version = version
	return a, nil
}

// Alerts returns matching alerts ordered by FirstSeen, then ID.
func (s *Store) Alerts(ctx context.Context, f store.AlertFilter) ([]alert.Alert, error) {
	var (
		where []string
		args  []any
	)
	if f.Org != "" {
		where, args = append(where, "org = ?"), append(args, f.Org)
	}
	if f.Check != "" {
		where, args = append(where, "check_name = ?"), append(args, f.Check)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "last_seen >= ?"), append(args, timeKey(f.Since))
	}
	q := `SELECT version, body FROM alerts` + whereClause(where) + ` ORDER BY first_seen, id`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	return s.queryAlerts(ctx, q, args...)
}

func (s *Store) queryAlerts(ctx context.Context, q string, args ...any) ([]alert.Alert, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: alerts: %w", err)
	}
	defer rows.Close()
	var out []alert.Alert
	for rows.Next() {
		var (
			version int64
			body    string
		)
		if err := rows.Scan(&version, &body); err != nil {
			return nil, fmt.Errorf("sqlite: alerts: %w", err)
		}
		a, err := decodeAlert(version, body)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: alerts: %w", err)
	}
	return out, nil
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func eventWhere(f store.EventFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.Org != "" {
		where, args = append(where, "org = ?"), append(args, f.Org)
	}
	if f.ActorID != "" {
		where, args = append(where, "actor = ?"), append(args, f.ActorID)
	}
	if !f.From.IsZero() {
		where, args = append(where, "t >= ?"), append(args, timeKey(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "t < ?"), append(args, timeKey(f.To))
	}
	return whereClause(where), args
}

// ScanEvents calls fn for each matching event, ordered by time then key
// (org, system, id). An error from fn stops the scan and is returned.
func (s *Store) ScanEvents(ctx context.Context, f store.EventFilter, fn func(event.Event) error) error {
	where, args := eventWhere(f)
	rows, err := s.r.QueryContext(ctx, `SELECT org, system, id, t, action, actor, subject, detail FROM events`+where+
		` ORDER BY t, org, system, id`, args...)
	if err != nil {
		return fmt.Errorf("sqlite: scan events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			org, system, id, action, actor, subject, det string
			t                                            int64
		)
		if err := rows.Scan(&org, &system, &id, &t, &action, &actor, &subject, &det); err != nil {
			return fmt.Errorf("sqlite: scan events: %w", err)
		}
		e, err := decodeEvent(org, system, id, t, action, actor, subject, det)
		if err != nil {
			return fmt.Errorf("sqlite: scan events: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: scan events: %w", err)
	}
	return nil
}

// CountEvents counts matching events.
func (s *Store) CountEvents(ctx context.Context, f store.EventFilter) (int64, error) {
	where, args := eventWhere(f)
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count events: %w", err)
	}
	return n, nil
}

// LoadState returns every saved state entry whose key starts with prefix,
// ordered by key.
func (s *Store) LoadState(ctx context.Context, prefix string) ([]store.StateEntry, error) {
	q, args := `SELECT key, value FROM check_state WHERE key >= ?`, []any{prefix}
	if hi, ok := prefixEnd(prefix); ok {
		q, args = q+` AND key < ?`, append(args, hi)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY key`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load state: %w", err)
	}
	defer rows.Close()
	var out []store.StateEntry
	for rows.Next() {
		var e store.StateEntry
		if err := rows.Scan(&e.Key, &e.Value); err != nil {
			return nil, fmt.Errorf("sqlite: load state: %w", err)
		}
		if e.Value == nil {
			e.Value = []byte{} // stored empty; nil would read as "delete"
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: load state: %w", err)
	}
	return out, nil
}

// prefixEnd returns the least string greater than every string that starts
// with prefix (keys compare bytewise), or false when there is none.
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Pending returns up to limit alerts (limit <= 0: all) whose current version
// receiver has not been given, oldest change first.
func (s *Store) Pending(ctx context.Context, receiver string, limit int) ([]alert.Alert, error) {
	q := `SELECT a.version, a.body FROM alerts a
LEFT JOIN outbox_delivery d ON d.receiver = ? AND d.alert_id = a.id
WHERE d.delivered_version IS NULL OR d.delivered_version < a.version
ORDER BY a.change_seq, a.id`
	args := []any{receiver}
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	out, err := s.queryAlerts(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending: %w", err)
	}
	return out, nil
}

// MarkDelivered records that receiver has been given version of alertID. A
// late mark for an older version never lowers what is recorded.
func (s *Store) MarkDelivered(ctx context.Context, receiver, alertID string, version int64) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO outbox_delivery (receiver, alert_id, delivered_version) VALUES (?, ?, ?)
ON CONFLICT (receiver, alert_id) DO UPDATE SET delivered_version = max(delivered_version, excluded.delivered_version)`,
		receiver, alertID, version)
	if err != nil {
		return fmt.Errorf("sqlite: mark delivered: %w", err)
	}
	return nil
}
