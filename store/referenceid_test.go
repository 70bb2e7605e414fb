package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/store"
)

// referenceIDWhole is ReferenceID as it was first written: the hash of
// json.Marshal of the whole data, empty lists as absent. Stored snapshots
// and alerts are named by it, so the streamed one must give the same.
func referenceIDWhole(d *reference.Data) string {
	c := *d
	nilIfEmpty(&c.Staff)
	nilIfEmpty(&c.Relationships)
	nilIfEmpty(&c.Shifts)
	nilIfEmpty(&c.Absences)
	nilIfEmpty(&c.Devices)
	nilIfEmpty(&c.SharingAgreements)
	b, err := json.Marshal(&c)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func nilIfEmpty[T any](s *[]T) {
	if len(*s) == 0 {
		*s = nil
	}
}

// TestReferenceIDStreamed: the streamed hash equals the hash of the whole
// encoding, for empty data, empty and absent lists, text JSON escapes
// (HTML characters, U+2028, quotes), times with offsets, rows with and
// without an org, display references (never hashed), and the reference
// data of a simulated county.
func TestReferenceIDStreamed(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.FixedZone("", 3600))
	cases := map[string]*reference.Data{
		"empty":       {},
		"empty lists": {Staff: []reference.Staff{}, Relationships: []reference.Relationship{}, SharingAgreements: []reference.SharingAgreement{}},
		"escapes": {
			Staff: []reference.Staff{{ActorID: `u<1>&"x"`, Org: "o\u2028p", Role: "é", ActiveFrom: at}, {ActorID: "u-2", External: true}},
			Relationships: []reference.Relationship{{ActorID: "u-1", SubjectID: "c-1", ValidFrom: at},
				{Org: "o", Team: "t", SubjectID: "c-2", Relation: "case", ValidTo: at.Add(time.Hour)}},
			Shifts:            []reference.Shift{{ActorID: "u-1", Start: at, End: at.Add(8 * time.Hour)}},
			Absences:          []reference.Absence{{ActorID: "u-1", Start: at, Kind: "leave"}},
			Devices:           []reference.Device{{DeviceID: "d-1", Org: "o", Kind: reference.DeviceSharedTablet}},
			SharingAgreements: []reference.SharingAgreement{{PartnerOrg: "p", Org: "o", RecordTypes: []string{"*"}, Actions: []string{"view"}, ValidFrom: at}},
			Subjects:          []reference.Subject{{SubjectID: "c-1", Org: "o", DisplayRef: "WC-1"}},
		},
	}
	for _, org := range []string{simulate.OrgStMartins, simulate.OrgWiltshire} {
		sim, err := simulate.New(simulate.Options{Org: org, From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Days: 1, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		cases[org] = sim.Reference()
	}
	for name, d := range cases {
		got, err := store.ReferenceID(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := referenceIDWhole(d); got != want {
			t.Errorf("%s: ReferenceID = %s, want %s (the hash of the whole encoding)", name, got, want)
		}
	}
	if n := len(cases[simulate.OrgWiltshire].Relationships); n < 1000 {
		t.Fatalf("the county has only %d relationship rows", n)
	}
}
