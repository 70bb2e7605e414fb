// Package testwait lets tests wait for a condition, within a deadline,
// instead of sleeping for a guessed time: a test that sleeps is slow when the
// machine is idle and flaky when it is busy, one that polls a predicate is
// neither. It is imported by tests only.
package testwait

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled: short against the
// deadlines tests use, long enough not to load a 2-core machine.
const Interval = 10 * time.Millisecond

// Until polls cond every Interval until it holds or limit has passed, and
// reports whether it held. cond is always evaluated at least once, and once
// more at the deadline.
func Until(limit time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}

// For waits until cond holds and fails the test, naming what it waited for,
// if it does not within limit. Call it from the test's goroutine.
func For(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(limit, cond) {
		t.Fatalf("waited %s for %s", limit, what)
	}
}
