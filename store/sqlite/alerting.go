package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
	"github.com/dpiawatch/dpiawatch/triage"
)

var _ store.AlertingStore = (*Store)(nil)

// MessageRef returns the message a receiver posted about an alert.
func (s *Store) MessageRef(ctx context.Context, receiver, alertID string) (store.MessageRef, error) {
	ref := store.MessageRef{Receiver: receiver, AlertID: alertID}
	err := s.r.QueryRowContext(ctx, `SELECT channel, ts, version, digest FROM message_refs WHERE receiver = ? AND alert_id = ?`,
		receiver, alertID).Scan(&ref.Channel, &ref.TS, &ref.Version, &ref.Digest)
	if errors.Is(err, sql.ErrNoRows) {
		return store.MessageRef{}, store.ErrNotFound
	}
	if err != nil {
		return store.MessageRef{}, fmt.Errorf("sqlite: message ref: %w", err)
	}
	return ref, nil
}

// PutMessageRef inserts or replaces a ref; a lower version never replaces a
// higher one (a late write after a retry must not make a sent version look
// unsent).
func (s *Store) PutMessageRef(ctx context.Context, ref store.MessageRef) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO message_refs (receiver, alert_id, channel, ts, version, digest) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (receiver, alert_id) DO UPDATE SET channel = excluded.channel, ts = excluded.ts, version = excluded.version, digest = excluded.digest
WHERE excluded.version >= message_refs.version`,
		ref.Receiver, ref.AlertID, ref.Channel, ref.TS, ref.Version, ref.Digest)
	if err != nil {
		return fmt.Errorf("sqlite: put message ref: %w", err)
	}
	return nil
}

// AddTriage stores t and its audit entry in one transaction. A nil
// t.Action takes the action of the alert's previous decision, read in the
// same transaction.
func (s *Store) AddTriage(ctx context.Context, t triage.Decision) (triage.Decision, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if t.Action == nil {
			prev, err := previousAction(ctx, tx, t.AlertID)
			if err != nil {
				return err
			}
			t.Action = prev
		}
		var act triage.Action
		if !t.Action.IsZero() {
			act = *t.Action
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO triages (alert_id, outcome, actor, at, note, source, action_owner, action_due, action_status)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.AlertID, t.Outcome, t.Actor, t.At.UnixNano(), t.Note, t.Source, act.Owner, act.Due, act.Status)
		if err != nil {
			return err
		}
		if t.Seq, err = res.LastInsertId(); err != nil {
			return err
		}
		detail, _ := storedjson.Marshal(triageDetail(t))
		return insertAudit(ctx, tx, audit.Entry{At: t.At, Actor: t.Actor, Action: "triage." + t.Outcome, Object: t.AlertID, Detail: string(detail)})
	})
	if err != nil {
		return triage.Decision{}, fmt.Errorf("sqlite: add triage: %w", err)
	}
	if t.Action.IsZero() {
		t.Action = nil
	}
	return t, nil
}

// triageDetail is a triage's audit detail: the action only when there is
// one, so that entries of decisions without one read as before.
func triageDetail(t triage.Decision) map[string]any {
	d := map[string]any{"seq": t.Seq, "source": t.Source, "note": t.Note}
	if !t.Action.IsZero() {
		d["action"] = t.Action
	}
	return d
}

// previousAction is the action of the alert's newest decision, nil when
// none.
func previousAction(ctx context.Context, tx *sql.Tx, alertID string) (*triage.Action, error) {
	var a triage.Action
	err := tx.QueryRowContext(ctx, `SELECT action_owner, action_due, action_status FROM triages WHERE alert_id = ? ORDER BY seq DESC LIMIT 1`,
		alertID).Scan(&a.Owner, &a.Due, &a.Status)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && a.IsZero()) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (s *Store) queryTriages(ctx context.Context, q string, args ...any) ([]triage.Decision, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []triage.Decision
	for rows.Next() {
		var t triage.Decision
		var at int64
		var act triage.Action
		if err := rows.Scan(&t.Seq, &t.AlertID, &t.Outcome, &t.Actor, &at, &t.Note, &t.Source, &act.Owner, &act.Due, &act.Status); err != nil {
			return nil, err
		}
		t.At = time.Unix(0, at).UTC()
		if !act.IsZero() {
			t.Action = &act
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

const triageColumns = `t.seq, t.alert_id, t.outcome, t.actor, t.at, t.note, t.source, t.action_owner, t.action_due, t.action_status`

// Triages returns the triages of one alert, oldest first.
func (s *Store) Triages(ctx context.Context, alertID string) ([]triage.Decision, error) {
	out, err := s.queryTriages(ctx, `SELECT `+triageColumns+` FROM triages t WHERE t.alert_id = ? ORDER BY t.seq`, alertID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: triages: %w", err)
	}
	return out, nil
}

// PendingTriages returns triages receiver has not been told of, oldest first.
func (s *Store) PendingTriages(ctx context.Context, receiver string, limit int) ([]triage.Decision, error) {
	if limit <= 0 {
		limit = -1
	}
	out, err := s.queryTriages(ctx, `SELECT `+triageColumns+` FROM triages t
