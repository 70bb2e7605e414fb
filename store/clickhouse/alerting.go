package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/backoff"
	"github.com/dpiawatch/dpiawatch/silence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
	"github.com/dpiawatch/dpiawatch/triage"
)

// Alert delivery's tables (migration 3): message refs, triage delivery
// marks and the audit trail, which also holds triages and silences — see
// migrateAlerting for why one row carries both a change and its audit entry.

var _ store.AlertingStore = (*Store)(nil)

// Audit row kinds (the audit table's kind enum; 'audit' is a plain entry).
const (
	kindTriage  = "triage"
	kindSilence = "silence"
	kindNote    = "note"
)

// MessageRef returns the message a receiver posted about an alert, or
// store.ErrNotFound.
func (s *Store) MessageRef(ctx context.Context, receiver, alertID string) (store.MessageRef, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT channel, ts, version, digest FROM `+s.db+`.message_refs WHERE receiver = `+p.str(receiver)+
		` AND alert_id = `+p.str(alertID)+` ORDER BY version DESC, seq DESC LIMIT 1`, p.list()...)
	if err != nil {
		return store.MessageRef{}, fmt.Errorf("clickhouse: message ref: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return store.MessageRef{}, fmt.Errorf("clickhouse: message ref: %w", err)
		}
		return store.MessageRef{}, store.ErrNotFound
	}
	ref := store.MessageRef{Receiver: receiver, AlertID: alertID}
	var version uint64
	if err := rows.Scan(&ref.Channel, &ref.TS, &version, &ref.Digest); err != nil {
		return store.MessageRef{}, fmt.Errorf("clickhouse: message ref: %w", err)
	}
	ref.Version = int64(version)
	return ref, nil
}

// PutMessageRef inserts or replaces a ref; a lower version never replaces a
// higher one (readers and merges both keep the highest version; at equal
// versions the later write wins, as in the embedded store).
func (s *Store) PutMessageRef(ctx context.Context, ref store.MessageRef) error {
	if ref.Version < 0 {
		return fmt.Errorf("clickhouse: put message ref: negative version %d", ref.Version)
	}
	err := s.insertRow(ctx, `INSERT INTO `+s.db+`.message_refs (receiver, alert_id, channel, ts, version, digest, seq)`, "",
		ref.Receiver, ref.AlertID, ref.Channel, ref.TS, uint64(ref.Version), ref.Digest, s.nextSeq())
	if err != nil {
		return fmt.Errorf("clickhouse: put message ref: %w", err)
	}
	return nil
}

// auditRow is one row of the audit table.
type auditRow struct {
	seq                uint64
	e                  audit.Entry
	org, kind          string
	outcome, note, src string
	action             triage.Action
	silenceID, silence string
	startsAt, endsAt   time.Time
}

const auditColumns = `seq, at, org, actor, action, object, detail, kind, outcome, note, source, action_owner, action_due, action_status, silence_id, silence, starts_at, ends_at`

// insertAudit writes one audit row. Its deduplication token is its seq, so
// that insertRow's retry after a lost answer stores it once.
func (s *Store) insertAudit(ctx context.Context, r auditRow) error {
	return s.insertRow(ctx, `INSERT INTO `+s.db+`.audit (`+auditColumns+`)`, "audit:"+strconv.FormatUint(r.seq, 10),
		r.seq, clampTime(r.e.At), r.org, r.e.Actor, r.e.Action, r.e.Object, r.e.Detail, r.kind, r.outcome, r.note, r.src,
		r.action.Owner, r.action.Due, r.action.Status, r.silenceID, r.silence, clampTime(r.startsAt), clampTime(r.endsAt))
}

// insertRow inserts one row (one part: atomic). With a token it retries a
// failed insert a few times: the token makes ClickHouse drop the retry if
// the first attempt landed and only its answer was lost.
// insertRetry spaces insertRow's attempts: the retry is for a lost answer
// or a brief hiccup, not an outage (the caller's own retry covers that).
var insertRetry = backoff.Policy{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond}

func (s *Store) insertRow(ctx context.Context, insert, token string, values ...any) error {
	attempts := 1
	if token != "" {
		attempts = 3
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplicate": 1, "insert_deduplication_token": token}))
	}
	var err error
	for i := range attempts {
		if i > 0 {
			if serr := backoff.Sleep(ctx, insertRetry.Wait(i-1)); serr != nil {
				return errors.Join(err, serr)
			}
		}
		if err = s.insertOnce(ctx, insert, values); err == nil {
			return nil
		}
	}
	return err
}

func (s *Store) insertOnce(ctx context.Context, insert string, values []any) error {
	b, err := s.conn.PrepareBatch(ctx, insert)
	if err != nil {
		return err
	}
	if err := b.Append(values...); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// AddTriage stores t as one audit row, which is at once the triage and its
// audit entry, and returns it with Seq set. A nil t.Action takes the
// action of the alert's newest decision, read with the alert's org.
func (s *Store) AddTriage(ctx context.Context, t triage.Decision) (triage.Decision, error) {
	// The alert's org goes with the triage, so that a reader account's row
	// policy shows it its own org's triages only.
	var org string
	var prev triage.Action
	var p params
	err := s.conn.QueryRow(ctx, `SELECT (SELECT any(org) FROM `+s.db+`.alerts WHERE id = `+p.str(t.AlertID)+`) AS o,
	argMax(action_owner, seq), argMax(action_due, seq), argMax(toString(action_status), seq)
FROM `+s.db+`.audit FINAL WHERE kind = 'triage' AND object = `+p.str(t.AlertID), p.list()...).Scan(&org, &prev.Owner, &prev.Due, &prev.Status)
	if err != nil {
		return triage.Decision{}, fmt.Errorf("clickhouse: add triage: %w", err)
	}
	if t.Action == nil && !prev.IsZero() {
		t.Action = &prev
	}
	var act triage.Action
	if !t.Action.IsZero() {
		act = *t.Action
	} else {
		t.Action = nil
	}
	seq := s.nextSeq()
	t.Seq = int64(seq)
	d := map[string]any{"seq": t.Seq, "source": t.Source, "note": t.Note}
	if t.Action != nil {
		d["action"] = t.Action
	}
	detail, err := storedjson.Marshal(d)
	if err != nil {
		return triage.Decision{}, fmt.Errorf("clickhouse: add triage: %w", err)
	}
	r := auditRow{
		seq: seq, org: org, kind: kindTriage, outcome: t.Outcome, note: t.Note, src: t.Source, action: act,
		e: audit.Entry{At: t.At, Actor: t.Actor, Action: "triage." + t.Outcome, Object: t.AlertID, Detail: string(detail)},
	}
	if err := s.insertAudit(ctx, r); err != nil {
		return triage.Decision{}, fmt.Errorf("clickhouse: add triage: %w", err)
	}
	return t, nil
}

const triageSelect = `SELECT seq, object, outcome, actor, at, note, source, action_owner, action_due, toString(action_status) FROM `

func (s *Store) queryTriages(ctx context.Context, q string, args ...any) ([]triage.Decision, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []triage.Decision
	for rows.Next() {
		var t triage.Decision
		var seq uint64
		var act triage.Action
		if err := rows.Scan(&seq, &t.AlertID, &t.Outcome, &t.Actor, &t.At, &t.Note, &t.Source, &act.Owner, &act.Due, &act.Status); err != nil {
			return nil, err
		}
		t.Seq, t.At = int64(seq), t.At.UTC()
		if !act.IsZero() {
			t.Action = &act
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Triages returns the triages of one alert, oldest first.
func (s *Store) Triages(ctx context.Context, alertID string) ([]triage.Decision, error) {
	var p params
	out, err := s.queryTriages(ctx, triageSelect+s.db+`.audit FINAL WHERE kind = 'triage' AND object = `+p.str(alertID)+` ORDER BY seq`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: triages: %w", err)
	}
	return out, nil
}

// PendingTriages returns up to limit triages (limit <= 0: all) receiver has
// not been told of, oldest first.
func (s *Store) PendingTriages(ctx context.Context, receiver string, limit int) ([]triage.Decision, error) {
	var p params
	q := triageSelect + s.db + `.audit FINAL WHERE kind = 'triage' AND seq NOT IN (SELECT seq FROM ` + s.db +
		`.triage_delivery WHERE receiver = ` + p.str(receiver) + `) ORDER BY seq`
	if limit > 0 {
		q += ` LIMIT ` + p.int(int64(limit))
	}
	out, err := s.queryTriages(ctx, q, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: pending triages: %w", err)
	}
	return out, nil
}

// MarkTriageDelivered records that receiver was told of triage seq.
func (s *Store) MarkTriageDelivered(ctx context.Context, receiver string, seq int64) error {
	if seq < 0 {
		return fmt.Errorf("clickhouse: mark triage delivered: negative seq %d", seq)
	}
	if err := s.insertRow(ctx, `INSERT INTO `+s.db+`.triage_delivery (receiver, seq)`, "", receiver, uint64(seq)); err != nil {
		return fmt.Errorf("clickhouse: mark triage delivered: %w", err)
	}
	return nil
}

// PutSilence inserts or replaces a silence (by ID) with its audit entry, in
// one row.
func (s *Store) PutSilence(ctx context.Context, sl silence.Silence, audit audit.Entry) error {
	body, err := storedjson.Marshal(sl)
	if err != nil {
		return fmt.Errorf("clickhouse: put silence: %w", err)
	}
	r := auditRow{seq: s.nextSeq(), e: audit, kind: kindSilence, silenceID: sl.ID, silence: string(body), startsAt: sl.StartsAt, endsAt: sl.EndsAt}
	if err := s.insertAudit(ctx, r); err != nil {
		return fmt.Errorf("clickhouse: put silence: %w", err)
	}
	return nil
}

// latestSilences is the newest version of every silence.
func (s *Store) latestSilences(where string) string {
	return `SELECT silence_id, argMax(silence, seq) AS body, argMax(starts_at, seq) AS cur_starts, argMax(ends_at, seq) AS cur_ends FROM ` +
		s.db + `.audit FINAL WHERE kind = 'silence'` + where + ` GROUP BY silence_id`
}

func decodeSilences(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) ([]silence.Silence, error) {
	var out []silence.Silence
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var sl silence.Silence
		if err := storedjson.Unmarshal([]byte(body), &sl); err != nil {
			return nil, fmt.Errorf("decode silence: %w", err)
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}

// Silence returns one silence, or store.ErrNotFound.
func (s *Store) Silence(ctx context.Context, id string) (silence.Silence, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT body FROM (`+s.latestSilences(` AND silence_id = `+p.str(id))+`)`, p.list()...)
	if err != nil {
		return silence.Silence{}, fmt.Errorf("clickhouse: silence: %w", err)
	}
	defer rows.Close()
	out, err := decodeSilences(rows)
	if err != nil {
		return silence.Silence{}, fmt.Errorf("clickhouse: silence: %w", err)
	}
	if len(out) == 0 {
		return silence.Silence{}, store.ErrNotFound
	}
	return out[0], nil
}

