package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/slack-go/slack"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
)

// Outcomes of one alert notification (the fixed label set).
const (
	OutcomeSuccess = "success" // delivered and recorded in the outbox
	OutcomeRetry   = "retry"   // an attempt failed and will be repeated
	OutcomeFailed  = "failed"  // given up: a non-retryable error
)

// batchLimit is how many pending alerts one loop takes from the outbox at a time.
const batchLimit = 100

// markTimeout bounds recording a delivery after a successful send. The
// record is made even when shutdown has begun: an unrecorded send is sent
// again after a restart.
const markTimeout = 5 * time.Second

// Backoff shapes the waits between retries: exponential from Initial,
// capped at Max, with full jitter (a uniform wait in [0, cap)) so that
// receivers recovering from an outage are not hit in lockstep.
type Backoff struct {
	Initial time.Duration // default 1s
	Max     time.Duration // default 5m
}

// DispatcherOptions configures NewDispatcher.
type DispatcherOptions struct {
	Outbox    store.Outbox
	Notifiers []Notifier
	// PollInterval is how often the outbox is read when nobody calls
	// Wake; default 1s.
	PollInterval time.Duration
	Backoff      Backoff
	Logger       *slog.Logger          // default: discard
	Registerer   prometheus.Registerer // nil: metrics are not registered
}

// Dispatcher delivers the outbox to every notifier: one loop per notifier,
// so a slow or failing receiver never delays the others.
type Dispatcher struct {
	opts    DispatcherOptions
	metrics *metrics
	wakes   []chan struct{}

	// sleep waits d or until ctx is done; tests replace it to observe waits.
	sleep func(ctx context.Context, d time.Duration) error
}

type metrics struct {
	notifications *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	pending       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, receivers []string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		notifications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_alerting_notifications_total",
			Help: "Alert notifications by receiver and outcome (success, retry: an attempt failed and will be repeated, failed: given up).",
		}, []string{"receiver", "outcome"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dpiawatch_alerting_notification_duration_seconds",
			Help:    "Time taken by one Notify call, by receiver.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"receiver"}),
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_alerting_pending",
			Help: "Alert versions read from the outbox and not yet delivered, by receiver (at most one batch of 100).",
		}, []string{"receiver"}),
	}
	for _, r := range receivers {
		for _, o := range []string{OutcomeSuccess, OutcomeRetry, OutcomeFailed} {
			m.notifications.WithLabelValues(r, o)
		}
		m.duration.WithLabelValues(r)
		m.pending.WithLabelValues(r)
	}
	return m
}

// NewDispatcher returns a Dispatcher. Its metrics are registered with
// o.Registerer at once (a second Dispatcher on one registry panics, as
// client_golang does for duplicate collectors).
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff.Initial = time.Second
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = 5 * time.Minute
	}
	if o.Backoff.Max < o.Backoff.Initial {
		o.Backoff.Max = o.Backoff.Initial
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	names := make([]string, len(o.Notifiers))
	wakes := make([]chan struct{}, len(o.Notifiers))
	for i, n := range o.Notifiers {
		names[i] = n.Name()
		wakes[i] = make(chan struct{}, 1)
	}
	return &Dispatcher{
		opts:    o,
		metrics: newMetrics(o.Registerer, names),
		wakes:   wakes,
		sleep:   sleepCtx,
	}
}

// Wake makes every loop read the outbox now rather than at its next poll.
// It never blocks; the daemon calls it after each stored batch.
func (d *Dispatcher) Wake() {
	for _, w := range d.wakes {
		select {
		case w <- struct{}{}:
		default: // a wake is already pending
		}
	}
}

// Run delivers until ctx is cancelled, then returns nil once every loop has
// stopped. It returns an error at once if the options cannot work.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.opts.Outbox == nil {
		return errors.New("alerting: dispatcher needs an outbox")
	}
	seen := map[string]bool{}
	for _, n := range d.opts.Notifiers {
		if n.Name() == "" || seen[n.Name()] {
			return fmt.Errorf("alerting: receiver name %q is empty or not unique", n.Name())
		}
		seen[n.Name()] = true
	}
	var wg sync.WaitGroup
	for i, n := range d.opts.Notifiers {
		wg.Go(func() { d.loop(ctx, n, d.wakes[i]) })
	}
	wg.Wait()
	<-ctx.Done() // with no notifiers, still run until told to stop (oklog/run ends the group when an actor returns)
	return nil
}

