package evidence

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/evidencequery"
	"github.com/dpiawatch/dpiawatch/routineaudit"
)

// Source is what an export needs from a store: aggregates only. A county's
// quarter is tens of millions of events, so no method returns events; each
// is one grouped query (store/sqlite/evidence.go, store/clickhouse/evidence.go).
type Source interface {
	// EvidenceCoverage counts q.Org's events per local day and system, and
	// the distinct actors per local day.
	EvidenceCoverage(ctx context.Context, q evidencequery.CoverageQuery) (evidencequery.Coverage, error)
	// EvidenceAlerts counts the alerts of q by org, check, pattern,
	// severity and risk list.
	EvidenceAlerts(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.AlertGroup, error)
}

// TriageSource is offered by stores that keep triage decisions
// (store.Triages, and the web UI's).
type TriageSource interface {
	// EvidenceTriage counts the alerts of q by their latest triage outcome
	// ("" when untriaged) and by how soon their first decision came.
	EvidenceTriage(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.TriageGroup, error)
	// EvidenceConfirmed lists the alerts of q whose latest outcome is
	// confirmed misuse (few by nature), ordered by first seen then id.
	EvidenceConfirmed(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.ConfirmedAlert, error)
}

// ActionSource is offered by stores that record follow-up actions with
// triage decisions (triage.Action).
type ActionSource interface {
	// EvidenceActions lists the alerts of q whose latest decision records
	// an action, the soonest due first.
	EvidenceActions(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.ActionAlert, error)
}

// RoutineAuditSource is offered by stores that record managers' routine
// audits (samples of access reviewed). No store records them yet: the
// report then says "no routine-audit data" rather than zero.
type RoutineAuditSource interface {
	EvidenceRoutineAudits(ctx context.Context, q evidencequery.AlertQuery) ([]evidencequery.RoutineAuditGroup, error)
}

// RoutineCoverageSource is offered by stores that keep the routine-audit
// samples themselves (store.RoutineAudits): each team's samples and how
// far their managers reviewed them.
type RoutineCoverageSource interface {
	AuditCoverage(ctx context.Context, orgs []string, from, to time.Time) ([]routineaudit.Coverage, error)
}

// AuditRecorder is offered by stores with an audit trail; an export with
// identities is recorded there before any file is written.
type AuditRecorder interface {
	EvidenceAudit(ctx context.Context, e audit.Entry) error
}
