package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/storetest"
)

// opener opens one database file per test: a second open in the same test
// is a restart of the same store.
func opener() func(t *testing.T) store.Store {
	var (
		mu    sync.Mutex
		paths = map[string]string{}
	)
	return func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		p, ok := paths[t.Name()]
		if !ok {
			p = filepath.Join(t.TempDir(), "dpiawatch.db")
			paths[t.Name()] = p
		}
		mu.Unlock()
		s, err := Open(context.Background(), Options{Path: p})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
}

func TestContract(t *testing.T) {
	storetest.Run(t, opener())
}

func TestRoutineAuditContract(t *testing.T) {
	storetest.RunRoutineAudits(t, opener())
}
