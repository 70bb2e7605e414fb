-- Retention (issue 16, item 15): the monitor's own data is deleted once its
-- org's period has passed (store.Retainer, retention.go).

-- When each check-state key was last written (unix nanoseconds, wall clock):
-- the state is keyed by task, not by org, so it is aged by its last write.
-- Existing keys count as written now, so they get a whole period.
ALTER TABLE check_state ADD COLUMN written_at INTEGER NOT NULL DEFAULT 0;
UPDATE check_state SET written_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) * 1000000;
CREATE INDEX check_state_written_at ON check_state (written_at);

-- What each run deleted, per org and class (one row per non-zero count),
-- and one row per run with org and class empty: the evidence pack's
-- "last run" and "rows deleted in the period".
CREATE TABLE retention_runs (
	at      INTEGER NOT NULL, -- unix nanoseconds, the run's clock
	org     TEXT NOT NULL,
	class   TEXT NOT NULL,
	deleted INTEGER NOT NULL
);
CREATE INDEX retention_runs_at ON retention_runs (at);

-- Deletions find old rows per org by index, never by scanning.
CREATE INDEX web_views_org_at ON web_views (org, at);
CREATE INDEX alerts_org_last_seen ON alerts (org, last_seen);
