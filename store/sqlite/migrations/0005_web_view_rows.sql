-- How many rows of personal data each view listed (web.View.Rows): the view
-- log now covers lists (the queue, its CSV export, the log itself), not only
-- single alerts and workers. Older views read as 0.
ALTER TABLE web_views ADD COLUMN row_count INTEGER NOT NULL DEFAULT 0;
