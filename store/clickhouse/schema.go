package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Schema says how the DDL is generated. The zero value (with a Database)
// describes one server.
type Schema struct {
	// Database holds every table; default "dpiawatch".
	Database string
	// Cluster, when set, makes every table Replicated on that named cluster
	// (ON CLUSTER DDL, Keeper paths from the {shard} and {replica} macros),
	// and puts events behind a Distributed table sharded by org and actor.
	// The small tables (alerts, check state, outbox) are replicated to
	// every node rather than sharded, so any node can serve them.
	Cluster string
	// DedupWindow is how many recent insert blocks of events the server
	// remembers to drop a retried insert with the same
	// insert_deduplication_token; default 10000 (at 5,000 events a batch,
	// the last 50 million events).
	DedupWindow int
	// Readers get row policies: each account sees its org only.
	Readers []Reader
}

// Reader is a ClickHouse account (created by the operator) that may read
// one org's rows only.
type Reader struct {
	User string
	Org  string
}

// DefaultDatabase is used when Schema.Database is empty.
const DefaultDatabase = "dpiawatch"

// ErrSchemaTooNew is returned when the database was migrated by a newer
// dpiawatch: writing to it could corrupt data this binary does not
// understand.
var ErrSchemaTooNew = errors.New("clickhouse schema is newer than this dpiawatch knows; upgrade dpiawatch")

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (s Schema) withDefaults() Schema {
	if s.Database == "" {
		s.Database = DefaultDatabase
	}
	if s.DedupWindow <= 0 {
		s.DedupWindow = 10000
	}
	return s
}

// Validate reports names that cannot be used in DDL. Identifiers are
// checked, not quoted, so that generated SQL stays readable.
func (s Schema) Validate() error {
	s = s.withDefaults()
	if !identRE.MatchString(s.Database) {
		return fmt.Errorf("clickhouse: database %q is not a plain identifier", s.Database)
	}
	if s.Cluster != "" && !identRE.MatchString(s.Cluster) {
		return fmt.Errorf("clickhouse: cluster %q is not a plain identifier", s.Cluster)
	}
	for _, r := range s.Readers {
		if !identRE.MatchString(r.User) {
			return fmt.Errorf("clickhouse: reader account %q is not a plain identifier", r.User)
		}
		if r.Org == "" {
			return fmt.Errorf("clickhouse: reader account %s has no org", r.User)
		}
	}
	return nil
}

// migration is one schema version: statements run in order. Every
// statement is idempotent (IF NOT EXISTS) so that a migration interrupted
// half-way is simply run again: ClickHouse DDL is not transactional.
type migration struct {
	version int
	name    string
	stmts   func(s Schema) []string
}

// migrations are the schema's history. Never edit a released one: add the
// next.
var migrations = []migration{
	{1, "init", migrateInit},
	{2, "hourly_rollup", migrateRollup},
	{3, "alerting", migrateAlerting},
	{4, "reference", migrateReference},
	{5, "web_routine_audit", migrateWebRoutineAudit},
	{6, "alert_reference", migrateAlertReference},
	{7, "web_view_rows", migrateWebViewRows},
	{8, "outbox_failure", migrateOutboxFailure},
	{9, "retention", migrateRetention},
	{10, "actor_kind", migrateActorKind},
	{11, "triage_action_notes", migrateTriageActionNotes},
}

func (s Schema) onCluster() string {
	if s.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + s.Cluster
}

// engine returns the table engine: plain on one server, Replicated on a
// cluster. shared tables use one Keeper path for the whole cluster (every
// node holds all of it); others one path per shard.
func (s Schema) engine(kind, table, args string, shared bool) string {
	if s.Cluster == "" {
		return kind + "(" + args + ")"
	}
	shard := "{shard}"
	if shared {
		shard = "all"
	}
	path := fmt.Sprintf("'/clickhouse/tables/%s/%s/%s', '{replica}'", shard, s.Database, table)
	if args != "" {
		path += ", " + args
	}
	return "Replicated" + kind + "(" + path + ")"
}

