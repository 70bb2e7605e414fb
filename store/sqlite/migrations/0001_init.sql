-- The first schema: events, alerts, check state and outbox delivery.

-- One row per access event. The columns the checks and dashboards filter on
-- are columns; the rest travel together in detail (JSON) so that a row stays
-- small and an insert binds and indexes as little as possible. The rowid
-- grows with every insert, which is how Apply tells new rows from replays.
CREATE TABLE events (
	org     TEXT NOT NULL,
	system  TEXT NOT NULL,
	id      TEXT NOT NULL,
	t       INTEGER NOT NULL, -- unix nanoseconds, clamped to the int64 range (exact time then in detail)
	action  TEXT NOT NULL,
	actor   TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail  TEXT NOT NULL     -- JSON: actor role/team/org, sensitivity, record, session, outcome, UTC offset
);
-- Deduplication: the same (org, system, id) is the same event.
CREATE UNIQUE INDEX events_key ON events (org, system, id);
CREATE INDEX events_org_actor_t ON events (org, actor, t);
CREATE INDEX events_org_t ON events (org, t);

-- One row per alert; body is the whole alert as JSON (without version).
-- version grows by one on every change; change_seq orders changes for the
-- outbox (a counter, not a clock, so that it never ties or runs backwards).
CREATE TABLE alerts (
	id         TEXT PRIMARY KEY,
	org        TEXT NOT NULL,
	check_name TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	change_seq INTEGER NOT NULL,
	updated_at INTEGER NOT NULL, -- unix nanoseconds, wall clock of the last change
	body       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX alerts_first_seen ON alerts (first_seen, id);
CREATE INDEX alerts_change_seq ON alerts (change_seq);

-- Check state: opaque blobs by key, loaded by prefix.
CREATE TABLE check_state (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;

-- Which version of each alert each receiver has been given.
CREATE TABLE outbox_delivery (
	receiver          TEXT NOT NULL,
	alert_id          TEXT NOT NULL,
	delivered_version INTEGER NOT NULL,
	PRIMARY KEY (receiver, alert_id)
) WITHOUT ROWID;
