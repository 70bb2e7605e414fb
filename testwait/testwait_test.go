package testwait

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		start := time.Now()
		// Holds on the third poll: returned at the second tick, not later.
		if !Until(time.Second, func() bool { return n.Add(1) == 3 }) {
			t.Fatal("Until = false for a condition that came to hold")
		}
		if got := time.Since(start); got != 2*Interval {
			t.Errorf("returned after %s, want %s", got, 2*Interval)
		}

		start = time.Now()
		if Until(time.Second, func() bool { return false }) {
			t.Fatal("Until = true for a condition that never held")
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("gave up after %s, want the limit (1s)", got)
		}

		// The last look is at the deadline itself.
		start = time.Now()
		if !Until(25*time.Millisecond, func() bool { return time.Since(start) >= 25*time.Millisecond }) {
			t.Error("Until did not look once more at the deadline")
		}
	})
}

func TestForFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			For(rec, 50*time.Millisecond, "the door to open", func() bool { return false })
		}()
		<-done
		if want := "waited 50ms for the door to open"; rec.msg != want {
			t.Errorf("For failed with %q, want %q", rec.msg, want)
		}
	})
}

// recorder records a Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
