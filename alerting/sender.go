package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
)

// markTimeout bounds recording a delivery after a successful send. The
// record is made even when shutdown has begun: an unrecorded send is sent
// again after a restart.
const markTimeout = 5 * time.Second

// sender is the notify-with-retry step of one receiver (the notify stage
// and the triage step use it): the retry loop and what each kind of failure does to the queue
// (see ErrorKind). A transient error is retried with backoff; a broken
// receiver is paused — every alert stays pending, readiness fails, a
// gauge says so — and probed with its first pending alert, with backoff,
// until it works again; an alert the receiver refuses is given up with
// its reason recorded (store.Outbox.MarkFailed) and the rest go on.
type sender struct {
	name    string
	outbox  store.Outbox
	backoff Backoff
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	log     *slog.Logger
	m       *metrics
	pauses  *pausedReceivers
}

// pausedReceivers is the set of receivers paused because their set-up is
// broken, for readiness. The senders of one Pipeline share one; the zero value is ready to use.
type pausedReceivers struct {
	mu     sync.Mutex
	paused map[string]pause
}

type pause struct {
	reason string
	since  time.Time
}

func (p *pausedReceivers) set(receiver, reason string, since time.Time) (first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = map[string]pause{}
	}
	old, was := p.paused[receiver]
	if was {
		since = old.since
	}
	p.paused[receiver] = pause{reason: reason, since: since}
	return !was
}

func (p *pausedReceivers) clear(receiver string) (since time.Time, was bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, was := p.paused[receiver]
	delete(p.paused, receiver)
	return old.since, was
}

func (p *pausedReceivers) isPaused(receiver string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.paused[receiver]
	return ok
}

// Ready returns nil when no receiver is paused, else an error naming each
// paused receiver, its reason and since when (for /readyz).
func (p *pausedReceivers) Ready(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.paused) == 0 {
		return nil
	}
	var parts []string
	for r, ps := range p.paused {
		parts = append(parts, fmt.Sprintf("receiver %s paused since %s: %s", r, ps.since.UTC().Format(time.RFC3339), ps.reason))
	}
	slices.Sort(parts)
	return errors.New(strings.Join(parts, "; "))
}

type notifyFunc func(ctx context.Context, alerts ...alert.Alert) (bool, error)

// deliver sends alerts until each is delivered or given up. whole: the
// batch goes as one message (a digest): all or nothing, and a refusal
// fails every alert in it. It returns only ctx's error and outbox errors:
// nothing is dropped by a failing receiver.
func (s *sender) deliver(ctx context.Context, alerts []alert.Alert, whole bool, notify notifyFunc) error {
	attempt := 0
	for len(alerts) > 0 {
		try := alerts
		if !whole && s.pauses.isPaused(s.name) {
			try = alerts[:1] // probe with the oldest alert, not the whole queue
		}
		start := time.Now()
		retry, err := notify(ctx, try...)
		s.m.duration.WithLabelValues(s.name).Observe(time.Since(start).Seconds())
		sent := len(try)
		if err != nil {
			sent = 0
			if pe, ok := errors.AsType[*PartialError](err); ok && !whole {
				sent = min(max(pe.Sent, 0), len(try))
			}
		}
		if err := s.mark(ctx, alerts[:sent], OutcomeSuccess); err != nil {
			return err
		}
		alerts = alerts[sent:]
		kind, reason := classify(retry, err)
		if err == nil || sent > 0 || kind == KindAlert {
			s.resume() // it answered as a working receiver does
			attempt = 0
		}
		if err == nil {
			continue
		}
		if len(alerts) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: the rest stays pending
		}
		switch kind {
		case KindAlert:
			n := 1
			if whole {
				n = len(alerts) // a digest that cannot be sent fails as a whole
			}
			s.log.Error("alert notification refused, giving up", "alerts", n, "alert_id", alerts[0].ID, "version", alerts[0].Version, "reason", reason, "err", err)
			if err := s.fail(ctx, alerts[:n], reason); err != nil {
				return err
			}
			alerts = alerts[n:]
			continue
		case KindReceiver:
			s.pause(reason, len(alerts))
		}
		wait := s.retryWait(err, attempt)
		s.m.notifications.WithLabelValues(s.name, OutcomeRetry).Add(float64(len(alerts)))
		s.log.Warn("alert notification failed, will retry", "alerts", len(alerts), "attempt", attempt+1, "wait", wait, "reason", reason, "err", err)
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
		attempt++
	}
	return nil
}

// call runs one notification that is not an alert of the outbox (a triage
// decision) under the same rules: it returns true once it is done, false
// when the receiver refused it for good.
func (s *sender) call(ctx context.Context, what string, fn func(ctx context.Context) (bool, error)) (bool, error) {
	attempt := 0
	for {
		retry, err := fn(ctx)
		kind, reason := classify(retry, err)
		if err == nil || kind == KindAlert {
			s.resume()
		}
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if kind == KindAlert {
			s.log.Error("notification refused, giving up", "what", what, "reason", reason, "err", err)
			return false, nil
		}
		if kind == KindReceiver {
			s.pause(reason, 0)
		}
		wait := s.retryWait(err, attempt)
		s.log.Warn("notification failed, will retry", "what", what, "attempt", attempt+1, "wait", wait, "reason", reason, "err", err)
		if err := s.sleep(ctx, wait); err != nil {
			return false, err
		}
		attempt++
	}
}

func (s *sender) pause(reason string, pending int) {
	if s.pauses.set(s.name, reason, s.now()) {
		s.m.paused.WithLabelValues(s.name).Set(1)
		s.m.pauses.WithLabelValues(s.name).Inc()
		s.log.Error("alert receiver paused: its set-up is broken; alerts wait", "reason", reason, "pending", pending)
	}
}

func (s *sender) resume() {
	if since, was := s.pauses.clear(s.name); was {
		s.m.paused.WithLabelValues(s.name).Set(0)
		s.log.Info("alert receiver resumed", "paused_for", s.now().Sub(since))
	}
}

// retryWait is the receiver's Retry-After when it gave one, else backoff.
func (s *sender) retryWait(err error, attempt int) time.Duration {
	if ra, ok := errors.AsType[*RetryAfterError](err); ok && ra.After > 0 {
		return ra.After // the receiver said when; sooner is refused
	}
	return s.backoff.Wait(attempt)
}

// mark records alerts as done for this receiver and counts them under
// outcome. It runs without ctx's cancellation (bounded by markTimeout)
// because what it records has already happened.
func (s *sender) mark(ctx context.Context, alerts []alert.Alert, outcome string) error {
	if len(alerts) == 0 {
		return nil
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	for _, a := range alerts {
		if err := s.outbox.MarkDelivered(mctx, s.name, a.ID, a.Version); err != nil {
			return fmt.Errorf("mark alert %s delivered to %s: %w", a.ID, s.name, err)
		}
		s.m.notifications.WithLabelValues(s.name, outcome).Inc()
	}
	return nil
}

// fail records alerts as refused by this receiver, with reason.
func (s *sender) fail(ctx context.Context, alerts []alert.Alert, reason string) error {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	for _, a := range alerts {
		f := store.DeliveryFailure{Receiver: s.name, AlertID: a.ID, Version: a.Version, Reason: reason, At: s.now()}
		if err := s.outbox.MarkFailed(mctx, f); err != nil {
			return fmt.Errorf("mark alert %s failed for %s: %w", a.ID, s.name, err)
		}
		s.m.notifications.WithLabelValues(s.name, OutcomeFailed).Inc()
	}
	return nil
}
