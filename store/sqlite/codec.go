package sqlite

import (
	"fmt"
	"math"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/storedjson"
)

// row is one event in its storage form: the queried columns, and detail.
type row struct {
	Org, System, ID        string
	T                      int64
	Action, Actor, Subject string
	Detail                 detail
}

// detail holds the fields that no query filters on, stored together as one
// JSON column to keep rows small and inserts cheap.
type detail struct {
	Role     string `json:"r,omitempty"`
	Team     string `json:"m,omitempty"`
	ActorOrg string `json:"o,omitempty"`
	// ActorKind is event.Actor.Kind; absent for staff, so rows written
	// before it existed read as staff without a migration.
	ActorKind   string   `json:"k,omitempty"`
	Sensitivity []string `json:"s,omitempty"`
	RecordType  string   `json:"rt,omitempty"`
	RecordID    string   `json:"ri,omitempty"`
	SessionID   string   `json:"si,omitempty"`
	Device      string   `json:"sd,omitempty"`
	IP          string   `json:"ip,omitempty"`
	MFA         *bool    `json:"mfa,omitempty"`
	Outcome     string   `json:"x,omitempty"`
	// Offset is the event's UTC offset in seconds: the instant is in t, the
	// offset the producer wrote is kept beside it.
	Offset int `json:"z,omitempty"`
	// Sec and Nsec hold the exact time when it lies outside what int64
	// nanoseconds can hold (before 1678 or after 2262); t is then clamped.
	Sec  *int64 `json:"ts,omitempty"`
	Nsec int32  `json:"tn,omitempty"`
}

// minT and maxT bound t: the nanosecond range, kept clear of the int64
// extremes that JSON number parsing may not carry exactly.
var (
	minT = time.Unix(0, math.MinInt64+1)
	maxT = time.Unix(0, math.MaxInt64-1)
)

// timeKey is t's sortable storage form: unix nanoseconds, clamped.
func timeKey(t time.Time) int64 {
	switch {
	case t.Before(minT):
		return minT.UnixNano()
	case t.After(maxT):
		return maxT.UnixNano()
	}
	return t.UnixNano()
}

func toRow(e *event.Event) row {
	_, off := e.Time.Zone()
	r := row{
		Org: e.Org, System: e.System, ID: e.ID, T: timeKey(e.Time),
		Action: string(e.Action), Actor: e.Actor.ID, Subject: e.Subject.ID,
		Detail: detail{
			Role: e.Actor.Role, Team: e.Actor.Team, ActorOrg: e.Actor.Org, ActorKind: string(e.Actor.Kind),
			Sensitivity: e.Subject.Sensitivity,
			RecordType:  e.Record.Type, RecordID: e.Record.ID,
			SessionID: e.Session.ID, Device: e.Session.Device, IP: e.Session.IP, MFA: e.Session.MFA,
			Outcome: string(e.Outcome), Offset: off,
		},
	}
	if e.Time.Before(minT) || e.Time.After(maxT) {
		sec := e.Time.Unix()
		r.Detail.Sec, r.Detail.Nsec = &sec, int32(e.Time.Nanosecond())
	}
	return r
}

// encoded is a batch being flattened into the bound values of
// insertEventsSQL, eventColumns per event, by encodeChunks.
type encoded struct {
	args []any
	// ready yields once per chunkRows events, in order: nil when that
	// chunk's values are in args, or the error that stopped encoding.
	ready chan error
}

// encodeChunks flattens events on its own goroutine. ready has room for
// every chunk, so the goroutine never blocks and ends even if nobody reads.
func encodeChunks(events []event.Event) *encoded {
	chunks := (len(events) + chunkRows - 1) / chunkRows
	e := &encoded{args: make([]any, len(events)*eventColumns), ready: make(chan error, chunks)}
	go func() {
		for lo := 0; lo < len(events); lo += chunkRows {
			if err := encodeEvents(e.args[lo*eventColumns:], events[lo:min(lo+chunkRows, len(events))]); err != nil {
				e.ready <- err
				return
			}
			e.ready <- nil
		}
	}()
	return e
}

// encodeEvents writes the bound values of events into args.
func encodeEvents(args []any, events []event.Event) error {
	for i := range events {
		r := toRow(&events[i])
		d, err := storedjson.Marshal(&r.Detail)
		if err != nil {
			return fmt.Errorf("encode event detail: %w", err)
		}
		a := args[i*eventColumns : (i+1)*eventColumns]
		a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7] = r.Org, r.System, r.ID, r.T, r.Action, r.Actor, r.Subject, string(d)
	}
	return nil
}

// decodeEvent rebuilds an event from its stored columns.
func decodeEvent(org, system, id string, t int64, action, actor, subject, det string) (event.Event, error) {
	var d detail
	if err := storedjson.Unmarshal([]byte(det), &d); err != nil {
		return event.Event{}, fmt.Errorf("decode stored event detail: %w", err)
	}
	var at time.Time
	if d.Sec != nil {
		at = time.Unix(*d.Sec, int64(d.Nsec))
	} else {
		at = time.Unix(0, t)
	}
	if d.Offset == 0 {
		at = at.UTC()
	} else {
		at = at.In(time.FixedZone("", d.Offset))
	}
	return event.Event{
		ID: id, Time: at, Org: org, System: system, Action: event.Action(action),
		Actor:   event.Actor{ID: actor, Role: d.Role, Team: d.Team, Org: d.ActorOrg, Kind: event.ActorKind(d.ActorKind)},
		Subject: event.Subject{ID: subject, Sensitivity: d.Sensitivity},
		Record:  event.Record{Type: d.RecordType, ID: d.RecordID},
		Session: event.Session{ID: d.SessionID, Device: d.Device, IP: d.IP, MFA: d.MFA},
		Outcome: event.Outcome(d.Outcome),
	}, nil
}
