-- Alert versions a receiver refused for good (Slack's msg_too_long, a
-- webhook's 422): the outbox moved on past them (outbox_delivery holds
-- their mark), and the web UI lists them so that someone can send one
-- again (Resend deletes both rows). reason is a short code, never alert
-- content.
CREATE TABLE outbox_failure (
	receiver TEXT NOT NULL,
	alert_id TEXT NOT NULL,
	version  INTEGER NOT NULL,
	reason   TEXT NOT NULL,
	at       INTEGER NOT NULL, -- unix nanoseconds
	PRIMARY KEY (receiver, alert_id)
) WITHOUT ROWID;
CREATE INDEX outbox_failure_alert ON outbox_failure (alert_id);
