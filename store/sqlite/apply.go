package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
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
//
// OR IGNORE rather than ON CONFLICT DO NOTHING: the upsert clause leaves the
// NOT NULL constraints able to abort the statement midway, and a multi-row
// statement that may abort makes SQLite copy every page it touches into a
// statement journal first (a seventh of Apply's time, measured). OR IGNORE
// can never abort, and it skips exactly the same rows here: every bound value
// is a Go string or int64, never NULL, so only the key can conflict.
func insertEventsSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR IGNORE INTO events (org, system, id, t, action, actor, subject, detail) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?)`)
	}
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
// none), in the order given. The embedded store keeps no Kafka positions:
// positions is only checked.
func (s *Store) Apply(ctx context.Context, events []event.Event, positions []store.Position, evaluate store.EvaluateFunc) (res store.Result, err error) {
	if err := store.CheckPositions(len(events), positions); err != nil {
		return store.Result{}, fmt.Errorf("sqlite: apply: %w", err)
	}
	start := time.Now()
	// Encode on another goroutine, chunk by chunk, so that encoding
	// overlaps the inserts instead of adding to the serial write path.
	enc := encodeChunks(events)
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

	fresh, isNew, err := s.insert(ctx, tx, events, enc)
	if err != nil {
		return store.Result{}, fmt.Errorf("sqlite: apply: %w", err)
	}
	res.Stored = len(fresh)
	if len(fresh) < len(events) {
		if res.Duplicates, res.Conflicts, err = s.splitDuplicates(ctx, tx, events, isNew); err != nil {
			return store.Result{}, fmt.Errorf("sqlite: apply: %w", err)
		}
	}

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
	s.ck.notify()
	s.m.applyDuration.Observe(time.Since(start).Seconds())
	s.m.stored.Add(float64(res.Stored))
	s.m.duplicates.Add(float64(res.Duplicates))
	s.m.alerts.Add(float64(res.Alerts))
	return res, nil
}

// insert stores the batch and returns the events that were new, in order,
// and which of the batch's they were (isNew, nil when all were). New rows
// get rowids above the largest before the insert, so a batch that held no
// replays (the common case) needs no lookup at all: the insert's change
// count says so. Only a mixed batch reads its new keys back.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, events []event.Event, enc *encoded) (fresh []event.Event, isNew []bool, err error) {
	if len(events) == 0 {
		return nil, nil, nil
	}
	var maxRowid int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM events`).Scan(&maxRowid); err != nil {
		return nil, nil, fmt.Errorf("insert events: %w", err)
	}
	var n int64
	full := tx.StmtContext(ctx, s.insertEvents)
	for lo := 0; lo < len(events); lo += chunkRows {
		hi := min(lo+chunkRows, len(events))
		var (
			r   sql.Result
			err error
		)
		if err := <-enc.ready; err != nil {
			return nil, nil, err
		}
		chunk := enc.args[lo*eventColumns : hi*eventColumns]
		if hi-lo == chunkRows {
			r, err = full.ExecContext(ctx, chunk...)
		} else {
			r, err = tx.ExecContext(ctx, insertEventsSQL(hi-lo), chunk...)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("insert events: %w", err)
		}
		c, err := r.RowsAffected()
		if err != nil {
			return nil, nil, fmt.Errorf("insert events: %w", err)
		}
		n += c
	}
	switch {
	case int(n) == len(events):
		return events, nil, nil
	case n == 0:
		return events[:0:0], make([]bool, len(events)), nil
	}
	isNew = make([]bool, len(events))
	rows, err := tx.QueryContext(ctx, `SELECT org, system, id FROM events WHERE rowid > ? ORDER BY rowid`, maxRowid)
	if err != nil {
		return nil, nil, fmt.Errorf("read new event keys: %w", err)
	}
	defer rows.Close()
	// Inserted rows keep the batch order, so one forward walk pairs them
	// with the events: an event that matches the next new key is that row.
	fresh = make([]event.Event, 0, n)
	i := 0
	for rows.Next() {
		var k event.Key
		if err := rows.Scan(&k.Org, &k.System, &k.ID); err != nil {
			return nil, nil, fmt.Errorf("read new event keys: %w", err)
		}
		for i < len(events) && events[i].Key() != k {
			i++
		}
		if i == len(events) {
			return nil, nil, errors.New("read new event keys: a new row matches no event of the batch")
		}
		fresh = append(fresh, events[i])
		isNew[i] = true
		i++
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read new event keys: %w", err)
	}
	if len(fresh) != int(n) {
		return nil, nil, fmt.Errorf("read new event keys: found %d, inserted %d", len(fresh), n)
	}
	return fresh, isNew, nil
}

// splitDuplicates tells the batch's duplicates from its conflicts
// (store.SplitDuplicates) by reading, inside the transaction, the event kept
// under each key the batch did not store: stored before, or by this insert
// as the first occurrence. Batches without replays never get here.
func (s *Store) splitDuplicates(ctx context.Context, tx *sql.Tx, events []event.Event, isNew []bool) (int, []store.Conflict, error) {
	seen := map[event.Key]bool{}
	var keys []event.Key
	for i := range events {
		if k := events[i].Key(); !isNew[i] && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	stored, err := eventsByKey(ctx, tx, keys)
	if err != nil {
		return 0, nil, fmt.Errorf("read kept events: %w", err)
	}
	kept := make(map[event.Key]event.Event, len(stored))
	for _, e := range stored {
		kept[e.Key()] = e
	}
	return store.SplitDuplicates(events, isNew, kept)
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
		body, err := storedjson.Marshal(a)
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

// upsertStateSQL writes n check-state entries (2 parameters each), stamped
// with the wall clock for retention (0005_retention.sql).
// coalesce: an empty value binds as NULL, and an empty value is a value.
func upsertStateSQL(n int) string {
	const row = `(?, coalesce(?, x''), CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000000)`
	return `INSERT INTO check_state (key, value, written_at) VALUES ` + row + strings.Repeat(`, `+row, n-1) +
		` ON CONFLICT (key) DO UPDATE SET value = excluded.value, written_at = excluded.written_at`
}

// deleteStateSQL deletes n check-state keys.
func deleteStateSQL(n int) string {
	return `DELETE FROM check_state WHERE key IN (?` + strings.Repeat(`,?`, n-1) + `)`
}

// writeState applies state entries: the last entry for a key wins. Puts go in
// as multi-row upserts and deletions as IN lists, because a batch can touch
// thousands of keys and one statement per key was a tenth of Apply's time.
// Keys go in sorted, so that successive rows land on the same pages.
func (s *Store) writeState(ctx context.Context, tx *sql.Tx, state []store.StateEntry) error {
	if len(state) == 0 {
		return nil
	}
	last := make(map[string]int, len(state))
	for i, e := range state {
		last[e.Key] = i
	}
	keep := make([]int, 0, len(last))
	for i, e := range state {
		if last[e.Key] == i {
			keep = append(keep, i)
		}
	}
	slices.SortFunc(keep, func(a, b int) int { return strings.Compare(state[a].Key, state[b].Key) })
	var puts, dels []any
	for _, i := range keep {
		if e := state[i]; e.Value == nil {
			dels = append(dels, e.Key)
		} else {
			puts = append(puts, e.Key, e.Value)
		}
	}
	if err := s.deleteState.exec(ctx, tx, dels); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := s.upsertState.exec(ctx, tx, puts); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