// eventsTable is where events are written: the Distributed table's local
// shard table on a cluster.
func (s Schema) eventsLocal() string {
	if s.Cluster == "" {
		return "events"
	}
	return "events_local"
}

func migrateInit(s Schema) []string {
	db, on := s.Database, s.onCluster()
	dedup := "non_replicated_deduplication_window"
	if s.Cluster != "" {
		dedup = "replicated_deduplication_window"
	}
	stmts := []string{
		// One row per access event, ordered for the dashboards' and
		// evidence queries: org, then actor, then time. ReplacingMergeTree
		// folds the one duplicate a failed-then-retried batch can leave (see
		// the package doc); readers use FINAL. by_key answers "is this event
		// stored?" by primary key; by_subject serves per-child evidence.
		// retention_days is the org's retention schedule at write time (0:
		// keep), which the TTL applies.
		`CREATE TABLE IF NOT EXISTS ` + db + `.` + s.eventsLocal() + on + ` (
	org            LowCardinality(String),
	system         LowCardinality(String),
	id             String CODEC(ZSTD(1)),
	t              DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
	far_sec        Int64 CODEC(ZSTD(1)),
	far_nsec       UInt32 CODEC(ZSTD(1)),
	tz_offset      Int32 CODEC(ZSTD(1)),
	action         LowCardinality(String),
	actor          String CODEC(ZSTD(1)),
	actor_role     LowCardinality(String),
	actor_team     LowCardinality(String),
	actor_org      LowCardinality(String),
	subject        String CODEC(ZSTD(1)),
	sensitivity    Array(LowCardinality(String)),
	record_type    LowCardinality(String),
	record_id      String CODEC(ZSTD(1)),
	session_id     String CODEC(ZSTD(1)),
	device         LowCardinality(String),
	ip             String CODEC(ZSTD(1)),
	mfa            Nullable(Bool),
	outcome        LowCardinality(String),
	src_topic      LowCardinality(String),
	src_partition  Int32 CODEC(ZSTD(1)),
	src_offset     Int64 CODEC(Delta, ZSTD(1)),
	batch          String CODEC(ZSTD(1)),
	retention_days UInt16,
	inserted_at    DateTime DEFAULT now() CODEC(Delta, ZSTD(1)),
	INDEX subject_bf subject TYPE bloom_filter GRANULARITY 4,
	PROJECTION by_key (SELECT org, system, id, batch ORDER BY org, system, id),
	PROJECTION by_subject (SELECT _part_offset ORDER BY org, subject, t)
) ENGINE = ` + s.engine("ReplacingMergeTree", s.eventsLocal(), "", false) + `
PARTITION BY toYYYYMM(t)
ORDER BY (org, actor, t, system, id)
TTL toDateTime(t) + toIntervalDay(retention_days) WHERE retention_days > 0
SETTINGS ` + dedup + ` = ` + fmt.Sprint(s.DedupWindow) + `, deduplicate_merge_projection_mode = 'rebuild'`,
	}
	if s.Cluster != "" {
		stmts = append(stmts, `CREATE TABLE IF NOT EXISTS `+db+`.events`+on+` AS `+db+`.events_local
ENGINE = Distributed(`+s.Cluster+`, `+db+`, events_local, cityHash64(org, actor))`)
	}
	stmts = append(stmts,
		// One row per alert version; the highest version is the alert.
		`CREATE TABLE IF NOT EXISTS `+db+`.alerts`+on+` (
	id         String,
	org        LowCardinality(String),
	check_name LowCardinality(String),
	pattern    LowCardinality(String),
	severity   LowCardinality(String),
	dpia       LowCardinality(String),
	actor      String,
	subject    String,
	first_seen DateTime64(9, 'UTC'),
	last_seen  DateTime64(9, 'UTC'),
	version    UInt64,
	change_seq UInt64,
	updated_at DateTime64(3, 'UTC'),
	batch      String,
	body       String CODEC(ZSTD(3))
) ENGINE = `+s.engine("ReplacingMergeTree", "alerts", "version", true)+`
ORDER BY (org, id)`,
		// Which version of each alert each receiver has been given; the
		// highest mark wins, so a late mark never lowers it.
		`CREATE TABLE IF NOT EXISTS `+db+`.outbox_delivery`+on+` (
	receiver          LowCardinality(String),
	alert_id          String,
	delivered_version UInt64
) ENGINE = `+s.engine("ReplacingMergeTree", "outbox_delivery", "delivered_version", true)+`
ORDER BY (receiver, alert_id)`,
		// Check state and batch commits. One Apply writes its state rows and
		// its commit row in one insert into this unpartitioned table: one
		// part, atomic. It is the commit point of the batch.
		`CREATE TABLE IF NOT EXISTS `+db+`.checkpoint`+on+` (
	kind       Enum8('state' = 1, 'commit' = 2),
	key        String,
	value      String,
	deleted    Bool,
	seq        UInt64,
	written_at DateTime DEFAULT now()
) ENGINE = `+s.engine("ReplacingMergeTree", "checkpoint", "seq", true)+`
ORDER BY (kind, key)`,
	)
	return stmts
}

