-- The web UI and routine audits.

-- Triage decisions made in the web UI used to be kept apart (web_triage,
-- created by the UI on demand, one row per alert). They join the alerting
-- pipeline's triages, so that Slack, the API and the UI read and write one
-- record; each becomes a triage from source "web", with its audit entry.
CREATE TABLE IF NOT EXISTS web_triage (
	alert_id TEXT PRIMARY KEY,
	outcome  TEXT NOT NULL,
	by_user  TEXT NOT NULL,
	at       INTEGER NOT NULL,
	note     TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO triages (alert_id, outcome, actor, at, note, source)
	SELECT alert_id, outcome, by_user, at, note, 'web' FROM web_triage ORDER BY at, alert_id;
INSERT INTO audit (at, actor, action, object, detail)
	SELECT at, by_user, 'triage.' || outcome, alert_id, json_object('source', 'web', 'note', note, 'migrated', 1)
	FROM web_triage ORDER BY at, alert_id;
DROP TABLE web_triage;

-- Who viewed which alert or worker page (and which evidence exports a DPO
-- ran), shown to the DPO.
CREATE TABLE IF NOT EXISTS web_views (
	at      INTEGER NOT NULL, -- unix nanoseconds
	user    TEXT NOT NULL,
	role    TEXT NOT NULL,
	kind    TEXT NOT NULL,    -- alert | actor | evidence
	org     TEXT NOT NULL,
	target  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_views_at ON web_views (at);

-- Routine audits: per org, team and period, the accesses drawn for the
-- team's manager to review (the first draw stands), and the reviews.
CREATE TABLE audit_samples (
	org        TEXT NOT NULL,
	team       TEXT NOT NULL,
	period     TEXT NOT NULL,
	dpia       TEXT NOT NULL,
	from_t     INTEGER NOT NULL, -- unix nanoseconds
	to_t       INTEGER NOT NULL,
	population INTEGER NOT NULL,
	seed       TEXT NOT NULL,
	drawn_at   INTEGER NOT NULL,
	PRIMARY KEY (org, team, period)
) WITHOUT ROWID;

CREATE TABLE audit_sample_items (
	org      TEXT NOT NULL,
	team     TEXT NOT NULL,
	period   TEXT NOT NULL,
	n        INTEGER NOT NULL,
	system   TEXT NOT NULL,
	event_id TEXT NOT NULL,
	t        INTEGER NOT NULL,
	actor    TEXT NOT NULL,
	subject  TEXT NOT NULL,
	action   TEXT NOT NULL,
	record   TEXT NOT NULL,
	PRIMARY KEY (org, team, period, n)
) WITHOUT ROWID;

CREATE TABLE audit_reviews (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	org      TEXT NOT NULL,
	team     TEXT NOT NULL,
	period   TEXT NOT NULL,
	n        INTEGER NOT NULL,
	outcome  TEXT NOT NULL,
	reviewer TEXT NOT NULL,
	at       INTEGER NOT NULL,
	note     TEXT NOT NULL
);
CREATE INDEX audit_reviews_sample ON audit_reviews (org, team, period, n, seq);
