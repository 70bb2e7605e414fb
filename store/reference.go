package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dpiawatch/dpiawatch/reference"
)

// ReferenceSnapshot is one set of reference data as it was loaded.
type ReferenceSnapshot struct {
	// ID names the content (ReferenceID): equal data, equal ID.
	ID string
	// LoadedAt is when the daemon loaded the data and put it in force.
	LoadedAt time.Time
	Data     *reference.Data
}

// ReferenceSnapshots keeps every set of reference data the daemon put in
// force, with the time it did, so that evidence and dashboards can say what
// the staff list, rosters and relationships were when an access was judged.
// A store may offer it; the daemon saves each load to a store that does.
type ReferenceSnapshots interface {
	// SaveReference records that d was loaded at loadedAt. Saving data
	// equal to the newest snapshot's records nothing new (a restart or a
	// reload without change). It is idempotent: a retry after an error
	// stores nothing twice.
	SaveReference(ctx context.Context, loadedAt time.Time, d *reference.Data) error
	// ReferenceAt returns the snapshot in force at t: the newest loaded at
	// or before t, or ErrNotFound.
	ReferenceAt(ctx context.Context, t time.Time) (ReferenceSnapshot, error)
	// ReferenceByID returns the snapshot whose content has ID id (what an
	// alert's ReferenceID names), with LoadedAt its first load, or
	// ErrNotFound.
	ReferenceByID(ctx context.Context, id string) (ReferenceSnapshot, error)
}

// ReferenceID names reference data by its content: a hash of its JSON
// encoding, the same in every store.
func ReferenceID(d *reference.Data) (string, error) {
	// Empty lists count as absent, so that data read back from a store
	// (where the two look alike) keeps its ID.
	c := *d
	nilIfEmpty(&c.Staff)
	nilIfEmpty(&c.Relationships)
	nilIfEmpty(&c.Shifts)
	nilIfEmpty(&c.Absences)
	nilIfEmpty(&c.Devices)
	nilIfEmpty(&c.SharingAgreements)
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("reference id: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

func nilIfEmpty[T any](s *[]T) {
	if len(*s) == 0 {
		*s = nil
	}
}