func migrateRollup(s Schema) []string {
	db, on := s.Database, s.onCluster()
	target := "events_hourly"
	stmts := []string{
		// Events per org, team, actor, action and hour, for dashboards that
		// must not scan years of events.
		`CREATE TABLE IF NOT EXISTS ` + db + `.` + target + on + ` (
	org            LowCardinality(String),
	hour           DateTime('UTC'),
	actor_team     LowCardinality(String),
	actor          String,
	action         LowCardinality(String),
	outcome        LowCardinality(String),
	events         SimpleAggregateFunction(sum, UInt64),
	subjects       AggregateFunction(uniq, String),
	retention_days SimpleAggregateFunction(max, UInt16)
) ENGINE = ` + s.engine("AggregatingMergeTree", target, "", false) + `
PARTITION BY toYYYYMM(hour)
ORDER BY (org, hour, actor_team, actor, action, outcome)
TTL hour + toIntervalDay(retention_days) WHERE retention_days > 0`,
		`CREATE MATERIALIZED VIEW IF NOT EXISTS ` + db + `.events_hourly_mv` + on + ` TO ` + db + `.` + target + ` AS
SELECT org, toStartOfHour(toDateTime(t, 'UTC')) AS hour, actor_team, actor, action, outcome,
	toUInt64(count()) AS events, uniqState(subject) AS subjects, max(retention_days) AS retention_days
FROM ` + db + `.` + s.eventsLocal() + `
GROUP BY org, hour, actor_team, actor, action, outcome`,
	}
	return stmts
}

