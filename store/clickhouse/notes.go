package clickhouse

import (
	"context"
	"fmt"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
	"github.com/dpiawatch/dpiawatch/triage"
)

var _ store.AlertNotes = (*Store)(nil)

// AddAlertNote stores n as one audit row of kind note, which is at once the
// note and its audit entry, with the alert's org (row policies).
func (s *Store) AddAlertNote(ctx context.Context, n triage.Note) (triage.Note, error) {
	var org string
	var p params
	if err := s.conn.QueryRow(ctx, `SELECT any(org) FROM `+s.db+`.alerts WHERE id = `+p.str(n.AlertID), p.list()...).Scan(&org); err != nil {
		return triage.Note{}, fmt.Errorf("clickhouse: add alert note: %w", err)
	}
	seq := s.nextSeq()
	n.Seq = int64(seq)
	detail, err := storedjson.Marshal(map[string]any{"seq": n.Seq, "note": n.Text})
	if err != nil {
		return triage.Note{}, fmt.Errorf("clickhouse: add alert note: %w", err)
	}
	r := auditRow{seq: seq, org: org, kind: kindNote, note: n.Text,
		e: audit.Entry{At: n.At, Actor: n.Actor, Action: "alert.note", Object: n.AlertID, Detail: string(detail)}}
	if err := s.insertAudit(ctx, r); err != nil {
		return triage.Note{}, fmt.Errorf("clickhouse: add alert note: %w", err)
	}
	return n, nil
}

// AlertNotes returns the notes of one alert, oldest first.
func (s *Store) AlertNotes(ctx context.Context, alertID string) ([]triage.Note, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT seq, object, actor, at, note FROM `+s.db+`.audit FINAL WHERE kind = 'note' AND object = `+
		p.str(alertID)+` ORDER BY seq`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: alert notes: %w", err)
	}
	defer rows.Close()
	var out []triage.Note
	for rows.Next() {
		var n triage.Note
		var seq uint64
		if err := rows.Scan(&seq, &n.AlertID, &n.Actor, &n.At, &n.Text); err != nil {
			return nil, fmt.Errorf("clickhouse: alert notes: %w", err)
		}
		n.Seq, n.At = int64(seq), n.At.UTC()
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: alert notes: %w", err)
	}
	return out, nil
}
