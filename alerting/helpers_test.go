package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
)

// memOutbox is an in-memory store.Outbox with the semantics of the real
// one: Pending returns alerts whose current version was not delivered to
// the receiver, oldest change first.
type memOutbox struct {
	mu        sync.Mutex
	seq       int64
	alerts    map[string]alert.Alert
	changed   map[string]int64            // alert id -> change sequence
	delivered map[string]map[string]int64 // receiver -> alert id -> version
	marks     map[string]int              // "receiver/id/version" -> times marked
	failures  []store.DeliveryFailure     // MarkFailed calls, in order
	failNext  int                         // Pending fails this many times
}

func newMemOutbox() *memOutbox {
	return &memOutbox{
		alerts:    map[string]alert.Alert{},
		changed:   map[string]int64{},
		delivered: map[string]map[string]int64{},
		marks:     map[string]int{},
	}
}

// put stores a as a new version of its alert and returns that version.
func (o *memOutbox) put(a alert.Alert) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	a.Version = o.alerts[a.ID].Version + 1
	o.seq++
	o.alerts[a.ID] = a
	o.changed[a.ID] = o.seq
	return a.Version
}

func (o *memOutbox) Pending(ctx context.Context, receiver string, limit int) ([]alert.Alert, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failNext > 0 {
		o.failNext--
		return nil, errors.New("outbox down")
	}
	var out []alert.Alert
	for id, a := range o.alerts {
		if o.delivered[receiver][id] != a.Version {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b alert.Alert) int { return int(o.changed[a.ID] - o.changed[b.ID]) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, ctx.Err()
}

func (o *memOutbox) MarkDelivered(ctx context.Context, receiver, alertID string, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.delivered[receiver] == nil {
		o.delivered[receiver] = map[string]int64{}
	}
	o.delivered[receiver][alertID] = version
	o.marks[fmt.Sprintf("%s/%s/%d", receiver, alertID, version)]++
	return nil
}

func (o *memOutbox) MarkFailed(ctx context.Context, f store.DeliveryFailure) error {
	if err := o.MarkDelivered(ctx, f.Receiver, f.AlertID, f.Version); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures = append(o.failures, f)
	return nil
}

func (o *memOutbox) failed() []store.DeliveryFailure {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.failures)
}

func (o *memOutbox) pendingCount(receiver string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for id, a := range o.alerts {
		if o.delivered[receiver][id] != a.Version {
			n++
		}
	}
	return n
}

// delivery is one alert version a notifier was given.
type delivery struct {
	ID      string
	Version int64
}

// recorder is a Notifier that records what it was given. fail, when set,
// decides per call (0-based) and alert whether it fails: it returns the
// index of the first alert to fail (len(alerts) for none), retry and err.
type recorder struct {
	name  string
	block chan struct{} // when set, Notify waits for it to close (or ctx)

	mu    sync.Mutex
	calls int
	got   []delivery // successful deliveries only
	fail  func(call int, alerts []alert.Alert) (int, bool, error)
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Notify(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	r.mu.Lock()
	call := r.calls
	r.calls++
	r.mu.Unlock()
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	n, retry, err := len(alerts), false, error(nil)
	if r.fail != nil {
		n, retry, err = r.fail(call, alerts)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range alerts[:n] {
		r.got = append(r.got, delivery{a.ID, a.Version})
	}
	if err != nil {
		return retry, partial(n, err)
	}
	return false, nil
}

func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// waitFor polls cond until it holds or a bounded time passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testAlert returns a complete alert whose fields are all distinctive, so
// tests can look for any of them in output.
func testAlert(id string) alert.Alert {
	return alert.Alert{
		ID:          id,
		Check:       "no-business-need",
		Pattern:     "no-relationship",
		Severity:    alert.SeverityHigh,
		Org:         "st-martins",
		ActorID:     "u-17",
		SubjectID:   "c-0042",
		FirstSeen:   time.Date(2026, 3, 2, 21, 14, 5, 0, time.UTC),
		LastSeen:    time.Date(2026, 3, 2, 21, 20, 40, 0, time.UTC),
		EventIDs:    []string{"lmc-000123", "lmc-000124"},
		DPIA:        "st-martins-webster-court",
		Risks:       []string{"R2", "R4"},
		RiskTitles:  []string{"Access with no business need", "Misuse by users"},
		Mitigation:  "Routine audits look for evidence of workers accessing records inappropriately.",
		Explanation: "A support worker opened a care-plan of a resident they have no allocation to, outside their team.",
		EventCount:  2,
	}
}

// runDispatcher starts d and returns a stop function that cancels it and
// checks that Run returns promptly.
func runDispatcher(t *testing.T, d *Pipeline) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(time.Second):
				t.Fatal("Run did not return within 1s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
