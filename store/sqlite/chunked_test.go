package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// TestWriteStateChunks writes state in counts that need every chunk size and
// checks that exactly the right keys survive.
func TestWriteStateChunks(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "st.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	apply := func(state []store.StateEntry) {
		t.Helper()
		eval := func([]event.Event) (store.Effects, error) { return store.Effects{State: state}, nil }
		if _, err := s.Apply(ctx, nil, nil, eval); err != nil {
			t.Fatal(err)
		}
	}
	const n = 1023 // 500 + 500 + 16 + 4 + 2 + 1
	var puts []store.StateEntry
	for i := range n {
		puts = append(puts, store.StateEntry{Key: fmt.Sprintf("k/%04d", i), Value: []byte(fmt.Sprint(i))})
	}
	// Out of order, and one key written twice: the last value wins.
	puts[7], puts[900] = puts[900], puts[7]
	puts = append(puts, store.StateEntry{Key: "k/0003", Value: []byte("last")})
	apply(puts)
	// Delete every third key (341 deletions) and empty one value.
	var dels []store.StateEntry
	for i := 0; i < n; i += 3 {
		dels = append(dels, store.StateEntry{Key: fmt.Sprintf("k/%04d", i)})
	}
	dels = append(dels, store.StateEntry{Key: "k/0001", Value: []byte{}})
	apply(dels)

	got, err := s.LoadState(ctx, "k/")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range n {
		if i%3 != 0 {
			want[fmt.Sprintf("k/%04d", i)] = fmt.Sprint(i)
		}
	}
	want["k/0001"] = ""
	if len(got) != len(want) {
		t.Fatalf("%d keys, want %d", len(got), len(want))
	}
	for _, e := range got {
		if w, ok := want[e.Key]; !ok || string(e.Value) != w || e.Value == nil {
			t.Errorf("%s = %q, want %q (present %v)", e.Key, e.Value, w, ok)
		}
	}
}
