-- Reference-data snapshots: each distinct set of reference data once (the
-- whole set as JSON, named by store.ReferenceID), and when each was put in
-- force, so that evidence can say what the reference data was at a time.
CREATE TABLE reference_snapshots (
	id   TEXT PRIMARY KEY,
	body TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE reference_loads (
	loaded_at INTEGER NOT NULL, -- unix nanoseconds
	snapshot  TEXT NOT NULL REFERENCES reference_snapshots (id)
);
CREATE INDEX reference_loads_at ON reference_loads (loaded_at);
