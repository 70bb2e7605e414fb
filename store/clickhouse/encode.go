package clickhouse

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// Position is where an event was read from in Kafka (see store.Position).
type Position = store.Position

// eventColumnList is the INSERT's column list; columns appends values in
// this order.
const eventColumnList = `org, system, id, t, far_sec, far_nsec, tz_offset, action, actor, actor_role, actor_team, actor_org, ` +
	`subject, sensitivity, record_type, record_id, session_id, device, ip, mfa, outcome, ` +
	`src_topic, src_partition, src_offset, batch, retention_days, actor_kind`

// DateTime64(9) holds 1900-01-01 … 2262-04-11; times outside are clamped in
// t (so they still sort at the ends) and kept exactly in far_sec/far_nsec.
var (
	minT = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxT = time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC)
)

func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minT):
		return minT
	case t.After(maxT):
		return maxT
	}
	return t.UTC()
}

// eventCols holds one batch of events column by column: one Append per
// column per batch, no reflection and no allocation per row beyond the
// slices' growth.
type eventCols struct {
	// LowCardinality columns take pre-boxed values: clickhouse-go's
	// LowCardinality appends box each value into an interface (one
	// allocation per row and column), and these values repeat, so each
	// distinct one is boxed once (see box).
	lc     [lcCount][]any
	intern map[string]any

	id, actor, subject  []string
	recordID, sessionID []string
	ip, batch           []string
	t                   []time.Time
	farSec, offset      []int64
	farNsec             []uint32
	tzOffset, partition []int32
	sensitivity         [][]string
	mfa                 []*bool
	retention           []uint16
}

// reset empties c, keeping its capacity for the next batch.
func (c *eventCols) reset() {
	for i := range c.lc {
		c.lc[i] = c.lc[i][:0]
	}
	*c = eventCols{
		lc: c.lc, intern: c.intern,
		id: c.id[:0], actor: c.actor[:0], subject: c.subject[:0], recordID: c.recordID[:0], sessionID: c.sessionID[:0],
		ip: c.ip[:0], batch: c.batch[:0], t: c.t[:0], farSec: c.farSec[:0], offset: c.offset[:0], farNsec: c.farNsec[:0],
		tzOffset: c.tzOffset[:0], partition: c.partition[:0], sensitivity: c.sensitivity[:0], mfa: c.mfa[:0],
		retention: c.retention[:0],
	}
}

// maxIntern bounds the boxed-value cache; past it the cache starts over.
const maxIntern = 1 << 16

// box returns s as an interface value, boxing each distinct string once.
func (c *eventCols) box(s string) any {
	if v, ok := c.intern[s]; ok {
		return v
	}
	if c.intern == nil || len(c.intern) >= maxIntern {
		c.intern = make(map[string]any, 1024)
	}
	v := any(s)
	c.intern[s] = v
	return v
}

// Indexes into lc.
const (
	lcOrg = iota
	lcSystem
	lcAction
	lcRole
	lcTeam
	lcActorOrg
	lcRecordType
	lcDevice
	lcOutcome
	lcTopic
	lcActorKind
	lcCount
)

// add appends one event. pos may be nil.
func (c *eventCols) add(e *event.Event, pos *Position, batch string, retention uint16) {
	var farSec int64
	var farNsec uint32
	if e.Time.Before(minT) || e.Time.After(maxT) {
		farSec, farNsec = e.Time.Unix(), uint32(e.Time.Nanosecond())
	}
	_, off := e.Time.Zone()
	c.lc[lcOrg] = append(c.lc[lcOrg], c.box(e.Org))
	c.lc[lcSystem] = append(c.lc[lcSystem], c.box(e.System))
	c.lc[lcAction] = append(c.lc[lcAction], c.box(string(e.Action)))
	c.lc[lcRole] = append(c.lc[lcRole], c.box(e.Actor.Role))
	c.lc[lcTeam] = append(c.lc[lcTeam], c.box(e.Actor.Team))
	c.lc[lcActorOrg] = append(c.lc[lcActorOrg], c.box(e.Actor.Org))
	c.lc[lcRecordType] = append(c.lc[lcRecordType], c.box(e.Record.Type))
	c.lc[lcDevice] = append(c.lc[lcDevice], c.box(e.Session.Device))
	c.lc[lcOutcome] = append(c.lc[lcOutcome], c.box(string(e.Outcome)))
	c.lc[lcActorKind] = append(c.lc[lcActorKind], c.box(string(e.Actor.Kind)))
	c.id = append(c.id, e.ID)
	c.t = append(c.t, clampTime(e.Time))
	c.farSec = append(c.farSec, farSec)
	c.farNsec = append(c.farNsec, farNsec)
	c.tzOffset = append(c.tzOffset, int32(off))
	c.actor = append(c.actor, e.Actor.ID)
	c.subject = append(c.subject, e.Subject.ID)
	sens := e.Subject.Sensitivity
	if sens == nil {
		sens = []string{}
	}
	c.sensitivity = append(c.sensitivity, sens)
	c.recordID = append(c.recordID, e.Record.ID)
	c.sessionID = append(c.sessionID, e.Session.ID)
	c.ip = append(c.ip, e.Session.IP)
	c.mfa = append(c.mfa, e.Session.MFA)
	if pos != nil {
		c.lc[lcTopic] = append(c.lc[lcTopic], c.box(pos.Topic))
		c.partition = append(c.partition, int32(pos.Partition))
		c.offset = append(c.offset, pos.Offset)
	} else {
		c.lc[lcTopic] = append(c.lc[lcTopic], c.box(""))
		c.partition = append(c.partition, -1)
		c.offset = append(c.offset, -1)
	}
	c.batch = append(c.batch, batch)
	c.retention = append(c.retention, retention)
}

