-- Alert delivery: Slack message references, triage, silences and the audit
-- trail of every change a person makes.

-- Where each receiver posted its message about an alert (Slack channel + ts),
-- and the newest alert version that message shows.
CREATE TABLE message_refs (
	receiver TEXT NOT NULL,
	alert_id TEXT NOT NULL,
	channel  TEXT NOT NULL,
	ts       TEXT NOT NULL,
	version  INTEGER NOT NULL,
	digest   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (receiver, alert_id)
) WITHOUT ROWID;

-- Triage decisions; seq orders them (AUTOINCREMENT: never reused).
CREATE TABLE triages (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id TEXT NOT NULL,
	outcome  TEXT NOT NULL,
	actor    TEXT NOT NULL,
	at       INTEGER NOT NULL, -- unix nanoseconds
	note     TEXT NOT NULL,
	source   TEXT NOT NULL
);
CREATE INDEX triages_alert ON triages (alert_id, seq);

-- Which triages each receiver has been told of (the newest seq, in order).
CREATE TABLE triage_delivery (
	receiver TEXT NOT NULL,
	seq      INTEGER NOT NULL,
	PRIMARY KEY (receiver, seq)
) WITHOUT ROWID;

CREATE TABLE silences (
	id         TEXT PRIMARY KEY,
	starts_at  INTEGER NOT NULL,
	ends_at    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	body       TEXT NOT NULL -- the whole silence as JSON
) WITHOUT ROWID;
CREATE INDEX silences_ends_at ON silences (ends_at);

CREATE TABLE audit (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	at     INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	object TEXT NOT NULL,
	detail TEXT NOT NULL
);
