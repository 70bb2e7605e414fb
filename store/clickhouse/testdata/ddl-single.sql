CREATE TABLE IF NOT EXISTS dpiawatch.schema_migrations (
	version    UInt32,
	name       String,
	applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
ORDER BY version;

CREATE TABLE IF NOT EXISTS dpiawatch.events (
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
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(t)
ORDER BY (org, actor, t, system, id)
TTL toDateTime(t) + toIntervalDay(retention_days) WHERE retention_days > 0
SETTINGS non_replicated_deduplication_window = 10000, deduplicate_merge_projection_mode = 'rebuild';

CREATE TABLE IF NOT EXISTS dpiawatch.alerts (
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
) ENGINE = ReplacingMergeTree(version)
ORDER BY (org, id);

CREATE TABLE IF NOT EXISTS dpiawatch.outbox_delivery (
	receiver          LowCardinality(String),
	alert_id          String,
	delivered_version UInt64
) ENGINE = ReplacingMergeTree(delivered_version)
ORDER BY (receiver, alert_id);

CREATE TABLE IF NOT EXISTS dpiawatch.checkpoint (
	kind       Enum8('state' = 1, 'commit' = 2),
	key        String,
	value      String,
	deleted    Bool,
	seq        UInt64,
	written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(seq)
ORDER BY (kind, key);

CREATE TABLE IF NOT EXISTS dpiawatch.events_hourly (
	org            LowCardinality(String),
	hour           DateTime('UTC'),
	actor_team     LowCardinality(String),
	actor          String,
	action         LowCardinality(String),
	outcome        LowCardinality(String),
	events         SimpleAggregateFunction(sum, UInt64),
	subjects       AggregateFunction(uniq, String),
	retention_days SimpleAggregateFunction(max, UInt16)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (org, hour, actor_team, actor, action, outcome)
TTL hour + toIntervalDay(retention_days) WHERE retention_days > 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS dpiawatch.events_hourly_mv TO dpiawatch.events_hourly AS
SELECT org, toStartOfHour(toDateTime(t, 'UTC')) AS hour, actor_team, actor, action, outcome,
	toUInt64(count()) AS events, uniqState(subject) AS subjects, max(retention_days) AS retention_days
FROM dpiawatch.events
GROUP BY org, hour, actor_team, actor, action, outcome;

CREATE TABLE IF NOT EXISTS dpiawatch.message_refs (
	receiver LowCardinality(String),
	alert_id String,
	channel  String,
	ts       String,
	version  UInt64,
	digest   Bool,
	seq      UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (receiver, alert_id);

CREATE TABLE IF NOT EXISTS dpiawatch.audit (
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
) ENGINE = ReplacingMergeTree()
ORDER BY seq
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS dpiawatch.triage_delivery (
	receiver LowCardinality(String),
	seq      UInt64
) ENGINE = ReplacingMergeTree()
ORDER BY (receiver, seq);

CREATE VIEW IF NOT EXISTS dpiawatch.triages AS
SELECT seq, object AS alert_id, org, outcome, actor, at, note, source FROM dpiawatch.audit FINAL WHERE kind = 'triage';

CREATE VIEW IF NOT EXISTS dpiawatch.silences AS
SELECT silence_id AS id, argMax(starts_at, seq) AS starts_at, argMax(ends_at, seq) AS ends_at, argMax(silence, seq) AS body,
	max(at) AS updated_at
FROM dpiawatch.audit WHERE kind = 'silence' GROUP BY silence_id;

CREATE TABLE IF NOT EXISTS dpiawatch.reference_rows (
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
) ENGINE = ReplacingMergeTree()
ORDER BY (snapshot, kind, org, actor, n);

CREATE TABLE IF NOT EXISTS dpiawatch.reference_loads (
	loaded_at          DateTime64(9, 'UTC'),
	snapshot           String,
	staff              UInt32,
	relationships      UInt32,
	shifts             UInt32,
	absences           UInt32,
	devices            UInt32,
	sharing_agreements UInt32
) ENGINE = ReplacingMergeTree()
ORDER BY (loaded_at, snapshot);

CREATE TABLE IF NOT EXISTS dpiawatch.web_views (
	at     DateTime64(9, 'UTC'),
	user   String,
	role   LowCardinality(String),
	kind   LowCardinality(String),
	org    LowCardinality(String),
	target String
) ENGINE = MergeTree()
ORDER BY at;

CREATE TABLE IF NOT EXISTS dpiawatch.audit_samples (
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
) ENGINE = ReplacingMergeTree()
ORDER BY (org, team, period, drawn_at, seq);

ALTER TABLE dpiawatch.audit MODIFY COLUMN kind Enum8('audit' = 0, 'triage' = 1, 'silence' = 2, 'review' = 3);

ALTER TABLE dpiawatch.alerts ADD COLUMN IF NOT EXISTS reference_id String DEFAULT '' AFTER batch;

ALTER TABLE dpiawatch.web_views ADD COLUMN IF NOT EXISTS row_count UInt32 DEFAULT 0;

CREATE TABLE IF NOT EXISTS dpiawatch.outbox_failure (
	receiver LowCardinality(String),
	alert_id String,
	version  UInt64,
	reason   LowCardinality(String),
	at       DateTime64(9, 'UTC'),
	seq      UInt64
) ENGINE = ReplacingMergeTree(seq)
ORDER BY (receiver, alert_id);

CREATE TABLE IF NOT EXISTS dpiawatch.retention_runs (
	at      DateTime64(9, 'UTC'),
	org     LowCardinality(String),
	class   LowCardinality(String),
	deleted UInt64
) ENGINE = MergeTree()
ORDER BY at;

ALTER TABLE dpiawatch.events ADD COLUMN IF NOT EXISTS actor_kind LowCardinality(String) DEFAULT '' AFTER actor_org;

ALTER TABLE dpiawatch.audit ADD COLUMN IF NOT EXISTS action_owner String DEFAULT '' AFTER source;

ALTER TABLE dpiawatch.audit ADD COLUMN IF NOT EXISTS action_due String DEFAULT '' AFTER action_owner;

ALTER TABLE dpiawatch.audit ADD COLUMN IF NOT EXISTS action_status LowCardinality(String) DEFAULT '' AFTER action_due;

ALTER TABLE dpiawatch.audit MODIFY COLUMN kind Enum8('audit' = 0, 'triage' = 1, 'silence' = 2, 'review' = 3, 'note' = 4);

CREATE OR REPLACE VIEW dpiawatch.triages AS
SELECT seq, object AS alert_id, org, outcome, actor, at, note, source, action_owner, action_due, action_status FROM dpiawatch.audit FINAL WHERE kind = 'triage';
