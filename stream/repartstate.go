package stream

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// recentBatches is how many batches' event keys a repartition task
// remembers to absorb outbox re-sends.
const recentBatches = 32

// dedupState is what a task remembers to absorb redeliveries, and how far
// in event time each source has got (source → org → newest event time).
// The event keys of its last batches are kept apart (recentKeys), one
// entry per batch, so that a batch writes only its own.
type dedupState struct {
	Offset  int64                           `json:"o"`           // highest offset processed; -1: none
	Seq     uint64                          `json:"q,omitempty"` // the newest batch's number in recentKeys
	Sources map[string]map[string]time.Time `json:"s,omitempty"`
}

func (d *dedupState) clone() *dedupState {
	c := &dedupState{Offset: d.Offset, Seq: d.Seq, Sources: make(map[string]map[string]time.Time, len(d.Sources))}
	for src, m := range d.Sources {
		c.Sources[src] = maps.Clone(m)
	}
	return c
}

// recentKeys are the event key hashes of a task's last recentBatches
// batches, to absorb an outbox produced twice. Each batch's hashes are one
// state entry, <stream>/recent/<task>/<seq>, written with the batch and
// deleted recentBatches batches later.
type recentKeys struct {
	seqs  []uint64   // oldest first
	keys  [][]uint64 // keys[i]: batch seqs[i]'s hashes
	count map[uint64]int32
}

func newRecentKeys() *recentKeys { return &recentKeys{count: map[uint64]int32{}} }

func (r *recentKeys) has(h uint64) bool { return r.count[h] > 0 }

// add records batch seq's hashes, forgetting batches beyond recentBatches.
func (r *recentKeys) add(seq uint64, hs []uint64) {
	r.seqs, r.keys = append(r.seqs, seq), append(r.keys, hs)
	for _, h := range hs {
		r.count[h]++
	}
	for len(r.seqs) > recentBatches {
		for _, h := range r.keys[0] {
			if r.count[h]--; r.count[h] <= 0 {
				delete(r.count, h)
			}
		}
		r.seqs, r.keys = r.seqs[1:], r.keys[1:]
	}
}

func encodeHashes(hs []uint64) []byte {
	b := make([]byte, 8*len(hs))
	for i, h := range hs {
		binary.LittleEndian.PutUint64(b[8*i:], h)
	}
	return b
}

func decodeHashes(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%d bytes is no list of 8-byte hashes", len(b))
	}
	hs := make([]uint64, len(b)/8)
	for i := range hs {
		hs[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return hs, nil
}

func (p *repartProcessor) recentKey(task string, seq uint64) string {
	return fmt.Sprintf("%s%s/%016x", p.recentPrefix, task, seq)
}

func keyHash(k event.Key) uint64 {
	h := fnv.New64a()
	for _, s := range []string{k.Org, k.System, k.ID} {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		_, _ = h.Write(n[:])
		_, _ = h.Write([]byte(s))
	}
	return h.Sum64()
}

// restore loads the durable state; mu held.
func (p *repartProcessor) restore(ctx context.Context) error {
	entries, err := p.store.LoadState(ctx, p.tasks.prefix)
	if err != nil {
		return fmt.Errorf("load check state: %w", err)
	}
	dd, err := p.store.LoadState(ctx, p.dedupPrefix)
	if err != nil {
		return fmt.Errorf("load dedup state: %w", err)
	}
	rk, err := p.store.LoadState(ctx, p.recentPrefix)
	if err != nil {
		return fmt.Errorf("load recent event keys: %w", err)
	}
	p.tasks.Reset()
	if err := p.tasks.Restore(entries); err != nil {
		return fmt.Errorf("restore check state: %w", err)
	}
	p.dedup = make(map[string]*dedupState, len(dd))
	for _, e := range dd {
		var s dedupState
		if err := json.Unmarshal(e.Value, &s); err != nil {
			return fmt.Errorf("dedup state %s: %w", e.Key, err)
		}
		p.dedup[strings.TrimPrefix(e.Key, p.dedupPrefix)] = &s
	}
	// <task id>/<seq>; a task id is <topic>/<partition>.
	slices.SortFunc(rk, func(a, b store.StateEntry) int { return strings.Compare(a.Key, b.Key) })
	p.recent = map[string]*recentKeys{}
	for _, e := range rk {
		rest := strings.TrimPrefix(e.Key, p.recentPrefix)
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			return fmt.Errorf("recent event keys %s: malformed key", e.Key)
		}
		seq, err := strconv.ParseUint(rest[i+1:], 16, 64)
		if err != nil {
			return fmt.Errorf("recent event keys %s: malformed key", e.Key)
		}
		hs, err := decodeHashes(e.Value)
		if err != nil {
			return fmt.Errorf("recent event keys %s: %w", e.Key, err)
		}
		id := rest[:i]
		if p.recent[id] == nil {
			p.recent[id] = newRecentKeys()
		}
		p.recent[id].add(seq, hs)
	}
	// Every source gets idle_release from now to show progress again.
	p.restored = p.now()
	p.active, p.progressed, p.sent = map[string]bool{}, map[string]map[string]time.Time{}, map[string]map[string]time.Time{}
	p.stale = false
	return nil
}
