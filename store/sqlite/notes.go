package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
	"github.com/dpiawatch/dpiawatch/triage"
)

var _ store.AlertNotes = (*Store)(nil)

// AddAlertNote stores n and its audit entry in one transaction.
func (s *Store) AddAlertNote(ctx context.Context, n triage.Note) (triage.Note, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_notes (alert_id, actor, at, note) VALUES (?, ?, ?, ?)`,
			n.AlertID, n.Actor, n.At.UnixNano(), n.Text)
		if err != nil {
			return err
		}
		if n.Seq, err = res.LastInsertId(); err != nil {
			return err
		}
		detail, _ := storedjson.Marshal(map[string]any{"seq": n.Seq, "note": n.Text})
		return insertAudit(ctx, tx, audit.Entry{At: n.At, Actor: n.Actor, Action: "alert.note", Object: n.AlertID, Detail: string(detail)})
	})
	if err != nil {
		return triage.Note{}, fmt.Errorf("sqlite: add alert note: %w", err)
	}
	return n, nil
}

// AlertNotes returns the notes of one alert, oldest first.
func (s *Store) AlertNotes(ctx context.Context, alertID string) ([]triage.Note, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, alert_id, actor, at, note FROM alert_notes WHERE alert_id = ? ORDER BY seq`, alertID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: alert notes: %w", err)
	}
	defer rows.Close()
	var out []triage.Note
	for rows.Next() {
		var n triage.Note
		var at int64
		if err := rows.Scan(&n.Seq, &n.AlertID, &n.Actor, &at, &n.Text); err != nil {
			return nil, fmt.Errorf("sqlite: alert notes: %w", err)
		}
		n.At = time.Unix(0, at).UTC()
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: alert notes: %w", err)
	}
	return out, nil
}
