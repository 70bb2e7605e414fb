package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// eventColumns are bound per event; chunkRows events go in one multi-row
// INSERT, far under SQLite's 32,766 bound-parameter limit. Measured: binding
// values beats a JSON array (json_each hands each element back as text that
// is then parsed again per column), and one statement per chunk beats one
// per row.
const (
	eventColumns = 8
	chunkRows    = 1000
)

// insertEventsSQL returns the INSERT for n events. Rows go in in the order
// given, so the first of two events with the same key is the one stored.
func insertEventsSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (org, system, id, t, action, actor, subject, detail) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?)`)
	}
	b.WriteString(` ON CONFLICT DO NOTHING`)
	return b.String()
}

// upsertAlertSQL writes an alert and bumps its version only when its content
// changed, so that an unchanged alert is not delivered again.
const upsertAlertSQL = `INSERT INTO alerts (id, org, check_name, first_seen, last_seen, version, change_seq, updated_at, body)
VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	org = excluded.org, check_name = excluded.check_name,
	first_seen = excluded.first_seen, last_seen = excluded.last_seen,
	version = alerts.version + 1, change_seq = excluded.change_seq,
	updated_at = excluded.updated_at, body = excluded.body
WHERE alerts.body IS NOT excluded.body`

var _ store.Store = (*Store)(nil)

// Apply stores one batch as a unit (see store.Writer). evaluate, when not
// nil, is called inside the transaction with the events that were new (maybe
// none), in the order given.
func (s *Store) Apply(ctx context.Context, events []event.Event, evaluate store.EvaluateFunc) (res store.Result, err error) {
	start := time.Now()
	// Encode before taking the write lock: it needs no database.
	args, err := eventArgs(events)
	if err != nil {
		return store.Result{}, fmt.Errorf("sqlite: apply: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.Result{}, fmt.Errorf("sqlite: apply: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			res = store.Result{}
		}
	}()

	fresh, err := s.insert(ctx, tx, events, args)
	if err != nil {
		return store.Result{}, fmt.Errorf("sqlite: apply: %w", err)
	}
	res.Stored, res.Duplicates = len(fresh), len(events)-len(fresh)

	if evaluate != nil {
		eff, err := evaluate(fresh)
		if err != nil {
			return store.Result{}, fmt.Errorf("sqlite: apply: evaluate: %w", err)
		}
		if res.Alerts, err = s.writeAlerts(ctx, tx, eff.Alerts, start); err != nil {
			return store.Result{}, fmt.Errorf("sqlite: apply: %w", err)
		}
		if err = s.writeState(ctx, tx, eff.State); err != nil {
			return store.Result{}, fmt.Errorf("sqlite: apply: %w", err)
		}
	}
	if err = tx.Commit(); err != nil {
		return store.Result{}, fmt.Errorf("sqlite: apply: commit: %w", err)
	}
	s.m.applyDuration.Observe(time.Since(start).Seconds())
	s.m.stored.Add(float64(res.Stored))
	s.m.duplicates.Add(float64(res.Duplicates))
	s.m.alerts.Add(float64(res.Alerts))
	return res, nil
}

// insert stores the batch and returns the events that were new, in order.
// New rows get rowids above the largest before the insert, so a batch that
// held no replays (the common case) needs no lookup at all: the insert's
// change count says so. Only a mixed batch reads its new keys back.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, events []event.Event, args []any) ([]event.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	var maxRowid int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM events`).Scan(&maxRowid); err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	var n int64
	full := tx.StmtContext(ctx, s.insertEvents)
	for lo := 0; lo < len(events); lo += chunkRows {
		hi := min(lo+chunkRows, len(events))
		var (
			r   sql.Result
			err error
		)
		chunk := args[lo*eventColumns : hi*eventColumns]
		if hi-lo == chunkRows {
			r, err = full.ExecContext(ctx, chunk...)
		} else {
			r, err = tx.ExecContext(ctx, insertEventsSQL(hi-lo), chunk...)
		}
		if err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		c, err := r.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		n += c
	}
	switch {
	case int(n) == len(events):
		return events, nil
	case n == 0:
		return events[:0:0], nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT org, system, id FROM events WHERE rowid > ? ORDER BY rowid`, maxRowid)
	if err != nil {
		return nil, fmt.Errorf("read new event keys: %w", err)
	}
	defer rows.Close()
	// Inserted rows keep the batch order, so one forward walk pairs them
	// with the events: an event that matches the next new key is that row.
	fresh := make([]event.Event, 0, n)
	i := 0
	for rows.Next() {
		var k event.Key
		if err := rows.Scan(&k.Org, &k.System, &k.ID); err != nil {
			return nil, fmt.Errorf("read new event keys: %w", err)
		}
		for i < len(events) && events[i].Key() != k {
			i++
		}
		if i == len(events) {
			return nil, errors.New("read new event keys: a new row matches no event of the batch")
		}
		fresh = append(fresh, events[i])
		i++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read new event keys: %w", err)
	}
	if len(fresh) != int(n) {
		return nil, fmt.Errorf("read new event keys: found %d, inserted %d", len(fresh), n)
	}
	return fresh, nil
}

// writeAlerts upserts alerts and returns how many were inserted or changed.
func (s *Store) writeAlerts(ctx context.Context, tx *sql.Tx, alerts []alert.Alert, now time.Time) (int, error) {
	if len(alerts) == 0 {
		return 0, nil
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(change_seq), 0) FROM alerts`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("write alerts: %w", err)
	}
	st := tx.StmtContext(ctx, s.upsertAlert)
	written := 0
	for i := range alerts {
		a := &alerts[i]
		if a.ID == "" {
			return 0, errors.New("write alerts: alert without id")
		}
		body, err := json.Marshal(a)
		if err != nil {
			return 0, fmt.Errorf("write alerts: encode: %w", err)
		}
		seq++
		r, err := st.ExecContext(ctx, a.ID, a.Org, a.Check, timeKey(a.FirstSeen), timeKey(a.LastSeen), seq, now.UnixNano(), string(body))
		if err != nil {
			return 0, fmt.Errorf("write alerts: %w", err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("write alerts: %w", err)
		}
		written += int(n)
	}
	return written, nil
}