// ListSilences returns every silence whose EndsAt is after since (zero:
// all), by StartsAt then ID.
func (s *Store) ListSilences(ctx context.Context, since time.Time) ([]silence.Silence, error) {
	var p params
	where := ""
	if !since.IsZero() {
		where = ` WHERE cur_ends > ` + p.time(since)
	}
	rows, err := s.conn.Query(ctx, `SELECT body FROM (`+s.latestSilences("")+`)`+where+` ORDER BY cur_starts, silence_id`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: silences: %w", err)
	}
	defer rows.Close()
	out, err := decodeSilences(rows)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: silences: %w", err)
	}
	return out, nil
}

// AuditLog returns up to limit entries (0: all), newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]audit.Entry, error) {
	var p params
	q := `SELECT seq, at, actor, action, object, detail FROM ` + s.db + `.audit FINAL ORDER BY seq DESC`
	if limit > 0 {
		q += ` LIMIT ` + p.int(int64(limit))
	}
	rows, err := s.conn.Query(ctx, q, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: audit: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var seq uint64
		if err := rows.Scan(&seq, &e.At, &e.Actor, &e.Action, &e.Object, &e.Detail); err != nil {
			return nil, fmt.Errorf("clickhouse: audit: %w", err)
		}
		e.Seq, e.At = int64(seq), e.At.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: audit: %w", err)
	}
	return out, nil
}

