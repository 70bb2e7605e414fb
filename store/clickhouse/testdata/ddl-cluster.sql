CREATE TABLE IF NOT EXISTS dpia.schema_migrations ON CLUSTER care (
	version    UInt32,
	name       String,
	applied_at DateTime DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/schema_migrations', '{replica}')
ORDER BY version;

CREATE TABLE IF NOT EXISTS dpia.events_local ON CLUSTER care (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/dpia/events_local', '{replica}')
PARTITION BY toYYYYMM(t)
ORDER BY (org, actor, t, system, id)
TTL toDateTime(t) + toIntervalDay(retention_days) WHERE retention_days > 0
SETTINGS replicated_deduplication_window = 500, deduplicate_merge_projection_mode = 'rebuild';

CREATE TABLE IF NOT EXISTS dpia.events ON CLUSTER care AS dpia.events_local
ENGINE = Distributed(care, dpia, events_local, cityHash64(org, actor));

CREATE TABLE IF NOT EXISTS dpia.alerts ON CLUSTER care (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/alerts', '{replica}', version)
ORDER BY (org, id);

CREATE TABLE IF NOT EXISTS dpia.outbox_delivery ON CLUSTER care (
	receiver          LowCardinality(String),
	alert_id          String,
	delivered_version UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/outbox_delivery', '{replica}', delivered_version)
ORDER BY (receiver, alert_id);

CREATE TABLE IF NOT EXISTS dpia.checkpoint ON CLUSTER care (
	kind       Enum8('state' = 1, 'commit' = 2),
	key        String,
	value      String,
	deleted    Bool,
	seq        UInt64,
	written_at DateTime DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/checkpoint', '{replica}', seq)
ORDER BY (kind, key);

CREATE TABLE IF NOT EXISTS dpia.events_hourly ON CLUSTER care (
	org            LowCardinality(String),
	hour           DateTime('UTC'),
	actor_team     LowCardinality(String),
	actor          String,
	action         LowCardinality(String),
	outcome        LowCardinality(String),
	events         SimpleAggregateFunction(sum, UInt64),
	subjects       AggregateFunction(uniq, String),
	retention_days SimpleAggregateFunction(max, UInt16)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/dpia/events_hourly', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (org, hour, actor_team, actor, action, outcome)
TTL hour + toIntervalDay(retention_days) WHERE retention_days > 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS dpia.events_hourly_mv ON CLUSTER care TO dpia.events_hourly AS
SELECT org, toStartOfHour(toDateTime(t, 'UTC')) AS hour, actor_team, actor, action, outcome,
	toUInt64(count()) AS events, uniqState(subject) AS subjects, max(retention_days) AS retention_days
FROM dpia.events_local
GROUP BY org, hour, actor_team, actor, action, outcome;

CREATE TABLE IF NOT EXISTS dpia.message_refs ON CLUSTER care (
	receiver LowCardinality(String),
	alert_id String,
	channel  String,
	ts       String,
	version  UInt64,
	digest   Bool,
	seq      UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/message_refs', '{replica}', version)
ORDER BY (receiver, alert_id);

CREATE TABLE IF NOT EXISTS dpia.audit ON CLUSTER care (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/audit', '{replica}')
ORDER BY seq
SETTINGS replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS dpia.triage_delivery ON CLUSTER care (
	receiver LowCardinality(String),
	seq      UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/triage_delivery', '{replica}')
ORDER BY (receiver, seq);

CREATE VIEW IF NOT EXISTS dpia.triages ON CLUSTER care AS
SELECT seq, object AS alert_id, org, outcome, actor, at, note, source FROM dpia.audit FINAL WHERE kind = 'triage';

CREATE VIEW IF NOT EXISTS dpia.silences ON CLUSTER care AS
SELECT silence_id AS id, argMax(starts_at, seq) AS starts_at, argMax(ends_at, seq) AS ends_at, argMax(silence, seq) AS body,
	max(at) AS updated_at
FROM dpia.audit WHERE kind = 'silence' GROUP BY silence_id;

CREATE TABLE IF NOT EXISTS dpia.reference_rows ON CLUSTER care (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/reference_rows', '{replica}')
ORDER BY (snapshot, kind, org, actor, n);

CREATE TABLE IF NOT EXISTS dpia.reference_loads ON CLUSTER care (
	loaded_at          DateTime64(9, 'UTC'),
	snapshot           String,
	staff              UInt32,
	relationships      UInt32,
	shifts             UInt32,
	absences           UInt32,
	devices            UInt32,
	sharing_agreements UInt32
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/reference_loads', '{replica}')
ORDER BY (loaded_at, snapshot);

CREATE TABLE IF NOT EXISTS dpia.web_views ON CLUSTER care (
	at     DateTime64(9, 'UTC'),
	user   String,
	role   LowCardinality(String),
	kind   LowCardinality(String),
	org    LowCardinality(String),
	target String
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/dpia/web_views', '{replica}')
ORDER BY at;

CREATE TABLE IF NOT EXISTS dpia.audit_samples ON CLUSTER care (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/audit_samples', '{replica}')
ORDER BY (org, team, period, drawn_at, seq);

ALTER TABLE dpia.audit ON CLUSTER care MODIFY COLUMN kind Enum8('audit' = 0, 'triage' = 1, 'silence' = 2, 'review' = 3);

ALTER TABLE dpia.alerts ON CLUSTER care ADD COLUMN IF NOT EXISTS reference_id String DEFAULT '' AFTER batch;

ALTER TABLE dpia.web_views ON CLUSTER care ADD COLUMN IF NOT EXISTS row_count UInt32 DEFAULT 0;

CREATE TABLE IF NOT EXISTS dpia.outbox_failure ON CLUSTER care (
	receiver LowCardinality(String),
	alert_id String,
	version  UInt64,
	reason   LowCardinality(String),
	at       DateTime64(9, 'UTC'),
	seq      UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/dpia/outbox_failure', '{replica}', seq)
ORDER BY (receiver, alert_id);

CREATE TABLE IF NOT EXISTS dpia.retention_runs ON CLUSTER care (
	at      DateTime64(9, 'UTC'),
	org     LowCardinality(String),
	class   LowCardinality(String),
	deleted UInt64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/dpia/retention_runs', '{replica}')
ORDER BY at;

ALTER TABLE dpia.events_local ON CLUSTER care ADD COLUMN IF NOT EXISTS actor_kind LowCardinality(String) DEFAULT '' AFTER actor_org;

ALTER TABLE dpia.events ON CLUSTER care ADD COLUMN IF NOT EXISTS actor_kind LowCardinality(String) DEFAULT '' AFTER actor_org;

ALTER TABLE dpia.audit ON CLUSTER care ADD COLUMN IF NOT EXISTS action_owner String DEFAULT '' AFTER source;

ALTER TABLE dpia.audit ON CLUSTER care ADD COLUMN IF NOT EXISTS action_due String DEFAULT '' AFTER action_owner;

ALTER TABLE dpia.audit ON CLUSTER care ADD COLUMN IF NOT EXISTS action_status LowCardinality(String) DEFAULT '' AFTER action_due;

ALTER TABLE dpia.audit ON CLUSTER care MODIFY COLUMN kind Enum8('audit' = 0, 'triage' = 1, 'silence' = 2, 'review' = 3, 'note' = 4);

CREATE OR REPLACE VIEW dpia.triages ON CLUSTER care AS
SELECT seq, object AS alert_id, org, outcome, actor, at, note, source, action_owner, action_due, action_status FROM dpia.audit FINAL WHERE kind = 'triage';

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_stm_events_local ON dpia.events_local ON CLUSTER care FOR SELECT USING org = 'st-martins' TO grafana_stm;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_stm_events_hourly ON dpia.events_hourly ON CLUSTER care FOR SELECT USING org = 'st-martins' TO grafana_stm;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_stm_alerts ON dpia.alerts ON CLUSTER care FOR SELECT USING org = 'st-martins' TO grafana_stm;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_stm_audit ON dpia.audit ON CLUSTER care FOR SELECT USING org = 'st-martins' TO grafana_stm;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_stm_reference_rows ON dpia.reference_rows ON CLUSTER care FOR SELECT USING org = 'st-martins' TO grafana_stm;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_stm_web_views ON dpia.web_views ON CLUSTER care FOR SELECT USING org = 'st-martins' TO grafana_stm;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_stm_audit_samples ON dpia.audit_samples ON CLUSTER care FOR SELECT USING org = 'st-martins' TO grafana_stm;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_events_local ON dpia.events_local ON CLUSTER care FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_events_hourly ON dpia.events_hourly ON CLUSTER care FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_alerts ON dpia.alerts ON CLUSTER care FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_audit ON dpia.audit ON CLUSTER care FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_reference_rows ON dpia.reference_rows ON CLUSTER care FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_web_views ON dpia.web_views ON CLUSTER care FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts;

CREATE ROW POLICY OR REPLACE dpiawatch_grafana_wilts_audit_samples ON dpia.audit_samples ON CLUSTER care FOR SELECT USING org = 'wiltshire-council' TO grafana_wilts;
