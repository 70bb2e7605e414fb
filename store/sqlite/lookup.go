package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

var (
	_ store.KeyLookup   = (*Store)(nil)
	_ store.EventLoader = (*Store)(nil)
)

// lookupChunk bounds one lookup statement (3 parameters a key).
const lookupChunk = 300

// Stored implements store.KeyLookup on a read connection, so it runs beside
// a write in progress (WAL readers do not block the writer).
func (s *Store) Stored(ctx context.Context, events []event.Event) ([]bool, error) {
	out := make([]bool, len(events))
	if len(events) == 0 {
		return out, nil
	}
	found := map[event.Key]bool{}
	args := make([]any, 0, 3*lookupChunk)
	for lo := 0; lo < len(events); lo += lookupChunk {
		hi := min(lo+lookupChunk, len(events))
		args = args[:0]
		for i := lo; i < hi; i++ {
			args = append(args, events[i].Org, events[i].System, events[i].ID)
		}
		q := `SELECT org, system, id FROM events WHERE (org, system, id) IN (VALUES (?,?,?)` +
			strings.Repeat(`,(?,?,?)`, hi-lo-1) + `)`
		rows, err := s.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: look up stored events: %w", err)
		}
		for rows.Next() {
			var k event.Key
			if err := rows.Scan(&k.Org, &k.System, &k.ID); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: look up stored events: %w", err)
			}
			found[k] = true
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: look up stored events: %w", err)
		}
	}
	if len(found) > 0 {
		for i := range events {
			out[i] = found[events[i].Key()]
		}
	}
	return out, nil
}

// EventsByKey implements store.EventLoader.
func (s *Store) EventsByKey(ctx context.Context, keys []event.Key) ([]event.Event, error) {
	out, err := eventsByKey(ctx, s.r, keys)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events by key: %w", err)
	}
	return out, nil
}

// queryer is a read connection or the write transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// eventsByKey reads the events with the given keys through q: a read
// connection sees what is committed, the write transaction its own rows too.
func eventsByKey(ctx context.Context, q queryer, keys []event.Key) ([]event.Event, error) {
	var out []event.Event
	args := make([]any, 0, 3*lookupChunk)
	for lo := 0; lo < len(keys); lo += lookupChunk {
		hi := min(lo+lookupChunk, len(keys))
		args = args[:0]
		for _, k := range keys[lo:hi] {
			args = append(args, k.Org, k.System, k.ID)
		}
		stmt := `SELECT org, system, id, t, action, actor, subject, detail FROM events WHERE (org, system, id) IN (VALUES (?,?,?)` +
			strings.Repeat(`,(?,?,?)`, hi-lo-1) + `)`
		rows, err := q.QueryContext(ctx, stmt, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				org, system, id, action, actor, subject, det string
				t                                            int64
			)
			if err := rows.Scan(&org, &system, &id, &t, &action, &actor, &subject, &det); err != nil {
				rows.Close()
				return nil, err
			}
			e, err := decodeEvent(org, system, id, t, action, actor, subject, det)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, e)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
