package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
)

// RunRoutineAudits runs the routine-audit contract (store.RoutineAudits)
// against a store that offers it: samples are drawn only over periods the
// feed has completed, and a sample with no accesses is never coverage.
func RunRoutineAudits(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"SampleWaitsForTheFeed", testSampleWaitsForTheFeed},
		{"EmptySampleIsNotCoverage", testEmptySampleIsNotCoverage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// The routine-audit period the tests sample: ISO week 2026-W10.
var (
	weekFrom = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	weekTo   = weekFrom.AddDate(0, 0, 7)
)

func openRoutine(t *testing.T, open Opener) (store.Store, store.RoutineAudits) {
	t.Helper()
	s := openClose(t, open)
	ra, ok := s.(store.RoutineAudits)
	if !ok {
		t.Fatalf("%T does not keep routine audits", s)
	}
	return s, ra
}

// complete records org's feed as complete up to at, as the daemon does
// with a batch.
func complete(t *testing.T, s store.Store, org string, at time.Time) {
	t.Helper()
	apply(t, s, nil, withState(store.CompletenessEntry(org, at)))
}

func weekSample(team string, population int64, items int) routineaudit.Sample {
	a := routineaudit.Sample{Org: "st-martins", DPIA: "st-martins-webster-court", Team: team, Period: "2026-W10",
		From: weekFrom, To: weekTo, Population: population, Seed: "00", DrawnAt: weekTo.Add(time.Hour)}
	for i := range items {
		a.Items = append(a.Items, routineaudit.SampleItem{N: i, System: "logmycare", EventID: "e-" + team + string(rune('a'+i)),
			Time: weekFrom.Add(time.Duration(i+1) * time.Hour), ActorID: "u-17", SubjectID: "c-0042", Action: string(event.ActionView), Record: "care-plan"})
	}
	return a
}

func testSampleWaitsForTheFeed(t *testing.T, open Opener) {
	cases := []struct {
		name     string
		org      string        // whose completeness is recorded ("": none)
		at       time.Duration // completeness point, from the period's end
		wantDraw bool
	}{
		{name: "none recorded"},
		{name: "behind the period's end", org: "st-martins", at: -time.Nanosecond},
		{name: "another org whose id extends it", org: "st-martins-north", at: 24 * time.Hour},
		{name: "exactly the period's end", org: "st-martins", at: 0, wantDraw: true},
		{name: "past the period's end", org: "st-martins", at: 24 * time.Hour, wantDraw: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, ra := openRoutine(t, open)
			ctx := context.Background()
			if c.org != "" {
				complete(t, s, c.org, weekTo.Add(c.at))
			}
			got, err := ra.PutAuditSample(ctx, weekSample("webster-court", 3, 2))
			if !c.wantDraw {
				if !errors.Is(err, store.ErrFeedIncomplete) {
					t.Fatalf("PutAuditSample = %+v, %v; want ErrFeedIncomplete", got, err)
				}
				if _, err := ra.AuditSample(ctx, "st-martins", "webster-court", "2026-W10"); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("a refused sample is stored: %v", err)
				}
				// Once the feed completes the period, the draw goes in.
				complete(t, s, "st-martins", weekTo)
				if got, err = ra.PutAuditSample(ctx, weekSample("webster-court", 3, 2)); err != nil {
					t.Fatalf("PutAuditSample after the feed completed: %v", err)
				}
			} else if err != nil {
				t.Fatalf("PutAuditSample: %v", err)
			}
			if len(got.Items) != 2 || got.Population != 3 {
				t.Fatalf("stored sample %+v", got)
			}
			// The draw stands even if the recorded point were to go back.
			complete(t, s, "st-martins", weekFrom)
			again, err := ra.PutAuditSample(ctx, weekSample("webster-court", 9, 1))
			if err != nil || len(again.Items) != 2 || again.Population != 3 {
				t.Fatalf("second put: %+v, %v; want the first draw", again, err)
			}
		})
	}
}

func testEmptySampleIsNotCoverage(t *testing.T, open Opener) {
	s, ra := openRoutine(t, open)
	ctx := context.Background()
	complete(t, s, "st-martins", weekTo)
	for _, a := range []routineaudit.Sample{weekSample("webster-court", 12, 2), weekSample("other-house", 0, 0)} {
		if _, err := ra.PutAuditSample(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ra.AddAuditReview(ctx, routineaudit.Review{Org: "st-martins", Team: "webster-court", Period: "2026-W10", N: 1,
		Outcome: routineaudit.ReviewReasonable, Reviewer: "mgr", At: weekTo.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// An empty sample has nothing to review.
	if _, err := ra.AddAuditReview(ctx, routineaudit.Review{Org: "st-martins", Team: "other-house", Period: "2026-W10", N: 0,
		Outcome: routineaudit.ReviewReasonable, Reviewer: "mgr", At: weekTo.Add(2 * time.Hour)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("review of an empty sample: %v, want ErrNotFound", err)
	}
	cov, err := ra.AuditCoverage(ctx, []string{"st-martins"}, weekFrom, weekTo)
	if err != nil {
		t.Fatal(err)
	}
	want := []routineaudit.Coverage{
		{Org: "st-martins", DPIA: "st-martins-webster-court", Team: "other-house", Period: "2026-W10", From: weekFrom},
		{Org: "st-martins", DPIA: "st-martins-webster-court", Team: "webster-court", Period: "2026-W10", From: weekFrom,
			Population: 12, Sampled: 2, Reviewed: 1, Reasonable: 1},
	}
	if len(cov) != len(want) {
		t.Fatalf("coverage %+v, want %+v", cov, want)
	}
	for i := range want {
		if cov[i] != want[i] {
			t.Errorf("coverage[%d] = %+v, want %+v", i, cov[i], want[i])
		}
	}
}
