package store

import (
	"context"

	"github.com/dpiawatch/dpiawatch/audit"
)

// Audit reads the audit trail.
type Audit interface {
	// AuditLog returns up to limit entries (0: all) from the newest back.
	AuditLog(ctx context.Context, limit int) ([]audit.Entry, error)
}
