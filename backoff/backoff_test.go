package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCeilingDoublesUpToMax(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, 10 * time.Millisecond}, {1, 20 * time.Millisecond}, {2, 40 * time.Millisecond},
		{3, 80 * time.Millisecond}, {4, 80 * time.Millisecond}, {60, 80 * time.Millisecond}, {1 << 20, 80 * time.Millisecond},
	} {
		if got := p.Ceiling(tc.attempt); got != tc.want {
			t.Errorf("Ceiling(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
	// A Max that is not Initial·2^k is reached, not overshot.
	odd := Policy{Initial: 3 * time.Second, Max: 10 * time.Second}
	if got := odd.Ceiling(2); got != 10*time.Second {
		t.Errorf("Ceiling(2) of 3s..10s = %v, want 10s", got)
	}
	// The largest durations do not overflow.
	huge := Policy{Initial: time.Duration(1 << 61), Max: time.Duration(1<<63 - 1)}
	if got := huge.Ceiling(5); got != huge.Max {
		t.Errorf("Ceiling near MaxInt64 = %v, want %v", got, huge.Max)
	}
}

func TestWaitFullJitterWithinBounds(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for _, attempt := range []int{0, 1, 3, 60} {
		ceiling := p.Ceiling(attempt)
		var maxSeen time.Duration
		for range 2000 {
			w := p.Wait(attempt)
			if w < 0 || w >= ceiling {
				t.Fatalf("attempt %d: wait %v outside [0, %v)", attempt, w, ceiling)
			}
			maxSeen = max(maxSeen, w)
		}
		if maxSeen < ceiling/2 {
			t.Errorf("attempt %d: largest of 2000 waits %v; jitter not spread up to %v", attempt, maxSeen, ceiling)
		}
	}
	if w := (Policy{}).Wait(3); w != 0 {
		t.Errorf("zero policy waits %v, want 0", w)
	}
}

func TestWithDefaults(t *testing.T) {
	def := Policy{Initial: time.Second, Max: 5 * time.Minute}
	for _, tc := range []struct{ in, want Policy }{
		{Policy{}, def},
		{Policy{Initial: 2 * time.Second}, Policy{Initial: 2 * time.Second, Max: 5 * time.Minute}},
		{Policy{Initial: 10 * time.Minute}, Policy{Initial: 10 * time.Minute, Max: 10 * time.Minute}},
		{Policy{Initial: -1, Max: -1}, def},
	} {
		if got := tc.in.WithDefaults(def); got != tc.want {
			t.Errorf("%+v.WithDefaults = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep after cancel = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Sleep took %v after cancel", el)
	}
	if err := Sleep(t.Context(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatalf("Sleep(1ms) = %v", err)
	}
}