func migrateAlerting(s Schema) []string {
	db, on := s.Database, s.onCluster()
	dedup := "non_replicated_deduplication_window"
	if s.Cluster != "" {
		dedup = "replicated_deduplication_window"
	}
	return []string{
		// Where each receiver posted its message about an alert. The highest
		// version wins a merge, so a late write of an older version never
		// replaces a newer one; readers take the highest (version, seq).
		`CREATE TABLE IF NOT EXISTS ` + db + `.message_refs` + on + ` (
	receiver LowCardinality(String),
	alert_id String,
	channel  String,
	ts       String,
	version  UInt64,
	digest   Bool,
	seq      UInt64
) ENGINE = ` + s.engine("ReplacingMergeTree", "message_refs", "version", true) + `
ORDER BY (receiver, alert_id)`,
		// Every change a person makes, one row each: a triage decision is
		// its own audit row (kind 'triage'), a silence change carries the
		// whole silence (kind 'silence'). One row is one insert is one part,
		// so a change and its audit entry land together or not at all —
		// without transactions. seq orders the trail; a retried insert has
		// the same seq and deduplication token, and FINAL folds any rest.
		// org is the alert's org for triages (row policies), empty otherwise.
		`CREATE TABLE IF NOT EXISTS ` + db + `.audit` + on + ` (
	seq        UInt64,
	at         DateTime64(9, 'UTC'),
	org        LowCardinality(String),
	actor      String,
	action     LowCardinality(String),
	object     String,
	detail     String CODEC(ZSTD(1)),
	kind       Enum8('audit' = 0, 'triage' = 1, 'silence' = 2),
	outcome    LowCardinality(String),
	note       String CODEC(ZSTD(1)),
	source     LowCardinality(String),
	silence_id String,
	silence    String CODEC(ZSTD(1)),
	starts_at  DateTime64(9, 'UTC'),
	ends_at    DateTime64(9, 'UTC'),
	written_at DateTime DEFAULT now()
) ENGINE = ` + s.engine("ReplacingMergeTree", "audit", "", true) + `
ORDER BY seq
SETTINGS ` + dedup + ` = 1000`,
		// Which triages each receiver has been told of.
		`CREATE TABLE IF NOT EXISTS ` + db + `.triage_delivery` + on + ` (
	receiver LowCardinality(String),
	seq      UInt64
) ENGINE = ` + s.engine("ReplacingMergeTree", "triage_delivery", "", true) + `
ORDER BY (receiver, seq)`,
		// Triages and silences as their own relations, for dashboards.
		`CREATE VIEW IF NOT EXISTS ` + db + `.triages` + on + ` AS
SELECT seq, object AS alert_id, org, outcome, actor, at, note, source FROM ` + db + `.audit FINAL WHERE kind = 'triage'`,
		`CREATE VIEW IF NOT EXISTS ` + db + `.silences` + on + ` AS
SELECT silence_id AS id, argMax(starts_at, seq) AS starts_at, argMax(ends_at, seq) AS ends_at, argMax(silence, seq) AS body,
	max(at) AS updated_at
FROM ` + db + `.audit WHERE kind = 'silence' GROUP BY silence_id`,
	}
}

func migrateReference(s Schema) []string {
	db, on := s.Database, s.onCluster()
	return []string{
		// Each distinct set of reference data, row by row: the item's key
		// columns for dashboards' queries and the whole item as JSON for an
		// exact round trip. snapshot is the content's ID, n the item's place
		// in its file, so a retried insert folds (FINAL).
		`CREATE TABLE IF NOT EXISTS ` + db + `.reference_rows` + on + ` (
	snapshot   String,
	kind       Enum8('staff' = 1, 'relationship' = 2, 'shift' = 3, 'absence' = 4, 'device' = 5, 'sharing_agreement' = 6),
	n          UInt32,
	org        LowCardinality(String),
	actor      String,
	team       LowCardinality(String),
	subject    String,
	valid_from DateTime64(3, 'UTC'),
	valid_to   Nullable(DateTime64(3, 'UTC')),
	item       String CODEC(ZSTD(3))
) ENGINE = ` + s.engine("ReplacingMergeTree", "reference_rows", "", true) + `
ORDER BY (snapshot, kind, org, actor, n)`,
		// When each snapshot was put in force. A load row is written after
		// all of its snapshot's rows: it is the snapshot's commit point.
		`CREATE TABLE IF NOT EXISTS ` + db + `.reference_loads` + on + ` (
	loaded_at          DateTime64(9, 'UTC'),
	snapshot           String,
	staff              UInt32,
	relationships      UInt32,
	shifts             UInt32,
	absences           UInt32,
	devices            UInt32,
	sharing_agreements UInt32
) ENGINE = ` + s.engine("ReplacingMergeTree", "reference_loads", "", true) + `
ORDER BY (loaded_at, snapshot)`,
	}
}

