package sqlite

import (
	"testing"

	"github.com/dpiawatch/dpiawatch/store/storetest"
)

// The alert-delivery and reference-snapshot contracts, shared with the
// ClickHouse store.

func TestAlertingContract(t *testing.T) {
	storetest.RunAlerting(t, opener())
}

func TestReferenceSnapshotsContract(t *testing.T) {
	storetest.RunReferenceSnapshots(t, opener())
}
