package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// Pipeline outcomes beside OutcomeSuccess, OutcomeRetry and OutcomeFailed.
const (
	OutcomeSilenced = "silenced" // muted by a silence; recorded, not sent
	OutcomeUnrouted = "unrouted" // no route sends it to this receiver
)

var pipelineOutcomes = []string{OutcomeSuccess, OutcomeRetry, OutcomeFailed, OutcomeSilenced, OutcomeUnrouted}

// Digester is a Notifier that can send many alerts as one digest message.
type Digester interface {
	NotifyDigest(ctx context.Context, alerts ...alert.Alert) (retry bool, err error)
}

// TriageNotifier is a Notifier that shows triage decisions (Slack: a reply
// in the alert's thread and its status in the message).
type TriageNotifier interface {
	NotifyTriage(ctx context.Context, t triage.Decision) (retry bool, err error)
}

// Reminder is a Notifier that can remind people of alerts still untriaged
// after a route's repeat_interval.
type Reminder interface {
	Remind(ctx context.Context, alerts ...alert.Alert) (retry bool, err error)
}

// PipelineOptions configures NewPipeline.
type PipelineOptions struct {
	Store     store.AlertingStore
	Tree      *Tree
	Notifiers []Notifier // by Name, the receivers the tree names
	// DigestThreshold: when a flush would bring one receiver more than
	// this many alerts within its group_interval, they go as one digest
	// (receivers that are Digesters). Default 10; negative: never.
	DigestThreshold int
	PollInterval    time.Duration // default 1s
	Backoff         Backoff
	Clock           Clock // default RealClock
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

// Pipeline delivers the outbox in stages, as Alertmanager does: route →
// group (group_wait, group_interval, repeat_interval) → dedup → silence →
// notify with retry. Groups live in memory only; the outbox is the truth:
// an alert version is marked delivered (or silenced, or unrouted) only
// after its stage is done, so a restart regroups what was pending and
// sends nothing twice.
type Pipeline struct {
	opts   PipelineOptions
	m      *pipelineMetrics
	loops  []*receiverLoop
	wakes  []chan struct{}
	pauses pausedReceivers
}

type pipelineMetrics struct {
	senderMetrics
	digests *prometheus.CounterVec
	triages *prometheus.CounterVec
	held    *prometheus.GaugeVec
}

func newPipelineMetrics(reg prometheus.Registerer, receivers []string) *pipelineMetrics {
	f := promauto.With(reg)
	m := &pipelineMetrics{
		senderMetrics: senderMetrics{
			notifications: f.NewCounterVec(prometheus.CounterOpts{
				Name: "dpiawatch_alerting_notifications_total",
				Help: "Alert versions by receiver and outcome (success, retry: an attempt failed and will be repeated, failed: refused by the receiver and given up, silenced, unrouted).",
			}, []string{"receiver", "outcome"}),
			duration: f.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "dpiawatch_alerting_notification_duration_seconds",
				Help:    "Time taken by one notification call, by receiver.",
				Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			}, []string{"receiver"}),
		},
		digests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_alerting_digests_total",
			Help: "Digest messages sent instead of a burst of single alerts, by receiver.",
		}, []string{"receiver"}),
		triages: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_alerting_triage_notifications_total",
			Help: "Triage decisions shown to receivers, by receiver and outcome (success, retry, failed).",
		}, []string{"receiver", "outcome"}),
		held: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_alerting_grouped_alerts",
			Help: "Alert versions waiting in a group for its group_wait or group_interval, by receiver.",
		}, []string{"receiver"}),
	}
	m.registerPauses(f, receivers)
	for _, r := range receivers {
		for _, o := range pipelineOutcomes {
			m.notifications.WithLabelValues(r, o)
		}
		for _, o := range []string{OutcomeSuccess, OutcomeRetry, OutcomeFailed} {
			m.triages.WithLabelValues(r, o)
		}
		m.duration.WithLabelValues(r)
		m.digests.WithLabelValues(r)
		m.held.WithLabelValues(r)
	}
	return m
}