func migrateWebRoutineAudit(s Schema) []string {
	db, on := s.Database, s.onCluster()
	return []string{
		// Who viewed which alert, worker page or routine-audit sample, and
		// which evidence exports a DPO ran: the web UI's view log.
		`CREATE TABLE IF NOT EXISTS ` + db + `.web_views` + on + ` (
	at     DateTime64(9, 'UTC'),
	user   String,
	role   LowCardinality(String),
	kind   LowCardinality(String),
	org    LowCardinality(String),
	target String
) ENGINE = ` + s.engine("MergeTree", "web_views", "", true) + `
ORDER BY at`,
		// One row per routine-audit sample, its items as parallel arrays:
		// one insert, so a sample lands whole or not at all. Two draws of
		// one sample (two managers at once) can both land; readers take the
		// first drawn, so the first draw stands.
		`CREATE TABLE IF NOT EXISTS ` + db + `.audit_samples` + on + ` (
	org        LowCardinality(String),
	team       LowCardinality(String),
	period     String,
	dpia       LowCardinality(String),
	from_t     DateTime64(9, 'UTC'),
	to_t       DateTime64(9, 'UTC'),
	population UInt64,
	seed       String,
	drawn_at   DateTime64(9, 'UTC'),
	seq        UInt64,
	item_system  Array(String),
	item_id      Array(String),
	item_t       Array(DateTime64(9, 'UTC')),
	item_actor   Array(String),
	item_subject Array(String),
	item_action  Array(String),
	item_record  Array(String)
) ENGINE = ` + s.engine("ReplacingMergeTree", "audit_samples", "", true) + `
ORDER BY (org, team, period, drawn_at, seq)`,
		// A routine-audit review is an audit row of its own kind, as a
		// triage is: the change and its audit entry in one row. Adding an
		// enum value changes metadata only.
		`ALTER TABLE ` + db + `.audit` + on + ` MODIFY COLUMN kind Enum8('audit' = 0, 'triage' = 1, 'silence' = 2, 'review' = 3)`,
	}
}

func migrateAlertReference(s Schema) []string {
	db, on := s.Database, s.onCluster()
	return []string{
		// The reference data each alert version was judged against (its
		// snapshot in reference_rows and reference_loads), as a column
		// beside the body so that SQL readers (dashboards, reader
		// accounts) can join an alert to what the data said without
		// parsing JSON. Older versions read as ''. Metadata only.
		`ALTER TABLE ` + db + `.alerts` + on + ` ADD COLUMN IF NOT EXISTS reference_id String DEFAULT '' AFTER batch`,
	}
}

func migrateWebViewRows(s Schema) []string {
	db, on := s.Database, s.onCluster()
	return []string{
		// How many rows of personal data each view listed (web.View.Rows):
		// the view log covers lists too. Older views read as 0.
		`ALTER TABLE ` + db + `.web_views` + on + ` ADD COLUMN IF NOT EXISTS row_count UInt32 DEFAULT 0`,
	}
}

func migrateOutboxFailure(s Schema) []string {
	db, on := s.Database, s.onCluster()
	return []string{
		// Alert versions a receiver refused for good (Slack's msg_too_long,
		// a webhook's 422): the outbox moved on past them (outbox_delivery
		// holds their mark) and the web UI lists them for re-sending, which
		// deletes the row and that mark. The newest row (seq) of a
		// receiver and alert is the failure. reason is a short code, never
		// alert content.
		`CREATE TABLE IF NOT EXISTS ` + db + `.outbox_failure` + on + ` (
	receiver LowCardinality(String),
	alert_id String,
	version  UInt64,
	reason   LowCardinality(String),
	at       DateTime64(9, 'UTC'),
	seq      UInt64
) ENGINE = ` + s.engine("ReplacingMergeTree", "outbox_failure", "seq", true) + `
ORDER BY (receiver, alert_id)`,
	}
}

func migrateRetention(s Schema) []string {
	db, on := s.Database, s.onCluster()
	return []string{
		// What each retention run deleted, per org and class (one row per
		// non-zero count), and one row per run with org and class empty:
		// the evidence pack's "last run" and "rows deleted in the period".
		`CREATE TABLE IF NOT EXISTS ` + db + `.retention_runs` + on + ` (
	at      DateTime64(9, 'UTC'),
	org     LowCardinality(String),
	class   LowCardinality(String),
	deleted UInt64
) ENGINE = ` + s.engine("MergeTree", "retention_runs", "", true) + `
ORDER BY at`,
	}
}

