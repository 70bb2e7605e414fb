// Package routineaudit is the managers' routine audit the DPIAs promise
// ("routine audits look for evidence of workers accessing records
// inappropriately"): each period, each team's accesses are sampled at
// random — reproducibly, seeded by org, team and period — and the team's
// manager reviews each sampled access: reasonable, query (they will ask the
// worker) or refer (to the IG team). Coverage is the share of a sample
// reviewed. The package holds the samples, reviews and coverage the stores
// keep (store.RoutineAudits) and the draw itself, shared by the web UI and
// every store's tests.
package routineaudit

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
)

// Routine-audit review outcomes: what a manager concluded about one sampled
// access.
const (
	ReviewReasonable = "reasonable" // a business need is plain
	ReviewQuery      = "query"      // the manager will ask the worker
	ReviewRefer      = "refer"      // referred to the IG team as possible misuse
)

// ReviewOutcomes lists the outcomes (also a fixed label set).
var ReviewOutcomes = []string{ReviewReasonable, ReviewQuery, ReviewRefer}

// SampleItem is one access drawn for a routine audit.
type SampleItem struct {
	N         int // place in the sample, from 0
	System    string
	EventID   string
	Time      time.Time
	ActorID   string
	SubjectID string
	Action    string
	Record    string // record type
}

// Sample is the accesses drawn for one team's routine audit of one
// period. Period names it ("2026-W10", "2026-03"); From and To bound it.
// Population is how many accesses the team made in the period, of which
// Items were drawn.
type Sample struct {
	Org, DPIA, Team, Period string
	From, To                time.Time
	Population              int64
	Seed                    string // hex: how the draw can be repeated
	DrawnAt                 time.Time
	Items                   []SampleItem
}

// Review is a manager's conclusion about one sampled access; the
// newest review of an item is its outcome, older ones stay as its history.
type Review struct {
	Seq               int64 // assigned by the store
	Org, Team, Period string
	N                 int // the item reviewed
	Outcome           string
	Reviewer          string
	At                time.Time
	Note              string
}

// Coverage is how much of one team's sample for one period was
// reviewed, and with what outcomes (the newest review of each item).
// Population is the sample's: a sample with no accesses (Sampled 0) has
// nothing reviewed and is never coverage — it is shown apart ("no accesses
// in the period"), not as 100% reviewed.
type Coverage struct {
	Org, DPIA, Team, Period  string
	From                     time.Time
	Population               int64
	Sampled, Reviewed        int
	Reasonable, Query, Refer int
}

// EventSource is what a draw reads: the accesses of one team in a period
// (store.RoutineAudits' ScanTeamEvents).
type EventSource interface {
	// ScanTeamEvents calls fn for each event in [from, to) of org whose
	// actor's team (as the event names it) is team.
	ScanTeamEvents(ctx context.Context, org, team string, from, to time.Time, fn func(event.Event) error) error
}

// SampleSeed is the seed of one team's draw for one period: anyone holding
// the same events can repeat the draw and get the same sample.
func SampleSeed(org, team, period string) [32]byte {
	return sha256.Sum256([]byte("dpiawatch routine audit\x00" + org + "\x00" + team + "\x00" + period))
}

// sampleRank is an event's place in the draw: the lowest ranks are drawn.
func sampleRank(seed [32]byte, system, id string) uint64 {
	h := sha256.New()
	h.Write(seed[:])
	h.Write([]byte(system + "\x00" + id))
	var sum [32]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

type ranked struct {
	rank uint64
	e    event.Event
}

// topK keeps the k lowest ranks (a max-heap on rank).
type topK []ranked

func (h topK) Len() int { return len(h) }
func (h topK) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank > h[j].rank
	}
	return h[i].e.System+"\x00"+h[i].e.ID > h[j].e.System+"\x00"+h[j].e.ID
}
func (h topK) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *topK) Push(x any)   { *h = append(*h, x.(ranked)) }
func (h *topK) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// DrawSample draws up to size of the team's accesses in [from, to): those
// whose keyed hash (SampleSeed, system, event id) ranks lowest. The draw
// streams the events once and keeps only size of them; it depends on the
// events alone, not on their order or on which store holds them.
func DrawSample(ctx context.Context, st EventSource, org, dpiaID, team, period string, from, to time.Time, size int) (Sample, error) {
	seed := SampleSeed(org, team, period)
	s := Sample{Org: org, DPIA: dpiaID, Team: team, Period: period, From: from.UTC(), To: to.UTC(), Seed: hex.EncodeToString(seed[:])}
	h := make(topK, 0, size+1)
	err := st.ScanTeamEvents(ctx, org, team, from, to, func(e event.Event) error {
		s.Population++
		r := ranked{rank: sampleRank(seed, e.System, e.ID), e: e}
		if len(h) < size {
			heap.Push(&h, r)
		} else if size > 0 && topK([]ranked{h[0], r}).Less(0, 1) {
			h[0] = r
			heap.Fix(&h, 0)
		}
		return nil
	})
	if err != nil {
		return Sample{}, fmt.Errorf("draw routine-audit sample: %w", err)
	}
	slices.SortFunc(h, func(a, b ranked) int {
		return cmp.Or(a.e.Time.Compare(b.e.Time), cmp.Compare(a.e.System, b.e.System), cmp.Compare(a.e.ID, b.e.ID))
	})
	for i, r := range h {
		s.Items = append(s.Items, SampleItem{N: i, System: r.e.System, EventID: r.e.ID, Time: r.e.Time.UTC(),
			ActorID: r.e.Actor.ID, SubjectID: r.e.Subject.ID, Action: string(r.e.Action), Record: r.e.Record.Type})
	}
	return s, nil
}
