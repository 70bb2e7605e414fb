package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/triage"
)

// TestMigrateWebTriage: a database the web UI wrote triages to before
// migration 0004 keeps them, now as store.Triages records from "web" with
// their audit entries, and the UI's own table is gone.
func TestMigrateWebTriage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to schema 3 with the UI's table, as the UI used to create it.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, q := range []string{
		// Undo 0008 and 0007_retention.sql, then 0004 (0005 and 0006 are undone by the drops below).
		`DROP TABLE alert_notes`, `ALTER TABLE triages DROP COLUMN action_owner`, `ALTER TABLE triages DROP COLUMN action_due`,
		`ALTER TABLE triages DROP COLUMN action_status`,
		`DROP TABLE retention_runs`, `DROP INDEX alerts_org_last_seen`, `DROP INDEX check_state_written_at`,
		`ALTER TABLE check_state DROP COLUMN written_at`,
		`DROP TABLE audit_reviews`, `DROP TABLE audit_sample_items`, `DROP TABLE audit_samples`, `DROP TABLE web_views`,
		`DROP TABLE outbox_failure`,                        // migration 0006
		`DELETE FROM schema_migrations WHERE version >= 4`, // and every later one, applied again after it
		`CREATE TABLE web_triage (alert_id TEXT PRIMARY KEY, outcome TEXT NOT NULL, by_user TEXT NOT NULL, at INTEGER NOT NULL, note TEXT NOT NULL) WITHOUT ROWID`,
		`INSERT INTO web_triage VALUES ('a-1', 'explained', 'ig-jo', ` + itoa(at.UnixNano()) + `, 'rota'), ('a-2', 'confirmed-misuse', 'ig-al', ` + itoa(at.Add(time.Hour).UnixNano()) + `, '')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = db.Close()
	st, err = sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts, err := st.Triages(ctx, "a-1")
	if err != nil || len(ts) != 1 || ts[0].Outcome != triage.Explained || ts[0].Actor != "ig-jo" || ts[0].Source != "web" || !ts[0].At.Equal(at) || ts[0].Note != "rota" {
		t.Fatalf("migrated triage: %+v %v", ts, err)
	}
	log, err := st.AuditLog(ctx, 0)
	if err != nil || len(log) != 2 || log[0].Action != "triage.confirmed-misuse" || log[0].Object != "a-2" {
		t.Fatalf("audit entries: %+v %v", log, err)
	}
	ws, _ := st.Web(ctx)
	if _, err := ws.AuditTeams(ctx, "org", at, at.Add(time.Hour)); err != nil {
		t.Fatalf("routine-audit tables: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