// MarkFailed records a refused alert version, then marks it done for the
// receiver. A crash between the two leaves the alert pending (sent again),
// never given up without a record.
func (s *Store) MarkFailed(ctx context.Context, f store.DeliveryFailure) error {
	if f.Version < 0 {
		return fmt.Errorf("clickhouse: mark failed: negative version %d", f.Version)
	}
	if err := s.insertRow(ctx, `INSERT INTO `+s.db+`.outbox_failure (receiver, alert_id, version, reason, at, seq)`, "",
		f.Receiver, f.AlertID, uint64(f.Version), f.Reason, clampTime(f.At), s.nextSeq()); err != nil {
		return fmt.Errorf("clickhouse: mark failed: %w", err)
	}
	return s.MarkDelivered(ctx, f.Receiver, f.AlertID, f.Version)
}

// DeliveryFailures returns the failures of one alert by receiver, leaving
// out those a later delivered version superseded.
func (s *Store) DeliveryFailures(ctx context.Context, alertID string) ([]store.DeliveryFailure, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT f.receiver, f.version, f.reason, f.at FROM `+s.db+`.outbox_failure AS f FINAL
LEFT JOIN (SELECT receiver, max(delivered_version) AS dv FROM `+s.db+`.outbox_delivery WHERE alert_id = `+p.str(alertID)+` GROUP BY receiver) AS d
ON d.receiver = f.receiver
WHERE f.alert_id = `+p.str(alertID)+` AND d.dv <= f.version
ORDER BY f.receiver
SETTINGS join_use_nulls = 0`, p.list()...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: delivery failures: %w", err)
	}
	defer rows.Close()
	var out []store.DeliveryFailure
	for rows.Next() {
		f := store.DeliveryFailure{AlertID: alertID}
		var version uint64
		if err := rows.Scan(&f.Receiver, &version, &f.Reason, &f.At); err != nil {
			return nil, fmt.Errorf("clickhouse: delivery failures: %w", err)
		}
		f.Version, f.At = int64(version), f.At.UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: delivery failures: %w", err)
	}
	return out, nil
}

// Resend deletes the failure and the outbox mark it made (lightweight
// deletes: rare, by a person), so the alert is pending again, and audits
// it. The mark goes first: a crash before the failure row goes sends the
// alert again and leaves a stale row, never a lost re-send.
func (s *Store) Resend(ctx context.Context, receiver, alertID string, audit audit.Entry) error {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT version FROM `+s.db+`.outbox_failure FINAL WHERE receiver = `+p.str(receiver)+
		` AND alert_id = `+p.str(alertID), p.list()...)
	if err != nil {
		return fmt.Errorf("clickhouse: resend: %w", err)
	}
	var version uint64
	found := rows.Next()
	if found {
		err = rows.Scan(&version)
	}
	err = errors.Join(err, rows.Err(), rows.Close())
	if err != nil {
		return fmt.Errorf("clickhouse: resend: %w", err)
	}
	if !found {
		return store.ErrNotFound
	}
	p = params{}
	where := ` WHERE receiver = ` + p.str(receiver) + ` AND alert_id = ` + p.str(alertID)
	for _, stmt := range []string{
		`DELETE FROM ` + s.db + `.outbox_delivery` + where + ` AND delivered_version = ` + p.uint(version),
		`DELETE FROM ` + s.db + `.outbox_failure` + where, // its parameters are the first statement's, less one
	} {
		if err := s.conn.Exec(ctx, stmt, p.list()...); err != nil {
			return fmt.Errorf("clickhouse: resend: %w", err)
		}
	}
	if err := s.insertAudit(ctx, auditRow{seq: s.nextSeq(), e: audit, kind: "audit"}); err != nil {
		return fmt.Errorf("clickhouse: resend: audit: %w", err)
	}
	return nil
}
