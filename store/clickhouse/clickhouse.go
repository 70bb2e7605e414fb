// Package clickhouse is the store for large organisations: access events,
// alerts, check state, outbox marks, alert delivery's triage, silences and
// audit trail, and reference-data snapshots in ClickHouse, through
// github.com/ClickHouse/clickhouse-go/v2 (native protocol, or HTTP), with the
// schema kept by versioned migrations (see Schema and Migrate).
//
// # Exactly-once in effect without transactions
//
// ClickHouse has no multi-statement transactions, yet store.Writer's Apply
// must store a batch's new events, the alerts and the check state that
// evaluating them produced as one unit. Apply does it in four steps:
//
//  1. Which events are new: the batch's keys are looked up (by the
//     by_key projection, chunked IN lists) in events, and the batches those
//     rows belong to in checkpoint. An event counts as stored only if the
//     batch that wrote it is committed.
//  2. evaluate runs on the new events, with nothing written yet: an error
//     or a cancelled context here leaves the store untouched.
//  3. Events are inserted with insert_deduplication_token set to the batch
//     token — the Kafka positions of the batch (topic:partition:first-last,
//     when the caller gave them to Apply) and a hash of the new
//     events' keys — and the token in each row. Alerts are inserted as new
//     versions (ReplacingMergeTree by version), only those whose content
//     changed.
//  4. The commit: the check state and one commit row naming the token go in
//     one insert into checkpoint, an unpartitioned table, so one part: it
//     lands whole or not at all.
//
// A crash or error between steps 3 and 4 leaves rows without a commit. The
// caller retries the batch (ingest retries Apply with backoff, and Kafka
// redelivers what was not committed after a crash), the daemon having reset
// its checks to the last committed state. The retry finds the events' batch
// uncommitted, so they are new again; evaluate sees exactly what it saw the
// first time, from the same state, so it returns the same alerts (the same
// content, so no new version) and the same state. The events insert carries
// the same token, so ClickHouse drops it within the dedup window; if the
// batch was cut differently the token differs and the same rows go in
// again, which ReplacingMergeTree folds (same sorting key) and FINAL hides
// at once. Then the commit lands. So each event is stored once, evaluated
// once into the durable state, and alerted once — exactly once in effect.
// What a failed Apply can leave visible until its retry is events and
// alert versions that the retry writes identically anyway; check state and
// "is this event new" are never affected by an uncommitted batch.
//
// Rollups (events_hourly) are fed by a materialized view at insert time, so
// the rare re-insert under a different token is counted twice there: the
// rollups serve dashboards, and evidence queries read events.
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/store"
)

// Options configure Open. The zero value of every field but Addr (or Conn)
// is a safe default.
type Options struct {
	// Addr lists host:port of the servers (the native port, 9000/9440, or
	// the HTTP port, 8123/8443, to match Protocol).
	Addr []string
	// Protocol is "native" (the default) or "http".
	Protocol string
	Username string
	Password string
	// TLS, when not nil, is used for every connection.
	TLS         *tls.Config
	DialTimeout time.Duration // default 10s
	ReadTimeout time.Duration // default 5m
	// Conn, when set, is used instead of dialling Addr; Close does not close it.
	Conn clickhouse.Conn

	// Schema names the database and cluster and sets the dedup window.
	Schema Schema
	// Retention is how long each org's events are kept (its DPIA's
	// retention schedule); DefaultRetention applies to other orgs. Zero
	// keeps events. Whole days; applied by TTL to rows written from now on.
	Retention        map[string]time.Duration
	DefaultRetention time.Duration
	// SkipMigrate makes Open refuse a database whose schema is behind,
	// instead of migrating it (for operators who run `dpiawatch migrate`).
	SkipMigrate bool

	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Store is the ClickHouse store. It is safe for concurrent use; Apply calls
// are serialised (one batch at a time, as ingest gives them).
type Store struct {
	conn     clickhouse.Conn
	ownConn  bool
	db       string
	events   string // db.events
	schema   Schema
	log      *slog.Logger
	m        *metrics
	retDays  map[string]uint16
	defDays  uint16
	applyMu  sync.Mutex
	seqMu    sync.Mutex
	lastSeq  uint64
	nowNanos func() int64
	// beforeStep, when set (tests), runs before each write step of Apply
	// and may fail it: a crash between steps.
	beforeStep func(step string) error
}

var _ store.Store = (*Store)(nil)

// Open connects, migrates (unless SkipMigrate) and returns the store. It
// refuses a database whose schema is newer than this binary knows.
func Open(ctx context.Context, o Options) (*Store, error) {
	schema := o.Schema.withDefaults()
	if err := schema.Validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		conn: o.Conn, db: schema.Database, events: schema.Database + ".events", schema: schema,
		log: log, retDays: map[string]uint16{}, nowNanos: func() int64 { return time.Now().UnixNano() },
	}
	var err error
	if s.defDays, err = days(o.DefaultRetention); err != nil {
		return nil, err
	}
	for org, d := range o.Retention {
		if s.retDays[org], err = days(d); err != nil {
			return nil, fmt.Errorf("%w (org %s)", err, org)
		}
	}
	if s.conn == nil {
		if s.conn, err = dial(o); err != nil {
			return nil, err
		}
		s.ownConn = true
	}
	fail := func(err error) (*Store, error) {
		if s.ownConn {
			_ = s.conn.Close()
		}
		return nil, err
	}
	var res MigrateResult
	if o.SkipMigrate {
		v, err := SchemaVersion(ctx, s.conn, s.db)
		if err != nil {
			return fail(err)
		}
		switch {
		case v > LatestVersion():
			return fail(fmt.Errorf("%w (database at version %d, this binary knows up to %d)", ErrSchemaTooNew, v, LatestVersion()))
		case v < LatestVersion():
			return fail(fmt.Errorf("clickhouse: schema at version %d, this binary needs %d: run dpiawatch migrate", v, LatestVersion()))
		}
		res.Version = v
	} else if res, err = Migrate(ctx, s.conn, schema); err != nil {
		return fail(err)
	}
	// Sequence numbers must stay above those already stored, whatever the
	// clock did since.
	var last uint64
	if err := s.conn.QueryRow(ctx, `SELECT greatest((SELECT max(seq) FROM `+s.db+`.checkpoint), (SELECT max(change_seq) FROM `+s.db+`.alerts), `+
		`(SELECT max(seq) FROM `+s.db+`.audit), (SELECT max(seq) FROM `+s.db+`.message_refs))`).Scan(&last); err != nil {
		return fail(fmt.Errorf("clickhouse: open: %w", err))
	}
	s.lastSeq = last
	s.m = newMetrics(o.Registerer)
	log.Info("store opened", "engine", "clickhouse", "database", s.db, "cluster", schema.Cluster, "schema_version", res.Version, "migrations_applied", res.Applied)
	return s, nil
}

