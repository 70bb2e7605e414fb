package alerting

import (
	"context"
	"time"

	"github.com/dpiawatch/dpiawatch/backoff"
)

// Clock is the time source of the pipeline and the API (and satisfies
// heartbeat.Clock);
// tests replace it to run a ten-minute outage in milliseconds.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}
