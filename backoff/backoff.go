// Package backoff is the one retry wait of dpiawatch: exponential from an
// initial wait, capped, with full jitter (a uniform wait in [0, ceiling)),
// so that many retriers recovering from one outage — alert receivers,
// Kafka consumers, store inserts — do not hit it again in lockstep (see
// "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
//
// It is a policy and a context-aware sleep, not a retry loop: the loops
// that use it decide themselves what a failure means (retry, pause, give
// up), which a generic Retry(fn) would hide.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy shapes the waits between attempts. Zero fields take the defaults
// of the caller (see WithDefaults); a Policy with Initial <= 0 waits 0.
type Policy struct {
	Initial time.Duration // ceiling of the first wait
	Max     time.Duration // the ceiling never grows beyond it
}

// WithDefaults returns p with each zero (or negative) field taken from
// def, and Max raised to Initial when below it.
func (p Policy) WithDefaults(def Policy) Policy {
	if p.Initial <= 0 {
		p.Initial = def.Initial
	}
	if p.Max <= 0 {
		p.Max = def.Max
	}
	p.Max = max(p.Max, p.Initial)
	return p
}

// Ceiling is the largest wait before retry number attempt (0-based):
// min(Max, Initial·2^attempt), without overflow however large attempt is.
func (p Policy) Ceiling(attempt int) time.Duration {
	c := p.Initial
	for i := 0; i < attempt && c < p.Max; i++ {
		if c > p.Max/2 {
			return p.Max
		}
		c *= 2
	}
	return min(c, max(p.Max, p.Initial))
}

// Wait is the wait before retry number attempt (0-based): uniform in
// [0, Ceiling(attempt)) — full jitter; 0 when the ceiling is not positive.
func (p Policy) Wait(attempt int) time.Duration {
	c := p.Ceiling(attempt)
	if c <= 0 {
		return 0
	}
	return rand.N(c)
}

// Sleep waits d or until ctx is done, returning ctx's error then. A wait
// of d <= 0 returns at once (ctx's error, if it is done).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
