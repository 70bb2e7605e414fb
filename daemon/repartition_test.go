package daemon

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// seenEngine records the ids of the events it is given.
type seenEngine struct{ seen *[]string }

func (e seenEngine) Process(fresh []event.Event) (store.Effects, error) {
	for i := range fresh {
		*e.seen = append(*e.seen, fresh[i].ID)
	}
	return store.Effects{}, nil
}
func (seenEngine) Flush() store.Effects                     { return store.Effects{} }
func (seenEngine) Restore(entries []store.StateEntry) error { return nil }
func (seenEngine) Reset()                                   {}
func (seenEngine) SetRoster(rules.Roster)                   {}

// TestRepartProcessorDedup: a repartition task skips what it already
// processed, whether the consumer redelivers it (same offsets) or an outbox
// re-sends it (new offsets), also after a restart.
func TestRepartProcessorDedup(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var seen []string
	newProc := func() *repartProcessor {
		return newRepartProcessor(st, streamTeam, func() (engine, error) { return seenEngine{&seen}, nil }, testLogger(t), nil, 0)
	}
	batch := func(from int64, ids ...string) (context.Context, []event.Event) {
		evs := make([]event.Event, len(ids))
		pos := make([]store.Position, len(ids))
		for i, id := range ids {
			evs[i] = event.Event{ID: id, Org: "o", System: "s", Time: time.Unix(int64(i), 0)}
			pos[i] = store.Position{Topic: "g-by-team", Partition: 1, Offset: from + int64(i)}
		}
		return store.WithPositions(ctx, pos), evs
	}
	p := newProc()
	for _, tc := range []struct {
		name string
		from int64
		ids  []string
		want []string
	}{
		{"first", 0, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"redelivered", 0, []string{"a", "b", "c"}, nil},
		{"partly redelivered", 2, []string{"c", "d"}, []string{"d"}},
		{"re-sent", 4, []string{"a", "b", "e"}, []string{"e"}},
		{"restart, re-sent", 7, []string{"d", "e", "f"}, []string{"f"}},
		{"restart, redelivered", 5, []string{"b", "e"}, nil},
	} {
		if strings.HasPrefix(tc.name, "restart") {
			p = newProc()
		}
		seen = nil
		c, evs := batch(tc.from, tc.ids...)
		if _, err := p.Process(c, evs); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(seen, tc.want) {
			t.Errorf("%s: engine saw %v, want %v", tc.name, seen, tc.want)
		}
	}
}

// TestForwarderRows: fresh events go to the device topic when they carry a
// device and to the team topic when they have a team, keyed by org.
func TestForwarderRows(t *testing.T) {
	f := &forwarder{deviceTopic: "g-by-device", teamTopic: "g-by-team", instance: "i"}
	evs := []event.Event{
		{ID: "1", Org: "o", Actor: event.Actor{ID: "u", Team: "t"}, Session: event.Session{Device: "d"}},
		{ID: "2", Org: "o", Actor: event.Actor{ID: "u"}, Session: event.Session{Device: "d"}},
		{ID: "3", Org: "o", Actor: event.Actor{ID: "u", Team: "t"}},
		{ID: "4", Org: "o", Actor: event.Actor{ID: "u"}},
	}
	rows, err := f.rows(evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Key != "outbox/i/0000000000000001" {
		t.Fatalf("rows %v", rows)
	}
	var msgs []outboxMsg
	if err := json.Unmarshal(rows[0].Value, &msgs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Topic+" "+strings.ReplaceAll(m.Key, "\x00", "|")+" "+ev.ID)
	}
	want := []string{"g-by-device o|d 1", "g-by-team o|t 1", "g-by-device o|d 2", "g-by-team o|t 3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if rows, _ := f.rows(evs[3:]); rows != nil {
		t.Errorf("an event with neither device nor team: rows %v", rows)
	}
}