func migrateActorKind(s Schema) []string {
	db, on := s.Database, s.onCluster()
	// Who acted, when not staff (event.Actor.Kind: patient,
	// related-person, system): portal and interface access is stored as
	// such and never judged as staff access. Older rows read as '' (staff).
	stmts := []string{`ALTER TABLE ` + db + `.` + s.eventsLocal() + on + ` ADD COLUMN IF NOT EXISTS actor_kind LowCardinality(String) DEFAULT '' AFTER actor_org`}
	if s.Cluster != "" {
		// The Distributed table has the local table's columns.
		stmts = append(stmts, `ALTER TABLE `+db+`.events`+on+` ADD COLUMN IF NOT EXISTS actor_kind LowCardinality(String) DEFAULT '' AFTER actor_org`)
	}
	return stmts
}

func migrateTriageActionNotes(s Schema) []string {
	db, on := s.Database, s.onCluster()
	return []string{
		// The follow-up a triage decision calls for: who owns it, the
		// local day it is due ('YYYY-MM-DD') and whether it is done. Older
		// rows read as '' (no action). Metadata only.
		`ALTER TABLE ` + db + `.audit` + on + ` ADD COLUMN IF NOT EXISTS action_owner String DEFAULT '' AFTER source`,
		`ALTER TABLE ` + db + `.audit` + on + ` ADD COLUMN IF NOT EXISTS action_due String DEFAULT '' AFTER action_owner`,
		`ALTER TABLE ` + db + `.audit` + on + ` ADD COLUMN IF NOT EXISTS action_status LowCardinality(String) DEFAULT '' AFTER action_due`,
		// A manager's note on an alert is an audit row of its own kind, as
		// a triage is (org set, for row policies; the text in note).
		`ALTER TABLE ` + db + `.audit` + on + ` MODIFY COLUMN kind Enum8('audit' = 0, 'triage' = 1, 'silence' = 2, 'review' = 3, 'note' = 4)`,
		// Dashboards read triages with their actions.
		`CREATE OR REPLACE VIEW ` + db + `.triages` + on + ` AS
SELECT seq, object AS alert_id, org, outcome, actor, at, note, source, action_owner, action_due, action_status FROM ` + db + `.audit FINAL WHERE kind = 'triage'`,
	}
}

// Policies returns the row-policy DDL for s.Readers: each reader account
// sees only its org's events, rollups and alerts. Policies are derived from
// configuration, not migrations, so they are replaced on every migrate.
func (s Schema) Policies() []string {
	s = s.withDefaults()
	readers := append([]Reader(nil), s.Readers...)
	sort.Slice(readers, func(i, j int) bool { return readers[i].User < readers[j].User })
	var out []string
	for _, r := range readers {
		for _, table := range []string{s.eventsLocal(), "events_hourly", "alerts", "audit", "reference_rows", "web_views", "audit_samples"} {
			out = append(out, fmt.Sprintf("CREATE ROW POLICY OR REPLACE dpiawatch_%s_%s ON %s.%s%s FOR SELECT USING org = %s TO %s",
				r.User, table, s.Database, table, s.onCluster(), ddlStringLiteral(r.Org), r.User))
		}
	}
	return out
}

// Statements returns every statement of every migration, in order: what
// `dpiawatch migrate --print` shows and the DDL tests check.
func (s Schema) Statements() []string {
	s = s.withDefaults()
	out := []string{s.migrationsTable()}
	for _, m := range migrations {
		out = append(out, m.stmts(s)...)
	}
	return append(out, s.Policies()...)
}

func (s Schema) migrationsTable() string {
	return `CREATE TABLE IF NOT EXISTS ` + s.Database + `.schema_migrations` + s.onCluster() + ` (
	version    UInt32,
	name       String,
	applied_at DateTime DEFAULT now()
) ENGINE = ` + s.engine("ReplacingMergeTree", "schema_migrations", "", true) + `
ORDER BY version`
}