// NewPipeline checks that every receiver the tree names exists and
// registers the metrics.
func NewPipeline(o PipelineOptions) (*Pipeline, error) {
	if o.Store == nil || o.Tree == nil {
		return nil, errors.New("alerting: pipeline needs a store and a routing tree")
	}
	if o.DigestThreshold == 0 {
		o.DigestThreshold = 10
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	o.Backoff = o.Backoff.WithDefaults(defaultBackoff)
	if o.Clock == nil {
		o.Clock = RealClock
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	byName := map[string]Notifier{}
	var names []string
	for _, n := range o.Notifiers {
		if n.Name() == "" || byName[n.Name()] != nil {
			return nil, fmt.Errorf("alerting: receiver name %q is empty or not unique", n.Name())
		}
		byName[n.Name()] = n
		names = append(names, n.Name())
	}
	for _, r := range o.Tree.Receivers() {
		if byName[r] == nil {
			return nil, fmt.Errorf("alerting: route names receiver %q, which is not configured", r)
		}
	}
	p := &Pipeline{opts: o, m: newPipelineMetrics(o.Registerer, names)}
	for _, n := range o.Notifiers {
		log := o.Logger.With("receiver", n.Name())
		snd := &sender{name: n.Name(), outbox: o.Store, backoff: o.Backoff, now: o.Clock.Now, sleep: o.Clock.Sleep,
			log: log, m: &p.m.senderMetrics, pauses: &p.pauses}
		p.loops = append(p.loops, &receiverLoop{p: p, n: n, s: snd, name: n.Name(), log: log,
			groups: map[string]*group{}, held: map[string]int64{}})
		p.wakes = append(p.wakes, make(chan struct{}, 1))
	}
	return p, nil
}

// Ready reports the receivers paused because their set-up is broken (for
// /readyz): nil when none is.
func (p *Pipeline) Ready(ctx context.Context) error { return p.pauses.Ready(ctx) }

// Wake makes every receiver read the outbox now. It never blocks.
func (p *Pipeline) Wake() {
	for _, w := range p.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx is cancelled: one loop per receiver, so a slow or
// failing receiver (or a rate-limited Slack channel) never delays another.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, l := range p.loops {
		wg.Go(func() { l.run(ctx, p.wakes[i]) })
	}
	wg.Wait()
	<-ctx.Done()
	return nil
}

// group is one Alertmanager aggregation group of one receiver.
type group struct {
	key       string
	opts      RouteOpts
	pending   []alert.Alert // latest version of each, outbox order
	next      time.Time     // when pending flushes
	lastFlush time.Time
	sent      []string // alert ids notified, for reminders
}

type receiverLoop struct {
	p      *Pipeline
	n      Notifier
	s      *sender
	name   string
	log    *slog.Logger
	groups map[string]*group
	held   map[string]int64 // alert id → version waiting in a group (dedup)
	recent []time.Time      // when alerts were sent, for the digest window
}

// pendingLimit bounds one read of the outbox. Alerts held in groups are
// read again on every step until their group flushes, so it is generous.
const pendingLimit = 5000

func (l *receiverLoop) run(ctx context.Context, wake <-chan struct{}) {
	failures := 0
	for {
		next, err := l.step(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := l.p.opts.PollInterval
		if err != nil {
			l.log.Error("alert pipeline step failed", "err", err)
			wait = l.p.opts.Backoff.Wait(failures)
			failures++
		} else {
			failures = 0
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(l.p.opts.Clock.Now()), 0))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// step runs every stage once and returns when it next has work on a timer
// (zero: none).
func (l *receiverLoop) step(ctx context.Context) (time.Time, error) {
	st, clock := l.p.opts.Store, l.p.opts.Clock
	batch, err := st.Pending(ctx, l.name, pendingLimit)
	if err != nil {
		return time.Time{}, fmt.Errorf("pending for %s: %w", l.name, err)
	}
	now := clock.Now()
	for _, a := range batch {
		if l.held[a.ID] == a.Version {
			continue // dedup: already waiting in its group
		}
		var opts *RouteOpts
		for _, r := range l.p.opts.Tree.Match(a) {
			if r.Receiver == l.name {
				opts = &r
				break // one notification per receiver, however many routes name it
			}
		}
		if opts == nil {
			if err := l.mark(ctx, []alert.Alert{a}, OutcomeUnrouted); err != nil {
				return time.Time{}, err
			}
			continue
		}
		key := groupKey(*opts, a)
		g := l.groups[key]
		if g == nil {
			g = &group{key: key, opts: *opts, next: now.Add(opts.GroupWait)}
			l.groups[key] = g
		} else if len(g.pending) == 0 {
			g.next = latest(g.lastFlush.Add(g.opts.GroupInterval), now)
		}
		if i := slices.IndexFunc(g.pending, func(p alert.Alert) bool { return p.ID == a.ID }); i >= 0 {
			g.pending = slices.Delete(g.pending, i, i+1)
		}
		g.pending = append(g.pending, a)
		l.held[a.ID] = a.Version
	}
	l.p.m.held.WithLabelValues(l.name).Set(float64(len(l.held)))

	if err := l.triages(ctx); err != nil {
		return time.Time{}, err
	}

	var silences []compiledSilence
	silencesRead := false
	keys := make([]string, 0, len(l.groups))
	for k := range l.groups {
		keys = append(keys, k)
	}
	// Flush the group that has waited longest first: delivery follows the outbox order.
	slices.SortFunc(keys, func(a, b string) int { return l.groups[a].next.Compare(l.groups[b].next) })
	for _, k := range keys {
		g := l.groups[k]
		now = clock.Now()
		if len(g.pending) > 0 && !g.next.After(now) {
			if !silencesRead {
				if silences, err = activeSilences(ctx, st, now); err != nil {
					return time.Time{}, err
				}
				silencesRead = true
			}
			if err := l.flush(ctx, g, silences); err != nil {
				return time.Time{}, err
			}
			continue
		}
		if len(g.pending) == 0 && !g.lastFlush.Add(g.opts.RepeatInterval).After(now) {
			if err := l.remind(ctx, g); err != nil {
				return time.Time{}, err
			}
		}
	}
	l.p.m.held.WithLabelValues(l.name).Set(float64(len(l.held)))

	var next time.Time
	for _, g := range l.groups {
		t := g.next
		if len(g.pending) == 0 {
			t = g.lastFlush.Add(g.opts.RepeatInterval)
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// flush sends a group's pending alerts: silenced ones are recorded as such,
// the rest go as single notifications or, in a burst, as one digest.
func (l *receiverLoop) flush(ctx context.Context, g *group, silences []compiledSilence) error {
	now := l.p.opts.Clock.Now()
	var send, muted []alert.Alert
	for _, a := range g.pending {
		if silenced(silences, a, now) {
			muted = append(muted, a)
		} else {
			send = append(send, a)
		}
	}
	if err := l.mark(ctx, muted, OutcomeSilenced); err != nil {
		return err
	}
	window := g.opts.GroupInterval
	l.recent = slices.DeleteFunc(l.recent, func(t time.Time) bool { return !t.After(now.Add(-window)) })
	d, isDigester := l.n.(Digester)
	digest := isDigester && l.p.opts.DigestThreshold > 0 && len(send) > 1 && len(l.recent)+len(send) > l.p.opts.DigestThreshold
	var err error
	if digest {
		err = l.s.deliver(ctx, send, true, func(ctx context.Context, alerts ...alert.Alert) (bool, error) {
			retry, err := d.NotifyDigest(ctx, alerts...)
			if err == nil {
				l.p.m.digests.WithLabelValues(l.name).Inc()
			}
			return retry, err
		})
	} else {
		err = l.s.deliver(ctx, send, false, l.n.Notify)
	}
	if err != nil {
		return err // ctx done or the outbox failed: the group stays pending
	}
	for _, a := range g.pending {
		delete(l.held, a.ID)
		if !slices.Contains(g.sent, a.ID) {
			g.sent = append(g.sent, a.ID)
		}
	}
	for range send {
		l.recent = append(l.recent, now)
	}
	g.pending = nil
	g.lastFlush = l.p.opts.Clock.Now()
	g.next = g.lastFlush.Add(g.opts.GroupInterval)
	return nil
}

// remind re-notifies a group's untriaged alerts after repeat_interval, or
// forgets the group when there is nothing to remind of.
func (l *receiverLoop) remind(ctx context.Context, g *group) error {
	r, ok := l.n.(Reminder)
	var due []alert.Alert
	if ok {
		for _, id := range g.sent {
			ts, err := l.p.opts.Store.Triages(ctx, id)
			if err != nil {
				return err
			}
			if len(ts) > 0 {
				continue
			}
			a, err := l.p.opts.Store.Alert(ctx, id)
			if err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			due = append(due, a)
		}
	}
	if len(due) == 0 {
		delete(l.groups, g.key)
		return nil
	}
	if _, err := r.Remind(ctx, due...); err != nil {
		// A reminder is not a promise of the outbox: log and carry on.
		l.log.Warn("alert reminder failed", "alerts", len(due), "err", err)
	}
	g.lastFlush = l.p.opts.Clock.Now()
	return nil
}

// triages shows pending triage decisions, in order, to a TriageNotifier;
// other receivers just record them as seen.
func (l *receiverLoop) triages(ctx context.Context) error {
	st := l.p.opts.Store
	ts, err := st.PendingTriages(ctx, l.name, 100)
	if err != nil {
		return fmt.Errorf("pending triages for %s: %w", l.name, err)
	}
	tn, ok := l.n.(TriageNotifier)
	for _, t := range ts {
		if l.held[t.AlertID] != 0 {
			return nil // its alert is still waiting to be sent; show the triage after it
		}
		if ok {
			tries := 0
			done, err := l.s.call(ctx, "triage", func(ctx context.Context) (bool, error) {
				if tries > 0 {
					l.p.m.triages.WithLabelValues(l.name, OutcomeRetry).Inc()
				}
				tries++
				return tn.NotifyTriage(ctx, t)
			})
			if err != nil {
				return err
			}
			outcome := OutcomeSuccess
			if !done {
				outcome = OutcomeFailed
			}
			l.p.m.triages.WithLabelValues(l.name, outcome).Inc()
		}
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		err := st.MarkTriageDelivered(mctx, l.name, t.Seq)
		cancel()
		if err != nil {
			return fmt.Errorf("mark triage %d delivered to %s: %w", t.Seq, l.name, err)
		}
	}
	return nil
}

// mark records alerts as done for this receiver (silenced, unrouted),
// even during shutdown: the stage it records has happened.
func (l *receiverLoop) mark(ctx context.Context, alerts []alert.Alert, outcome string) error {
	return l.s.mark(ctx, alerts, outcome)
}