WHERE NOT EXISTS (SELECT 1 FROM triage_delivery d WHERE d.receiver = ? AND d.seq = t.seq)
ORDER BY t.seq LIMIT ?`, receiver, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending triages: %w", err)
	}
	return out, nil
}

// MarkTriageDelivered records that receiver was told of triage seq.
func (s *Store) MarkTriageDelivered(ctx context.Context, receiver string, seq int64) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO triage_delivery (receiver, seq) VALUES (?, ?) ON CONFLICT DO NOTHING`, receiver, seq); err != nil {
		return fmt.Errorf("sqlite: mark triage delivered: %w", err)
	}
	return nil
}

// PutSilence inserts or replaces a silence and audits the change.
func (s *Store) PutSilence(ctx context.Context, sl silence.Silence, audit audit.Entry) error {
	body, err := storedjson.Marshal(sl)
	if err != nil {
		return fmt.Errorf("sqlite: put silence: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO silences (id, starts_at, ends_at, updated_at, body) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET starts_at = excluded.starts_at, ends_at = excluded.ends_at, updated_at = excluded.updated_at, body = excluded.body`,
			sl.ID, sl.StartsAt.UnixNano(), sl.EndsAt.UnixNano(), sl.UpdatedAt.UnixNano(), string(body)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("sqlite: put silence: %w", err)
	}
	return nil
}

// Silence returns one silence.
func (s *Store) Silence(ctx context.Context, id string) (silence.Silence, error) {
	var body string
	err := s.r.QueryRowContext(ctx, `SELECT body FROM silences WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return silence.Silence{}, store.ErrNotFound
	}
	if err != nil {
		return silence.Silence{}, fmt.Errorf("sqlite: silence: %w", err)
	}
	var sl silence.Silence
	if err := storedjson.Unmarshal([]byte(body), &sl); err != nil {
		return silence.Silence{}, fmt.Errorf("sqlite: decode silence: %w", err)
	}
	return sl, nil
}

// ListSilences returns silences ending after since (zero: all).
func (s *Store) ListSilences(ctx context.Context, since time.Time) ([]silence.Silence, error) {
	var after int64 = -1 << 63
	if !since.IsZero() {
		after = since.UnixNano()
	}
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM silences WHERE ends_at > ? ORDER BY starts_at, id`, after)
	if err != nil {
		return nil, fmt.Errorf("sqlite: silences: %w", err)
	}
	defer rows.Close()
	var out []silence.Silence
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("sqlite: silences: %w", err)
		}
		var sl silence.Silence
		if err := storedjson.Unmarshal([]byte(body), &sl); err != nil {
			return nil, fmt.Errorf("sqlite: decode silence: %w", err)
		}
		out = append(out, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: silences: %w", err)
	}
	return out, nil
}

// AuditLog returns up to limit entries, newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]audit.Entry, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, at, actor, action, object, detail FROM audit ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Object, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: audit: %w", err)
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit: %w", err)
	}
	return out, nil
}

func insertAudit(ctx context.Context, tx *sql.Tx, e audit.Entry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, actor, action, object, detail) VALUES (?, ?, ?, ?, ?)`,
		e.At.UnixNano(), e.Actor, e.Action, e.Object, e.Detail)
	return err
}

// inTx runs fn in a write transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// MarkFailed records a refused alert version and marks it done for the
// receiver, in one transaction.
func (s *Store) MarkFailed(ctx context.Context, f store.DeliveryFailure) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_failure (receiver, alert_id, version, reason, at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (receiver, alert_id) DO UPDATE SET version = excluded.version, reason = excluded.reason, at = excluded.at`,
			f.Receiver, f.AlertID, f.Version, f.Reason, f.At.UnixNano()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox_delivery (receiver, alert_id, delivered_version) VALUES (?, ?, ?)
ON CONFLICT (receiver, alert_id) DO UPDATE SET delivered_version = max(delivered_version, excluded.delivered_version)`,
			f.Receiver, f.AlertID, f.Version)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: mark failed: %w", err)
	}
	return nil
}

// DeliveryFailures returns the failures of one alert by receiver, leaving
// out those a later delivered version superseded.
func (s *Store) DeliveryFailures(ctx context.Context, alertID string) ([]store.DeliveryFailure, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT f.receiver, f.version, f.reason, f.at FROM outbox_failure f
WHERE f.alert_id = ? AND NOT EXISTS (SELECT 1 FROM outbox_delivery d WHERE d.receiver = f.receiver AND d.alert_id = f.alert_id AND d.delivered_version > f.version)
ORDER BY f.receiver`, alertID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery failures: %w", err)
	}
	defer rows.Close()
	var out []store.DeliveryFailure
	for rows.Next() {
		f := store.DeliveryFailure{AlertID: alertID}
		var at int64
		if err := rows.Scan(&f.Receiver, &f.Version, &f.Reason, &at); err != nil {
			return nil, fmt.Errorf("sqlite: delivery failures: %w", err)
		}
		f.At = time.Unix(0, at).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: delivery failures: %w", err)
	}
	return out, nil
}

// Resend forgets a failure and the outbox mark it made, and audits it.
func (s *Store) Resend(ctx context.Context, receiver, alertID string, audit audit.Entry) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var version int64
		err := tx.QueryRowContext(ctx, `DELETE FROM outbox_failure WHERE receiver = ? AND alert_id = ? RETURNING version`, receiver, alertID).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		// Only the mark the failure made: a later version sent since stays sent.
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox_delivery WHERE receiver = ? AND alert_id = ? AND delivered_version = ?`,
			receiver, alertID, version); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: resend: %w", err)
	}
	return nil
}
