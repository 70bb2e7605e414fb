// Package viewlog is the monitor's own access log: every look at, or export
// of, personal data through the web UI or the alerting API, shown to the DPO.
// The web UI records and reads views through web.Store; the stores keep them.
package viewlog

import "time"

// View is one look at, or export of, personal data: the access log of the
// monitor itself, shown to the DPO.
type View struct {
	At   time.Time
	User string
	Role string
	// Kind is what was looked at: KindAlert, KindActor, KindSample,
	// KindEvidence, KindQueue, KindAlertsCSV, KindLog or one of the KindAPI*
	// kinds.
	Kind string
	// Org is the org whose data was seen; "" when it was several (or none
	// in a viewer's scope).
	Org string
	// Target is the alert id, actor id, team/period of a sample, or the
	// queue's filters as a query string ("" unfiltered).
	Target string
	// Rows is how many rows of personal data were listed: a queue's or an
	// export's alerts, an alert's timeline events, a worker page's alerts,
	// a sample's accesses, the view log's entries; 0 for an evidence pack
	// (its manifest counts what it holds).
	Rows int
}

// View kinds: a fixed set.
const (
	KindAlert     = "alert"
	KindActor     = "actor"
	KindSample    = "sample"
	KindEvidence  = "evidence"
	KindQueue     = "queue"
	KindAlertsCSV = "alerts-csv"
	KindLog       = "views"
	// Reads over the alerting API (/api/v1), recorded by the daemon with
	// the API client as the user and "api" as the role.
	KindAPITriage   = "api-triage"
	KindAPISilences = "api-silences"
	KindAPIAudit    = "api-audit"
)
