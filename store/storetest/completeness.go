package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// testCompleteness: the completeness point each org's feed has reached is
// state written with a batch, the newest write wins, it survives a
// restart, and one org's point is never another's whose id shares its
// prefix.
func testCompleteness(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openClose(t, open)
	t1, t2, t3 := t0, t0.Add(time.Hour), t0.Add(90*time.Minute+time.Nanosecond)
	apply(t, s, nil, withState(store.CompletenessEntry("st-martins", t1), store.CompletenessEntry("st-martins-north", t2)))
	apply(t, s, []event.Event{ev("a", 0)}, withState(store.CompletenessEntry("st-martins", t3)))
	_ = s.Close()
	s = openClose(t, open) // a restart

	all, err := store.LoadCompleteness(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !all["st-martins"].Equal(t3) || !all["st-martins-north"].Equal(t2) {
		t.Fatalf("LoadCompleteness = %v, want st-martins %v, st-martins-north %v", all, t3, t2)
	}
	cases := []struct {
		org    string
		end    time.Time
		wantOK bool // a point is recorded
		wantAt time.Time
		wantIn bool // complete up to end
	}{
		{org: "st-martins", end: t3, wantOK: true, wantAt: t3, wantIn: true},
		{org: "st-martins", end: t3.Add(time.Nanosecond), wantOK: true, wantAt: t3},
		{org: "st-martins-north", end: t3, wantOK: true, wantAt: t2},
		{org: "st-mart", end: t0},
		{org: "wiltshire-council", end: t0},
	}
	for _, c := range cases {
		at, ok, err := store.OrgCompleteness(ctx, s, c.org)
		if err != nil || ok != c.wantOK || !at.Equal(c.wantAt) {
			t.Errorf("OrgCompleteness(%s) = %v, %v, %v; want %v, %v", c.org, at, ok, err, c.wantAt, c.wantOK)
		}
		err = store.CheckComplete(ctx, s, c.org, c.end)
		if c.wantIn != (err == nil) || (err != nil && !errors.Is(err, store.ErrFeedIncomplete)) {
			t.Errorf("CheckComplete(%s, %v) = %v; want complete %v", c.org, c.end, err, c.wantIn)
		}
	}
}