// loop drains the outbox for one notifier, then waits for a wake or a poll.
func (d *Dispatcher) loop(ctx context.Context, n Notifier, wake <-chan struct{}) {
	rcv := n.Name()
	log := d.opts.Logger.With("receiver", rcv)
	ticker := time.NewTicker(d.opts.PollInterval)
	defer ticker.Stop()
	failures := 0 // consecutive outbox errors, for backoff
	for {
		err := d.drain(ctx, n, log)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error("alert outbox unavailable", "err", err)
			if d.sleep(ctx, d.backoff(failures)) != nil {
				return
			}
			failures++
			continue
		}
		failures = 0
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-ticker.C:
		}
	}
}

// drain delivers pending alerts until the outbox has none for n. It
// returns only outbox errors and ctx cancellation.
func (d *Dispatcher) drain(ctx context.Context, n Notifier, log *slog.Logger) error {
	rcv := n.Name()
	for {
		batch, err := d.opts.Outbox.Pending(ctx, rcv, batchLimit)
		if err != nil {
			return fmt.Errorf("pending for %s: %w", rcv, err)
		}
		d.metrics.pending.WithLabelValues(rcv).Set(float64(len(batch)))
		if len(batch) == 0 {
			return nil
		}
		if err := d.deliver(ctx, n, batch, log); err != nil {
			return err
		}
		if len(batch) < batchLimit {
			return nil
		}
	}
}

// deliver sends batch until every alert in it is delivered or given up,
// retrying the same alerts after retryable errors: nothing is dropped.
func (d *Dispatcher) deliver(ctx context.Context, n Notifier, batch []alert.Alert, log *slog.Logger) error {
	rcv := n.Name()
	pending := d.metrics.pending.WithLabelValues(rcv)
	attempt := 0
	for len(batch) > 0 {
		start := time.Now()
		retry, err := n.Notify(ctx, batch...)
		d.metrics.duration.WithLabelValues(rcv).Observe(time.Since(start).Seconds())

		sent := len(batch)
		if err != nil {
			sent = 0
			if pe, ok := errors.AsType[*PartialError](err); ok {
				sent = min(max(pe.Sent, 0), len(batch))
			}
		}
		if err := d.mark(ctx, rcv, batch[:sent], OutcomeSuccess); err != nil {
			return err
		}
		batch = batch[sent:]
		pending.Set(float64(len(batch)))
		if err == nil || len(batch) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: the rest stays pending
		}
		if sent > 0 {
			attempt = 0 // progress: the receiver works again
		}
		if retry {
			wait := d.backoff(attempt)
			if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok && rl.RetryAfter > 0 {
				wait = rl.RetryAfter // the receiver said when; sooner is refused
			}
			d.metrics.notifications.WithLabelValues(rcv, OutcomeRetry).Add(float64(len(batch)))
			log.Warn("alert notification failed, will retry", "alerts", len(batch), "attempt", attempt+1, "wait", wait, "err", err)
			if err := d.sleep(ctx, wait); err != nil {
				return err
			}
			attempt++
			continue
		}
		// Not worth retrying: record it against the first undelivered alert
		// and move on, so one bad alert or a broken receiver cannot hold the
		// queue. The alert itself stays in the store.
		bad := batch[0]
		log.Error("alert notification failed, giving up", "alert_id", bad.ID, "version", bad.Version, "err", err)
		if err := d.mark(ctx, rcv, batch[:1], OutcomeFailed); err != nil {
			return err
		}
		batch = batch[1:]
		pending.Set(float64(len(batch)))
	}
	return nil
}

// mark records alerts as delivered to rcv and counts them under outcome.
// It runs without ctx's cancellation (bounded by markTimeout) because the
// send it records has already happened.
func (d *Dispatcher) mark(ctx context.Context, rcv string, alerts []alert.Alert, outcome string) error {
	if len(alerts) == 0 {
		return nil
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	for _, a := range alerts {
		if err := d.opts.Outbox.MarkDelivered(mctx, rcv, a.ID, a.Version); err != nil {
			return fmt.Errorf("mark alert %s delivered to %s: %w", a.ID, rcv, err)
		}
		d.metrics.notifications.WithLabelValues(rcv, outcome).Inc()
	}
	return nil
}

// backoff returns the wait before retry number attempt (0-based):
// uniform in [0, min(Max, Initial·2^attempt)).
func (d *Dispatcher) backoff(attempt int) time.Duration {
	ceiling := d.opts.Backoff.Initial
	for i := 0; i < attempt && ceiling < d.opts.Backoff.Max; i++ {
		if ceiling > d.opts.Backoff.Max/2 {
			ceiling = d.opts.Backoff.Max // and no overflow
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, d.opts.Backoff.Max)
	return rand.N(ceiling) // ceiling > 0: Initial is
}

func sleepCtx(ctx context.Context, d time.Duration) error {
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
