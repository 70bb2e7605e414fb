package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

var _ store.ReferenceSnapshots = (*Store)(nil)

// SaveReference records that d was put in force at loadedAt: the data once
// per distinct content, a load row per change, in one transaction.
func (s *Store) SaveReference(ctx context.Context, loadedAt time.Time, d *reference.Data) error {
	id, err := store.ReferenceID(d)
	if err != nil {
		return fmt.Errorf("sqlite: save reference: %w", err)
	}
	body, err := storedjson.Marshal(d)
	if err != nil {
		return fmt.Errorf("sqlite: save reference: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var newest string
		err := tx.QueryRowContext(ctx, `SELECT snapshot FROM reference_loads ORDER BY loaded_at DESC, rowid DESC LIMIT 1`).Scan(&newest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if newest == id {
			return nil // unchanged since the last load
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reference_snapshots (id, body) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, string(body)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO reference_loads (loaded_at, snapshot) VALUES (?, ?)`, loadedAt.UnixNano(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: save reference: %w", err)
	}
	return nil
}

// ReferenceAt returns the snapshot in force at t, or store.ErrNotFound.
func (s *Store) ReferenceAt(ctx context.Context, t time.Time) (store.ReferenceSnapshot, error) {
	row := s.r.QueryRowContext(ctx, `SELECT l.loaded_at, l.snapshot, s.body FROM reference_loads l JOIN reference_snapshots s ON s.id = l.snapshot
WHERE l.loaded_at <= ? ORDER BY l.loaded_at DESC, l.rowid DESC LIMIT 1`, t.UnixNano())
	snap, err := scanReference(row)
	if err != nil {
		return snap, fmt.Errorf("sqlite: reference at: %w", err)
	}
	return snap, nil
}

// ReferenceByID returns the snapshot with id, loaded when first put in
// force, or store.ErrNotFound.
func (s *Store) ReferenceByID(ctx context.Context, id string) (store.ReferenceSnapshot, error) {
	row := s.r.QueryRowContext(ctx, `SELECT min(l.loaded_at), s.id, s.body FROM reference_snapshots s JOIN reference_loads l ON l.snapshot = s.id
WHERE s.id = ? GROUP BY s.id`, id)
	snap, err := scanReference(row)
	if err != nil {
		return snap, fmt.Errorf("sqlite: reference %s: %w", id, err)
	}
	return snap, nil
}

// scanReference reads (loaded_at, id, body); store.ErrNotFound when there
// is no row.
func scanReference(row *sql.Row) (store.ReferenceSnapshot, error) {
	var (
		snap   store.ReferenceSnapshot
		loaded int64
		body   string
	)
	err := row.Scan(&loaded, &snap.ID, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return snap, store.ErrNotFound
	}
	if err != nil {
		return snap, err
	}
	snap.LoadedAt = time.Unix(0, loaded).UTC()
	snap.Data = &reference.Data{}
	if err := storedjson.Unmarshal([]byte(body), snap.Data); err != nil {
		return store.ReferenceSnapshot{}, fmt.Errorf("decode reference snapshot: %w", err)
	}
	return snap, nil
}
