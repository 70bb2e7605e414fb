package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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
	// The hash of json.Marshal(d), with empty lists as absent, so that
	// data read back from a store (where the two look alike) keeps its ID.
	// The encoding is streamed into the hash a row at a time, in the
	// order and form json.Marshal gives: marshalling a county's million
	// relationship rows into one buffer cost seconds and hundreds of
	// megabytes (TestReferenceIDStreamed holds the two equal).
	h := sha256.New()
	rows := json.NewEncoder(trimNewline{h})
	for _, l := range []struct {
		name string
		n    int
		row  func(i int) any
	}{
		{`{"Staff":`, len(d.Staff), func(i int) any { return &d.Staff[i] }},
		{`,"Relationships":`, len(d.Relationships), func(i int) any { return &d.Relationships[i] }},
		{`,"Shifts":`, len(d.Shifts), func(i int) any { return &d.Shifts[i] }},
		{`,"Absences":`, len(d.Absences), func(i int) any { return &d.Absences[i] }},
		{`,"Devices":`, len(d.Devices), func(i int) any { return &d.Devices[i] }},
		{`,"SharingAgreements":`, len(d.SharingAgreements), func(i int) any { return &d.SharingAgreements[i] }},
	} {
		h.Write([]byte(l.name))
		if l.n == 0 {
			h.Write([]byte("null"))
			continue
		}
		h.Write([]byte{'['})
		for i := range l.n {
			if i > 0 {
				h.Write([]byte{','})
			}
			if err := rows.Encode(l.row(i)); err != nil {
				return "", fmt.Errorf("reference id: %w", err)
			}
		}
		h.Write([]byte{']'})
	}
	h.Write([]byte{'}'})
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// trimNewline writes what a json.Encoder writes without the newline it
// ends each value with: compact JSON holds no other newline byte.
type trimNewline struct{ w io.Writer }

func (t trimNewline) Write(b []byte) (int, error) {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		if _, err := t.w.Write(b[:n-1]); err != nil {
			return 0, err
		}
		return n, nil
	}
	return t.w.Write(b)
}
