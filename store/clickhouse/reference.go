package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// Reference-data snapshots (migration 4): each distinct set of reference
// data is stored once, row by row, in reference_rows; each time one is put
// in force a row goes into reference_loads, after all of its rows, so that
// a snapshot is visible only whole.

var _ store.ReferenceSnapshots = (*Store)(nil)

// referenceChunk bounds the rows of one insert (a few tens of megabytes).
const referenceChunk = 50000

// Reference row kinds (the reference_rows kind enum).
const (
	refStaff        = "staff"
	refRelationship = "relationship"
	refShift        = "shift"
	refAbsence      = "absence"
	refDevice       = "device"
	refSharing      = "sharing_agreement"
)

type referenceRow struct {
	kind                   string
	n                      uint32
	org, actor, team, subj string
	validFrom              time.Time
	validTo                time.Time // zero: open-ended (NULL)
	item                   any
}

// referenceRows flattens d. Rows carry the org of their actor (or team)
// where the staff list tells it, so that row policies apply to them too.
func referenceRows(d *reference.Data) []referenceRow {
	actorOrg := map[string]string{}
	teamOrg := map[string]string{}
	for _, s := range d.Staff {
		actorOrg[s.ActorID] = s.Org
		if o, ok := teamOrg[s.Team]; ok && o != s.Org {
			teamOrg[s.Team] = "" // a team name in two orgs names neither
		} else if !ok {
			teamOrg[s.Team] = s.Org
		}
	}
	n := len(d.Staff) + len(d.Relationships) + len(d.Shifts) + len(d.Absences) + len(d.Devices) + len(d.SharingAgreements)
	out := make([]referenceRow, 0, n)
	for i, s := range d.Staff {
		out = append(out, referenceRow{kind: refStaff, n: uint32(i), org: s.Org, actor: s.ActorID, team: s.Team, validFrom: s.ActiveFrom, validTo: s.ActiveTo, item: s})
	}
	for i, r := range d.Relationships {
		org := actorOrg[r.ActorID]
		if r.ActorID == "" {
			org = teamOrg[r.Team]
		}
		out = append(out, referenceRow{kind: refRelationship, n: uint32(i), org: org, actor: r.ActorID, team: r.Team, subj: r.SubjectID, validFrom: r.ValidFrom, validTo: r.ValidTo, item: r})
	}
	for i, s := range d.Shifts {
		out = append(out, referenceRow{kind: refShift, n: uint32(i), org: actorOrg[s.ActorID], actor: s.ActorID, validFrom: s.Start, validTo: s.End, item: s})
	}
	for i, a := range d.Absences {
		out = append(out, referenceRow{kind: refAbsence, n: uint32(i), org: actorOrg[a.ActorID], actor: a.ActorID, validFrom: a.Start, validTo: a.End, item: a})
	}
	for i, dv := range d.Devices {
		out = append(out, referenceRow{kind: refDevice, n: uint32(i), org: dv.Org, actor: dv.AssignedTo, item: dv})
	}
	for i, a := range d.SharingAgreements {
		out = append(out, referenceRow{kind: refSharing, n: uint32(i), org: a.Org, validFrom: a.ValidFrom, validTo: a.ValidTo, item: a})
	}
	return out
}

// SaveReference records that d was put in force at loadedAt (see
// store.ReferenceSnapshots). Data already stored under its ID is not
// written again; rows of an interrupted save are written again by the
// retry and folded (same sorting key, FINAL on read).
func (s *Store) SaveReference(ctx context.Context, loadedAt time.Time, d *reference.Data) error {
	id, err := store.ReferenceID(d)
	if err != nil {
		return fmt.Errorf("clickhouse: save reference: %w", err)
	}
	var newest string
	var stored uint64
	var p params
	if err := s.conn.QueryRow(ctx, `SELECT (SELECT argMax(snapshot, loaded_at) FROM `+s.db+`.reference_loads), `+
		`(SELECT count() FROM `+s.db+`.reference_loads WHERE snapshot = `+p.str(id)+`)`, p.list()...).Scan(&newest, &stored); err != nil {
		return fmt.Errorf("clickhouse: save reference: %w", err)
	}
	if newest == id {
		return nil // unchanged since the last load
	}
	if stored == 0 {
		if err := s.insertReferenceRows(ctx, id, referenceRows(d)); err != nil {
			return fmt.Errorf("clickhouse: save reference: %w", err)
		}
	}
	err = s.insertRow(ctx, `INSERT INTO `+s.db+`.reference_loads (loaded_at, snapshot, staff, relationships, shifts, absences, devices, sharing_agreements)`,
		"reference:"+id+":"+strconv.FormatInt(loadedAt.UnixNano(), 10),
		clampTime(loadedAt), id, uint32(len(d.Staff)), uint32(len(d.Relationships)), uint32(len(d.Shifts)), uint32(len(d.Absences)),
		uint32(len(d.Devices)), uint32(len(d.SharingAgreements)))
	if err != nil {
		return fmt.Errorf("clickhouse: save reference: %w", err)
	}
	s.log.Info("reference snapshot saved", "snapshot", id, "rows_written", stored == 0)
	return nil
}