// stateChunk bounds one multi-row state statement (2 parameters a row).
const stateChunk = 500

// writeState applies state entries: the last entry for a key wins. Puts go in
// as multi-row upserts and deletions as IN lists, because a batch can touch
// thousands of keys and one statement per key was a tenth of Apply's time.
func (s *Store) writeState(ctx context.Context, tx *sql.Tx, state []store.StateEntry) error {
	if len(state) == 0 {
		return nil
	}
	last := make(map[string]int, len(state))
	for i, e := range state {
		last[e.Key] = i
	}
	var puts, dels []any
	for i, e := range state {
		if last[e.Key] != i {
			continue
		}
		if e.Value == nil {
			dels = append(dels, e.Key)
		} else {
			puts = append(puts, e.Key, e.Value)
		}
	}
	for lo := 0; lo < len(dels); lo += stateChunk {
		chunk := dels[lo:min(lo+stateChunk, len(dels))]
		q := `DELETE FROM check_state WHERE key IN (?` + strings.Repeat(`,?`, len(chunk)-1) + `)`
		if _, err := tx.ExecContext(ctx, q, chunk...); err != nil {
			return fmt.Errorf("write state: %w", err)
		}
	}
	for lo := 0; lo < len(puts); lo += 2 * stateChunk {
		chunk := puts[lo:min(lo+2*stateChunk, len(puts))]
		// coalesce: an empty value binds as NULL, and an empty value is a value.
		q := `INSERT INTO check_state (key, value) VALUES (?, coalesce(?, x''))` + strings.Repeat(`, (?, coalesce(?, x''))`, len(chunk)/2-1) +
			` ON CONFLICT (key) DO UPDATE SET value = excluded.value`
		if _, err := tx.ExecContext(ctx, q, chunk...); err != nil {
			return fmt.Errorf("write state: %w", err)
		}
	}
	return nil
}
