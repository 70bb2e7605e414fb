// Package sqlite is the embedded store: every access event, alert, check
// state and outbox mark in one SQLite file (plus its write-ahead log), through
// the pure-Go driver modernc.org/sqlite so that the binary stays static.
//
// The write path is built for throughput: a batch of events goes in as one
// INSERT over a JSON array, only the columns that are queried are columns,
// and telling new events from replays costs no extra round trip unless the
// batch actually held replays.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Options configure Open. The zero value (with a Path) is safe.
type Options struct {
	// Path of the database file; required. Its -wal and -shm files live
	// beside it.
	Path string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Synchronous is "full" (the default: a returned Apply survives power
	// loss) or "normal" (it survives a crash of the process, and is faster).
	Synchronous string
	// CacheMiB is the page cache per connection; 0 means 64.
	CacheMiB int
}

// Store is the SQLite store. It is safe for concurrent use; writes are
// serialised on one connection.
type Store struct {
	w   *sql.DB // the single writer connection
	r   *sql.DB // readers; WAL lets them run beside the writer
	ck  *checkpointer
	log *slog.Logger
	m   *metrics

	insertEvents *sql.Stmt
	upsertAlert  *sql.Stmt
	upsertState  *chunked
	deleteState  *chunked
}

// Open opens (creating it if needed) and migrates the database at o.Path.
// It refuses a database whose schema is newer than this binary knows.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("sqlite: Options.Path is required")
	}
	if strings.ContainsAny(o.Path, "?#") {
		// The driver splits its DSN at '?': such a path would silently name another file.
		return nil, fmt.Errorf("sqlite: path %q must not contain '?' or '#'", o.Path)
	}
	sync := strings.ToUpper(o.Synchronous)
	switch sync {
	case "":
		sync = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("sqlite: synchronous must be full or normal, not %q", o.Synchronous)
	}
	cache := o.CacheMiB
	if cache <= 0 {
		cache = 64
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	created, err := createPrivate(o.Path, log)
	if err != nil {
		return nil, err
	}

	q := url.Values{}
	if created {
		// Only an empty database can take it, before WAL mode writes its
		// header: retention then gives freed pages back (retention.go).
		q.Add("_pragma", "auto_vacuum(INCREMENTAL)")
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -cache*1024))
	q.Add("_pragma", "temp_store(MEMORY)")
	// A backstop only: the checkpointer (checkpoint.go) keeps the log short.
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", autoCheckpointPages))
	q.Set("_txlock", "immediate") // take the write lock at BEGIN: no upgrade deadlocks
	w, err := sql.Open("sqlite", o.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", o.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{w: w, log: log}
	version, applied, err := migrate(ctx, w)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", o.Path, err)
	}

	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout(10000)")
	rq.Add("_pragma", fmt.Sprintf("cache_size(%d)", -cache*1024))
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", o.Path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", o.Path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s.r = r

	if err := s.prepare(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	cq := url.Values{}
	cq.Add("_pragma", "busy_timeout(10000)")
	cq.Add("_pragma", "synchronous("+sync+")")
	ck, err := sql.Open("sqlite", o.Path+"?"+cq.Encode())
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", o.Path, err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	ck.SetConnMaxLifetime(0)
	ck.SetConnMaxIdleTime(0)
	s.ck = startCheckpointer(ck, log)
	s.m = newMetrics(o.Registerer)
	log.Info("store opened", "path", o.Path, "schema_version", version, "migrations_applied", applied, "synchronous", strings.ToLower(sync))
	return s, nil
}

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.insertEvents, insertEventsSQL(chunkRows)},
		{&s.upsertAlert, upsertAlertSQL},
	} {
		st, err := s.w.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = st
	}
	var err error
	if s.upsertState, err = prepareChunked(ctx, s.w, 2, upsertStateSQL); err != nil {
		return err
	}
	if s.deleteState, err = prepareChunked(ctx, s.w, 1, deleteStateSQL); err != nil {
		return err
	}
	return nil
}

// Ping reports whether the store can serve.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations LIMIT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the store. The last connection to close checkpoints the
// write-ahead log into the main file.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.insertEvents, s.upsertAlert} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.upsertState.close(), s.deleteState.close())
	if s.ck != nil {
		s.ck.close()
		errs = append(errs, s.ck.db.Close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// createPrivate creates the database file, empty and readable by its owner
// only (0600), when it does not exist yet: SQLite would create it 0644
// (less the umask), and it creates the -wal and -shm files with the
// database file's mode, so they are 0600 too. An existing database keeps
// its mode (someone may have chosen it), with a warning when others can
// read it. It reports whether it created the file.
func createPrivate(path string, log *slog.Logger) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return false, fmt.Errorf("sqlite: create %s: %w", path, err)
		}
		return true, nil
	case errors.Is(err, fs.ErrExist):
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the embedded store's database file is readable by others than its owner; chmod 600 it (and its -wal and -shm files)",
				"path", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
		return false, nil
	default:
		return false, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
}