// MigrateResult reports what Migrate did.
type MigrateResult struct {
	Version int // the schema version now
	Applied int // migrations applied by this call
}

// Migrate brings the schema up to date: creates the database, applies the
// migrations not yet recorded, and replaces the row policies. A migration
// interrupted half-way is run again whole (its statements are idempotent).
func Migrate(ctx context.Context, conn clickhouse.Conn, s Schema) (MigrateResult, error) {
	s = s.withDefaults()
	if err := s.Validate(); err != nil {
		return MigrateResult{}, err
	}
	if err := conn.Exec(ctx, `CREATE DATABASE IF NOT EXISTS `+s.Database+s.onCluster()); err != nil {
		return MigrateResult{}, fmt.Errorf("clickhouse: migrate: create database: %w", err)
	}
	if err := conn.Exec(ctx, s.migrationsTable()); err != nil {
		return MigrateResult{}, fmt.Errorf("clickhouse: migrate: %w", err)
	}
	current, err := SchemaVersion(ctx, conn, s.Database)
	if err != nil {
		return MigrateResult{}, err
	}
	if current > len(migrations) {
		return MigrateResult{}, fmt.Errorf("%w (database at version %d, this binary knows up to %d)", ErrSchemaTooNew, current, len(migrations))
	}
	res := MigrateResult{Version: current}
	for _, m := range migrations[current:] {
		for _, stmt := range m.stmts(s) {
			if err := conn.Exec(ctx, stmt); err != nil {
				return res, fmt.Errorf("clickhouse: migrate: %04d_%s: %w", m.version, m.name, err)
			}
		}
		var p params
		if err := conn.Exec(ctx, `INSERT INTO `+s.Database+`.schema_migrations (version, name, applied_at) SELECT `+
			p.int(int64(m.version))+`, `+p.str(m.name)+`, `+p.int(time.Now().Unix()), p.list()...); err != nil {
			return res, fmt.Errorf("clickhouse: migrate: record %04d_%s: %w", m.version, m.name, err)
		}
		res.Version, res.Applied = m.version, res.Applied+1
	}
	for _, stmt := range s.Policies() {
		if err := conn.Exec(ctx, stmt); err != nil {
			return res, fmt.Errorf("clickhouse: migrate: row policy: %w", err)
		}
	}
	return res, nil
}

// SchemaVersion returns the highest migration recorded in database, 0 when
// none (or no migrations table).
func SchemaVersion(ctx context.Context, conn clickhouse.Conn, database string) (int, error) {
	if !identRE.MatchString(database) { // it names a table below: an identifier cannot be a parameter
		return 0, fmt.Errorf("clickhouse: database %q is not a plain identifier", database)
	}
	var exists uint64
	var p params
	if err := conn.QueryRow(ctx, `SELECT count() FROM system.tables WHERE database = `+p.str(database)+` AND name = 'schema_migrations'`, p.list()...).Scan(&exists); err != nil {
		return 0, fmt.Errorf("clickhouse: schema version: %w", err)
	}
	if exists == 0 {
		return 0, nil
	}
	var v uint32
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM `+database+`.schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("clickhouse: schema version: %w", err)
	}
	return int(v), nil
}

// LatestVersion is the schema version this binary migrates to.
func LatestVersion() int { return len(migrations) }

// ddlStringLiteral renders s as a ClickHouse string literal, for the one
// place a value must stand in SQL text: the row policies' USING clause,
// DDL that Policies returns as text (for `dpiawatch migrate` to run and
// operators to read) and that is stored by the server as written. Every
// query binds its values as parameters instead.
//
// It is safe because a ClickHouse string literal ends only at an unescaped
// quote: backslash and quote are escaped, so neither can end it early or
// escape the closing quote, and NUL is written as \0 so the text never
// holds one. Every other byte (newlines, U+202E, invalid UTF-8) stands for
// itself inside the quotes.
func ddlStringLiteral(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
