package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// testEventsByKey: a store that reads events back by key returns exactly
// the stored events asked for, whole, whatever the org and system, and
// leaves out keys it does not hold.
func testEventsByKey(t *testing.T, open Opener) {
	s := openClose(t, open)
	loader, ok := s.(store.EventLoader)
	if !ok {
		t.Fatal("the store does not read events back by key (store.EventLoader): the checks' restart needs it")
	}
	var in []event.Event
	for i := range 1200 { // more than one query's worth
		e := ev(fmt.Sprintf("k-%04d", i), i)
		if i%3 == 1 {
			e.System = "other-system"
		}
		in = append(in, e)
	}
	other := ev("k-0002", 2)
	other.Org = "wiltshire-council" // the same id in another org
	in = append(in, other)
	apply(t, s, in, nil)
	stored := map[event.Key]event.Event{}
	for _, e := range scan(t, s, store.EventFilter{}) {
		stored[e.Key()] = e
	}
	var keys []event.Key
	for i, e := range in {
		if i%2 == 0 {
			keys = append(keys, e.Key())
		}
	}
	keys = append(keys, event.Key{Org: "st-martins", System: "logmycare", ID: "never-stored"},
		event.Key{Org: "st-martins", System: "other-system", ID: "k-0000"}) // stored under logmycare only
	got, err := loader.EventsByKey(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, k := range keys {
		if _, ok := stored[k]; ok {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("EventsByKey: %d events, want %d", len(got), want)
	}
	seen := map[event.Key]bool{}
	for _, e := range got {
		k := e.Key()
		if seen[k] || !slices.Contains(keys, k) {
			t.Fatalf("EventsByKey returned %v: twice or not asked for", k)
		}
		seen[k] = true
		if w := stored[k]; !reflect.DeepEqual(e, w) {
			t.Errorf("EventsByKey %v = %+v, stored %+v", k, e, w)
		}
	}
}
