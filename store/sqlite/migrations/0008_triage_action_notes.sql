-- Triage actions and managers' notes (issue 13).

-- The follow-up a triage decision calls for: who owns it, the local day it
-- is due ("YYYY-MM-DD") and whether it is done. Older decisions read as
-- '' (no action).
ALTER TABLE triages ADD COLUMN action_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE triages ADD COLUMN action_due TEXT NOT NULL DEFAULT '';
ALTER TABLE triages ADD COLUMN action_status TEXT NOT NULL DEFAULT '';

-- Context managers add to their own teams' alerts; each also has its
-- audit entry (action 'alert.note').
CREATE TABLE alert_notes (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id TEXT NOT NULL,
	actor    TEXT NOT NULL,
	at       INTEGER NOT NULL, -- unix nanoseconds
	note     TEXT NOT NULL
);
CREATE INDEX alert_notes_alert ON alert_notes (alert_id, seq);