func (s *Store) insertReferenceRows(ctx context.Context, id string, rows []referenceRow) error {
	for lo := 0; lo < len(rows); lo += referenceChunk {
		hi := min(lo+referenceChunk, len(rows))
		ictx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"insert_deduplicate": 1, "insert_deduplication_token": "reference:" + id + ":" + strconv.Itoa(lo),
		}))
		b, err := s.conn.PrepareBatch(ictx, `INSERT INTO `+s.db+`.reference_rows (snapshot, kind, n, org, actor, team, subject, valid_from, valid_to, item)`)
		if err != nil {
			return err
		}
		for i := range rows[lo:hi] {
			r := &rows[lo+i]
			item, err := storedjson.Marshal(r.item)
			if err != nil {
				_ = b.Abort()
				return fmt.Errorf("encode %s: %w", r.kind, err)
			}
			var to *time.Time
			if !r.validTo.IsZero() {
				t := clampTime(r.validTo)
				to = &t
			}
			if err := b.Append(id, r.kind, r.n, r.org, r.actor, r.team, r.subj, clampTime(r.validFrom), to, string(item)); err != nil {
				_ = b.Abort()
				return err
			}
		}
		if err := b.Send(); err != nil {
			return err
		}
		s.m.rows.WithLabelValues("reference_rows").Add(float64(hi - lo))
	}
	return nil
}

// ReferenceAt returns the snapshot in force at t, or store.ErrNotFound.
func (s *Store) ReferenceAt(ctx context.Context, t time.Time) (store.ReferenceSnapshot, error) {
	var snap store.ReferenceSnapshot
	var p params
	rows, err := s.conn.Query(ctx, `SELECT loaded_at, snapshot FROM `+s.db+`.reference_loads FINAL WHERE loaded_at <= `+p.time(t)+
		` ORDER BY loaded_at DESC LIMIT 1`, p.list()...)
	if err != nil {
		return snap, fmt.Errorf("clickhouse: reference at: %w", err)
	}
	found := rows.Next()
	if found {
		err = rows.Scan(&snap.LoadedAt, &snap.ID)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return snap, fmt.Errorf("clickhouse: reference at: %w", err)
	}
	if !found {
		return snap, store.ErrNotFound
	}
	snap.LoadedAt = snap.LoadedAt.UTC()
	if snap.Data, err = s.referenceData(ctx, snap.ID); err != nil {
		return store.ReferenceSnapshot{}, fmt.Errorf("clickhouse: reference at: %w", err)
	}
	return snap, nil
}

// ReferenceByID returns the snapshot with id, loaded when first put in
// force, or store.ErrNotFound. Only a snapshot with a load row is found:
// the load row is its commit point.
func (s *Store) ReferenceByID(ctx context.Context, id string) (store.ReferenceSnapshot, error) {
	snap := store.ReferenceSnapshot{ID: id}
	var loads uint64
	var p params
	err := s.conn.QueryRow(ctx, `SELECT count(), min(loaded_at) FROM `+s.db+`.reference_loads WHERE snapshot = `+p.str(id), p.list()...).Scan(&loads, &snap.LoadedAt)
	if err != nil {
		return store.ReferenceSnapshot{}, fmt.Errorf("clickhouse: reference %s: %w", id, err)
	}
	if loads == 0 {
		return store.ReferenceSnapshot{}, fmt.Errorf("clickhouse: reference %s: %w", id, store.ErrNotFound)
	}
	snap.LoadedAt = snap.LoadedAt.UTC()
	if snap.Data, err = s.referenceData(ctx, id); err != nil {
		return store.ReferenceSnapshot{}, fmt.Errorf("clickhouse: reference %s: %w", id, err)
	}
	return snap, nil
}

func (s *Store) referenceData(ctx context.Context, id string) (*reference.Data, error) {
	var p params
	rows, err := s.conn.Query(ctx, `SELECT toString(kind), item FROM `+s.db+`.reference_rows FINAL WHERE snapshot = `+p.str(id)+` ORDER BY kind, n`, p.list()...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	d := &reference.Data{}
	for rows.Next() {
		var kind, item string
		if err := rows.Scan(&kind, &item); err != nil {
			return nil, err
		}
		if err := decodeReferenceItem(d, kind, []byte(item)); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kind, err)
		}
	}
	return d, rows.Err()
}

func decodeReferenceItem(d *reference.Data, kind string, item []byte) error {
	switch kind {
	case refStaff:
		return appendJSON(&d.Staff, item)
	case refRelationship:
		return appendJSON(&d.Relationships, item)
	case refShift:
		return appendJSON(&d.Shifts, item)
	case refAbsence:
		return appendJSON(&d.Absences, item)
	case refDevice:
		return appendJSON(&d.Devices, item)
	case refSharing:
		return appendJSON(&d.SharingAgreements, item)
	}
	return fmt.Errorf("unknown kind %q", kind)
}

func appendJSON[T any](list *[]T, item []byte) error {
	var v T
	if err := storedjson.Unmarshal(item, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}
