package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrSchemaTooNew is returned by Open for a database written by a newer
// dpiawatch: opening it could corrupt data this binary does not understand.
var ErrSchemaTooNew = errors.New("database schema is newer than this dpiawatch knows; upgrade dpiawatch")

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations, ordered by version. Files are
// named NNNN_name.sql.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations must be numbered 1, 2, 3 …: found %04d at position %d", m.version, i+1)
		}
	}
	return ms, nil
}

// migrate brings the schema up to date in one transaction and returns the
// resulting version and how many migrations it applied.
func migrate(ctx context.Context, db *sql.DB) (version, applied int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err = tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err = tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if current > len(ms) {
		return 0, 0, fmt.Errorf("%w (database at version %d, this binary knows up to %d)", ErrSchemaTooNew, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err = tx.ExecContext(ctx, m.sql); err != nil {
			return 0, 0, fmt.Errorf("migrate: %04d_%s: %w", m.version, m.name, err)
		}
		if _, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return 0, 0, fmt.Errorf("migrate: %w", err)
		}
		applied++
	}
	if err = tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return len(ms), applied, nil
}
