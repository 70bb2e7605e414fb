package store

import (
	"fmt"

	"github.com/dpiawatch/dpiawatch/event"
)

// SplitDuplicates sorts the events of a batch that an Apply did not store
// into plain duplicates and conflicts (Result), the same way in every store.
// isNew[i] reports whether events[i] was stored by this Apply; kept holds,
// for the key of every other event, the event kept under it: stored before
// the batch, or the first occurrence in it. Conflicts come in batch order.
func SplitDuplicates(events []event.Event, isNew []bool, kept map[event.Key]event.Event) (duplicates int, conflicts []Conflict, err error) {
	for i := range events {
		if isNew[i] {
			continue
		}
		e := &events[i]
		k, ok := kept[e.Key()]
		if !ok {
			// The store said the key was taken but cannot show by what.
			return 0, nil, fmt.Errorf("duplicate at position %d: no event kept under its key", i)
		}
		if fields := event.Diff(&k, e); fields != nil {
			conflicts = append(conflicts, Conflict{Index: i, Event: *e, Kept: k, Fields: fields})
			continue
		}
		duplicates++
	}
	return duplicates, conflicts, nil
}
