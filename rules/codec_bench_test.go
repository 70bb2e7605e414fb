package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
)

// BenchmarkStateCodec times the JSON of the checkpoints the Engine writes
// and reads back: one key's Keyed state (drain, restore), an org's clock
// entry, and a chunk of waiting events.
func BenchmarkStateCodec(b *testing.B) {
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	b.Run("keyed/encode", func(b *testing.B) {
		t := benchKeyed(at)
		b.ReportAllocs()
		for b.Loop() {
			t.orgs["st-martins"]["u-1"].dirty = true
			t.dirty = append(t.dirty[:0], orgKey{"st-martins", "u-1"})
			if _, err := t.drain(nil, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyed/decode", func(b *testing.B) {
		out, err := benchKeyed(at).drain(nil, false)
		if err != nil || len(out) != 1 {
			b.Fatal(out, err)
		}
		t := NewKeyed[codecActor]("actors", time.Hour)
		t.bind("rules/bulk-access/")
		b.ReportAllocs()
		for b.Loop() {
			if err := t.restore(out[0].Key, out[0].Value); err != nil {
				b.Fatal(err)
			}
		}
	})
	c := &orgClock{wm: at, frontier: at.Add(-time.Minute), judged: at.Add(-2 * time.Minute)}
	b.Run("clock/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("clock/decode", func(b *testing.B) {
		v, err := c.encode()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeClock(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("waiting/checkpoint-100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			oc := &orgClock{wm: at, frontier: at.Add(-time.Hour)}
			for _, ev := range benchWaiting(at, 100) {
				oc.push(ev)
			}
			if _, err := oc.checkpoint("st-martins", nil, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("waiting/restore-100", func(b *testing.B) {
		oc := &orgClock{wm: at, frontier: at.Add(-time.Hour)}
		for _, ev := range benchWaiting(at, 100) {
			oc.push(ev)
		}
		out, err := oc.checkpoint("st-martins", nil, false)
		if err != nil || len(out) == 0 {
			b.Fatal(out, err)
		}
		b.ReportAllocs()
		for b.Loop() {
			rc := &orgClock{wm: at, frontier: at.Add(-time.Hour)}
			if err := rc.restoreChunk("st-martins", out[0].Key, out[0].Value, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchKeyed(at time.Time) *Keyed[codecActor] {
	t := NewKeyed[codecActor]("actors", time.Hour)
	t.bind("rules/bulk-access/")
	win := make([]byte, 12*16)
	for i := range win {
		win[i] = byte(i * 7)
	}
	t.table("st-martins")["u-1"] = &keyedEntry[codecActor]{
		at:    at,
		key:   "u-1",
		val:   codecActor{Last: at.UnixNano(), Win: win, Day: 20514, Peak: 14, Team: "webster-court", Own: 9, TeamBase: 11},
		dirty: true,
	}
	t.dirty = append(t.dirty, orgKey{"st-martins", "u-1"})
	return t
}

func benchWaiting(at time.Time, n int) []*event.Event {
	mfa := true
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = &event.Event{
			ID: fmt.Sprintf("lmc-%09d", i), Time: at.Add(time.Duration(i) * time.Second), Org: "st-martins", System: "logmycare",
			Action:  event.ActionView,
			Actor:   event.Actor{ID: fmt.Sprintf("u-%d", i%30), Role: "support-worker", Team: "webster-court", Org: "st-martins"},
			Subject: event.Subject{ID: fmt.Sprintf("c-%04d", i%200), Sensitivity: []string{"safeguarding"}},
			Record:  event.Record{Type: "care-plan", ID: fmt.Sprintf("cp-%d", i%900)},
			Session: event.Session{ID: fmt.Sprintf("s-%d", i%50), Device: "tab-01", IP: "10.2.0.14", MFA: &mfa},
			Outcome: event.OutcomeSuccess,
		}
	}
	return evs
}

// codecActor has the shape of the bulk-access check's per-actor state
// (checks/bulkaccess): packed bytes, small numbers and a label, the
// largest value any check checkpoints after every batch.
type codecActor struct {
	Last     int64  `json:"l"`
	Win      []byte `json:"w,omitempty"`
	Day      int32  `json:"d"`
	Peak     int32  `json:"p,omitempty"`
	Team     string `json:"t,omitempty"`
	Own      int32  `json:"o,omitempty"`
	TeamBase int32  `json:"b,omitempty"`
	Hist     []byte `json:"h,omitempty"`
}