func days(d time.Duration) (uint16, error) {
	if d < 0 {
		return 0, errors.New("clickhouse: retention must not be negative")
	}
	n := (d + 24*time.Hour - 1) / (24 * time.Hour)
	if n > 65535 {
		return 0, fmt.Errorf("clickhouse: retention %s is longer than 65535 days", d)
	}
	return uint16(n), nil
}

// Dial opens a connection pool to o.Addr as Open does, for tools that run
// statements of their own beside a store (the synthetic history fill of
// `dpiawatch bench history`). The caller closes it.
func Dial(o Options) (clickhouse.Conn, error) { return dial(o) }

// dial opens a connection pool to o.Addr.
func dial(o Options) (clickhouse.Conn, error) {
	if len(o.Addr) == 0 {
		return nil, errors.New("clickhouse: Options.Addr is required")
	}
	proto := clickhouse.Native
	switch strings.ToLower(o.Protocol) {
	case "", "native":
	case "http":
		proto = clickhouse.HTTP
	default:
		return nil, fmt.Errorf("clickhouse: protocol must be native or http, not %q", o.Protocol)
	}
	dialTimeout, readTimeout := o.DialTimeout, o.ReadTimeout
	if dialTimeout <= 0 {
		dialTimeout = 10 * time.Second
	}
	if readTimeout <= 0 {
		readTimeout = 5 * time.Minute
	}
	opts := &clickhouse.Options{
		Addr:     o.Addr,
		Protocol: proto,
		// No database here: every statement names its tables in full, so
		// the connection works before the database exists (migrate).
		Auth:             clickhouse.Auth{Username: o.Username, Password: o.Password},
		TLS:              o.TLS,
		DialTimeout:      dialTimeout,
		ReadTimeout:      readTimeout,
		MaxOpenConns:     8,
		MaxIdleConns:     4,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	}
	if proto == clickhouse.Native {
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open: %w", err)
	}
	return conn, nil
}

// Ping reports whether the store can serve.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("clickhouse: ping: %w", err)
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM `+s.db+`.schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("clickhouse: ping: %w", err)
	}
	return nil
}

// Close closes the connection pool, unless it was given in Options.Conn.
func (s *Store) Close() error {
	if !s.ownConn {
		return nil
	}
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("clickhouse: close: %w", err)
	}
	return nil
}

// nextSeq returns a number above every one returned before: it orders
// check-state writes and alert changes. Unix nanoseconds keep it roughly
// comparable across daemons and restarts.
func (s *Store) nextSeq() uint64 {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	n := uint64(max(s.nowNanos(), 0))
	if n <= s.lastSeq {
		n = s.lastSeq + 1
	}
	s.lastSeq = n
	return n
}
