package store

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/routineaudit"
)

// RoutineAudits keeps managers' routine audits: the samples of access drawn
// per team and period, and the reviews of them. Every review is also an
// audit-trail entry.
type RoutineAudits interface {
	// ScanTeamEvents calls fn for each event in [from, to) of org whose
	// actor's team (as the event names it) is team.
	ScanTeamEvents(ctx context.Context, org, team string, from, to time.Time, fn func(event.Event) error) error
	// AuditTeams returns the teams named by org's events in [from, to),
	// sorted.
	AuditTeams(ctx context.Context, org string, from, to time.Time) ([]string, error)
	// PutAuditSample stores s unless a sample of its org, team and period
	// is stored already, and returns the stored one: the first draw stands.
	// A new sample whose period ends after its org's completeness point
	// (CheckComplete; none recorded counts as not complete) is refused with
	// an error wrapping ErrFeedIncomplete: a draw over accesses not yet
	// all stored would stand for ever with some of them missing.
	PutAuditSample(ctx context.Context, s routineaudit.Sample) (routineaudit.Sample, error)
	// AuditSample returns a stored sample, or ErrNotFound.
	AuditSample(ctx context.Context, org, team, period string) (routineaudit.Sample, error)
	// AddAuditReview stores r (and its audit entry) and returns it with Seq
	// set.
	AddAuditReview(ctx context.Context, r routineaudit.Review) (routineaudit.Review, error)
	// AuditReviews returns the reviews of one sample, oldest first.
	AuditReviews(ctx context.Context, org, team, period string) ([]routineaudit.Review, error)
	// AuditCoverage returns the coverage of every stored sample of the
	// orgs (nil: all) whose period starts in [from, to), by org, period
	// start and team.
	AuditCoverage(ctx context.Context, orgs []string, from, to time.Time) ([]routineaudit.Coverage, error)
}
