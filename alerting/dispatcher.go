package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/backoff"
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

// Backoff shapes the waits between retries (package backoff): exponential
// from Initial (default 1s), capped at Max (default 5m), full jitter.
type Backoff = backoff.Policy

// defaultBackoff fills the zero fields of an options' Backoff.
var defaultBackoff = Backoff{Initial: time.Second, Max: 5 * time.Minute}

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
	pauses  pausedReceivers

	// sleep waits d or until ctx is done; tests replace it to observe waits.
	sleep func(ctx context.Context, d time.Duration) error
}

type metrics struct {
	senderMetrics
	pending *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, receivers []string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		senderMetrics: senderMetrics{
			notifications: f.NewCounterVec(prometheus.CounterOpts{
				Name: "dpiawatch_alerting_notifications_total",
				Help: "Alert notifications by receiver and outcome (success, retry: an attempt failed and will be repeated, failed: refused by the receiver and given up).",
			}, []string{"receiver", "outcome"}),
			duration: f.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "dpiawatch_alerting_notification_duration_seconds",
				Help:    "Time taken by one Notify call, by receiver.",
				Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			}, []string{"receiver"}),
		},
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_alerting_pending",
			Help: "Alert versions read from the outbox and not yet delivered, by receiver (at most one batch of 100).",
		}, []string{"receiver"}),
	}
	m.registerPauses(f, receivers)
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
	o.Backoff = o.Backoff.WithDefaults(defaultBackoff)
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
		sleep:   backoff.Sleep,
	}
}

// Ready reports the receivers paused because their set-up is broken (for
// /readyz): nil when none is.
func (d *Dispatcher) Ready(ctx context.Context) error { return d.pauses.Ready(ctx) }

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
	snd := &sender{name: rcv, outbox: d.opts.Outbox, backoff: d.opts.Backoff, now: time.Now,
		sleep: func(ctx context.Context, w time.Duration) error { return d.sleep(ctx, w) },
		log:   log, m: &d.metrics.senderMetrics, pauses: &d.pauses}
	ticker := time.NewTicker(d.opts.PollInterval)
	defer ticker.Stop()
	failures := 0 // consecutive outbox errors, for backoff
	for {
		err := d.drain(ctx, n, snd)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error("alert outbox unavailable", "err", err)
			if d.sleep(ctx, d.opts.Backoff.Wait(failures)) != nil {
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
func (d *Dispatcher) drain(ctx context.Context, n Notifier, snd *sender) error {
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
		if err := snd.deliver(ctx, batch, false, n.Notify); err != nil {
			return err
		}
		d.metrics.pending.WithLabelValues(rcv).Set(0)
		if len(batch) < batchLimit {
			return nil
		}
	}
}
