package daemon

import (
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store"
	chstore "github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/web"
)

// The stores implement the interfaces their consumers declare (web.Store,
// evidence.Source …) structurally, without importing them: storage sits
// below the UI and the export. These assertions, here in the composition
// root that wires them together, keep each store complete at compile time.
var (
	_ web.Store                   = sqlite.WebStore{}
	_ web.Store                   = chstore.WebStore{}
	_ web.ReferenceLookup         = (*sqlite.Store)(nil)
	_ web.ReferenceLookup         = (*chstore.Store)(nil)
	_ store.AlertingStore         = (*sqlite.Store)(nil)
	_ evidence.Source             = (*sqlite.Store)(nil)
	_ evidence.Source             = (*chstore.Store)(nil)
	_ evidence.TriageSource       = (*sqlite.Store)(nil)
	_ evidence.TriageSource       = (*chstore.Store)(nil)
	_ evidence.AuditRecorder      = (*sqlite.Store)(nil)
	_ evidence.AuditRecorder      = (*chstore.Store)(nil)
	_ evidence.RoutineAuditSource = (*sqlite.Store)(nil)
	_ evidence.RoutineAuditSource = (*chstore.Store)(nil)
)
