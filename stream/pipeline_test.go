package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

// flakyStore fails a share of writes, after doing part of the work, as a
// store that lost its disk or its server would.
type flakyStore struct {
	*sqlite.Store
	rng  *rand.Rand
	rate float64
}

var errInjected = errors.New("injected write failure")

func (f *flakyStore) Apply(ctx context.Context, events []event.Event, positions []store.Position, evaluate store.EvaluateFunc) (store.Result, error) {
	if f.rng.Float64() < f.rate {
		return f.Store.Apply(ctx, events, positions, func(fresh []event.Event) (store.Effects, error) {
			if evaluate != nil {
				if _, err := evaluate(fresh); err != nil {
					return store.Effects{}, err
				}
			}
			return store.Effects{}, errInjected
		})
	}
	return f.Store.Apply(ctx, events, positions, evaluate)
}

func testEngineOptions(t *testing.T, ref *reference.Data) rules.Options {
	t.Helper()
	cfg, diags := config.Load("../configs/dpiawatch.yaml")
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	o, err := checkconfig.EngineOptions(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Roster = reference.NewIndex(ref)
	return o
}

// TestPipelineSpeculationIsExactlyOnce drives batches through Prepare and
// ProcessBatch as the consumer does — preparing up to two batches ahead,
// with replayed events and failing writes retried — and checks that the
// stored events, alerts and check state equal a plain one-batch-at-a-time
// run over the same input.
func TestPipelineSpeculationIsExactlyOnce(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/London")
	sim, err := simulate.New(simulate.Options{Org: simulate.OrgStMartins, From: time.Date(2026, 3, 23, 0, 0, 0, 0, loc), Days: 5, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var events []event.Event
	if err := sim.Run(context.Background(), func(ev *event.Event, _ *simulate.Label) error {
		events = append(events, *ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Batches of 97 with replays: each batch repeats a few events of the
	// batch before (a redelivery after a crash).
	var batches [][]event.Event
	for lo := 0; lo < len(events); lo += 97 {
		b := slices.Clone(events[lo:min(lo+97, len(events))])
		if lo > 0 {
			b = append(slices.Clone(events[lo-5:lo]), b...)
		}
		batches = append(batches, b)
	}
	ctx := context.Background()

	var speculated, inWrite int64
	run := func(speculate bool, failRate float64) ([]string, int, int64) {
		st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		fs := &flakyStore{Store: st, rng: rand.New(rand.NewPCG(9, 9)), rate: failRate}
		actor, shared := splitByKeying(testEngineOptions(t, sim.Reference()))
		newEngine := func(o rules.Options) engine {
			e, err := rules.New(o)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		p := &pipeline{store: fs, log: testLogger(t), engine: &splitEngine{
			tasks:  newTaskEngine(func() (engine, error) { return newEngine(actor), nil }),
			shared: newEngine(shared),
		}}
		if err := p.restore(ctx); err != nil {
			t.Fatal(err)
		}
		// The consumer prepares in the decode stage, ahead of the apply
		// stage: model a lead of up to two batches.
		bs := make([]*ingest.Batch, len(batches))
		for i, b := range batches {
			bs[i] = &ingest.Batch{Seq: uint64(i), Events: b}
		}
		prepared := 0
		for i, b := range bs {
			for speculate && prepared < len(batches) && prepared <= i+1 {
				p.Prepare(ctx, bs[prepared])
				prepared++
			}
			for attempt := 0; ; attempt++ {
				_, err := p.ProcessBatch(ctx, b)
				if err == nil {
					break
				}
				if !errors.Is(err, errInjected) || attempt > 50 {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
		}
		speculated, inWrite = p.speculated.Load(), p.inWrite.Load()
		got, err := st.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range got {
			out = append(out, fmt.Sprintf("%s %s %s %s %d %v", a.ID, a.Check, a.Pattern, a.LastSeen.UTC(), a.EventCount, a.EventIDs))
		}
		state, err := st.LoadState(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		n, err := st.CountEvents(ctx, store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return out, len(state), n
	}

	want, wantState, wantEvents := run(false, 0)
	if len(want) == 0 {
		t.Fatal("no alerts: the comparison would prove nothing")
	}
	for _, tc := range []struct {
		name      string
		speculate bool
		fail      float64
	}{
		{"speculating", true, 0},
		{"speculating with failing writes", true, 0.2},
		{"plain with failing writes", false, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotState, gotEvents := run(tc.speculate, tc.fail)
			if gotEvents != wantEvents || gotEvents != int64(len(events)) {
				t.Errorf("stored %d events, want %d", gotEvents, len(events))
			}
			if !slices.Equal(got, want) {
				t.Errorf("alerts differ from the plain run:\n got %d %v\nwant %d %v", len(got), got, len(want), want)
			}
			if gotState != wantState {
				t.Errorf("%d state entries, want %d", gotState, wantState)
			}
			t.Logf("%d writes with effects computed ahead, %d evaluated in the write", speculated, inWrite)
			if tc.speculate && tc.fail == 0 && speculated != int64(len(batches)) {
				t.Errorf("%d of %d batches were written speculatively, want all", speculated, len(batches))
			}
			if tc.speculate && speculated == 0 {
				t.Errorf("only %d of %d batches were written speculatively: the fast path is not exercised", speculated, len(batches))
			}
			if tc.speculate && tc.fail > 0 && inWrite == 0 {
				t.Error("no batch fell back to evaluation in the write although writes failed")
			}
		})
	}
}