// values returns the columns in eventColumnList order.
func (c *eventCols) values() []any {
	return []any{c.lc[lcOrg], c.lc[lcSystem], c.id, c.t, c.farSec, c.farNsec, c.tzOffset, c.lc[lcAction], c.actor,
		c.lc[lcRole], c.lc[lcTeam], c.lc[lcActorOrg], c.subject, c.sensitivity, c.lc[lcRecordType], c.recordID, c.sessionID,
		c.lc[lcDevice], c.ip, c.mfa, c.lc[lcOutcome], c.lc[lcTopic], c.partition, c.offset, c.batch, c.retention,
		c.lc[lcActorKind]}
}

// appendTo hands the columns to a batch's or block's columns.
func (c *eventCols) appendTo(appendCol func(i int, v any) error) error {
	for i, v := range c.values() {
		if err := appendCol(i, v); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

// decodeEvent rebuilds an event from its stored columns.
func decodeEvent(r *eventRow) event.Event {
	at := r.T
	if r.FarSec != 0 || r.FarNsec != 0 {
		at = time.Unix(r.FarSec, int64(r.FarNsec))
	}
	if r.TZOffset == 0 {
		at = at.UTC()
	} else {
		at = at.In(time.FixedZone("", int(r.TZOffset)))
	}
	var sens []string
	if len(r.Sensitivity) > 0 {
		sens = r.Sensitivity
	}
	return event.Event{
		ID: r.ID, Time: at, Org: r.Org, System: r.System, Action: event.Action(r.Action),
		Actor:   event.Actor{ID: r.Actor, Role: r.Role, Team: r.Team, Org: r.ActorOrg, Kind: event.ActorKind(r.ActorKind)},
		Subject: event.Subject{ID: r.Subject, Sensitivity: sens},
		Record:  event.Record{Type: r.RecordType, ID: r.RecordID},
		Session: event.Session{ID: r.SessionID, Device: r.Device, IP: r.IP, MFA: r.MFA},
		Outcome: event.Outcome(r.Outcome),
	}
}

type eventRow struct {
	Org, System, ID string
	T               time.Time
	FarSec          int64
	FarNsec         uint32
	TZOffset        int32
	Action, Actor   string
	Role, Team      string
	ActorOrg        string
	ActorKind       string
	Subject         string
	Sensitivity     []string
	RecordType      string
	RecordID        string
	SessionID       string
	Device, IP      string
	MFA             *bool
	Outcome         string
}

const eventSelectList = `org, system, id, t, far_sec, far_nsec, tz_offset, action, actor, actor_role, actor_team, actor_org, ` +
	`subject, sensitivity, record_type, record_id, session_id, device, ip, mfa, outcome, actor_kind`

func (r *eventRow) dest() []any {
	return []any{&r.Org, &r.System, &r.ID, &r.T, &r.FarSec, &r.FarNsec, &r.TZOffset, &r.Action, &r.Actor, &r.Role, &r.Team, &r.ActorOrg,
		&r.Subject, &r.Sensitivity, &r.RecordType, &r.RecordID, &r.SessionID, &r.Device, &r.IP, &r.MFA, &r.Outcome, &r.ActorKind}
}

// batchToken names one batch of new events: the Kafka ranges it covers
// (topic:partition:first-last, several when the batch spans partitions)
// and a hash of the new events' keys, so that the same token always means
// the same rows.
func batchToken(fresh []event.Event, pos []Position) string {
	h := sha256.New()
	for i := range fresh {
		e := &fresh[i]
		h.Write([]byte(e.Org))
		h.Write([]byte{0})
		h.Write([]byte(e.System))
		h.Write([]byte{0})
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
	}
	sum := hex.EncodeToString(h.Sum(nil)[:16])
	if len(pos) == 0 {
		return "keys/" + sum
	}
	type tp struct {
		topic     string
		partition int
	}
	ranges := map[tp][2]int64{}
	for _, p := range pos {
		k := tp{p.Topic, p.Partition}
		r, ok := ranges[k]
		if !ok {
			r = [2]int64{p.Offset, p.Offset}
		}
		r[0], r[1] = min(r[0], p.Offset), max(r[1], p.Offset)
		ranges[k] = r
	}
	parts := make([]string, 0, len(ranges))
	for k, r := range ranges {
		parts = append(parts, k.topic+":"+strconv.Itoa(k.partition)+":"+strconv.FormatInt(r[0], 10)+"-"+strconv.FormatInt(r[1], 10))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",") + "/" + sum
}
