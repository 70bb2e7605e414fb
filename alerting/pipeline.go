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

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/backoff"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
)

// Backoff shapes the waits between retries (package backoff): exponential
// from Initial (default 1s), capped at Max (default 5m), full jitter.
type Backoff = backoff.Policy

var defaultBackoff = Backoff{Initial: time.Second, Max: 5 * time.Minute}

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

// DispatcherOptions configures NewDispatcher: delivery without
// alerting.route.
type DispatcherOptions struct {
	Outbox    store.Outbox
	Notifiers []Notifier
	// PollInterval is how often the outbox is read when nobody calls
	// Wake; default 1s.
	PollInterval time.Duration
	Backoff      Backoff
	Clock        Clock                 // default RealClock
	Logger       *slog.Logger          // default: discard
	Registerer   prometheus.Registerer // nil: metrics are not registered
}

// Pipeline delivers the outbox to receivers in stages, as Alertmanager
// does: per receiver, each step reads the outbox and runs
//
//	dedup → route → group → silence → notify with retry
//
// where the group stage holds what its route makes wait (group_wait,
// group_interval) and hands on the rest; a group's flush runs the last
// two stages on what it held.
// then shows pending triage decisions and reminds of untriaged alerts
// after repeat_interval. Groups live in memory only; the outbox is the
// truth: an alert version is marked delivered (or silenced, unrouted,
// refused) only when its stage is done, so a restart regroups what was
// pending and sends nothing twice. One loop per receiver, so a slow or
// failing receiver (or a rate-limited Slack channel) never delays another.
type Pipeline struct {
	opts      PipelineOptions
	st        stores
	tree      *Tree
	readLimit int   // alert versions per outbox read
	err       error // options that cannot work: Run returns it
	m         *metrics
	loops     []*receiverLoop
	wakes     []chan struct{}
	pauses    pausedReceivers
}

// stores are what the stages need of the store; a nil field leaves its
// stage out (the plain configuration has no silences, triage or reminders).
type stores struct {
	outbox   store.Outbox
	silences store.Silences
	triages  interface {
		PendingTriages(ctx context.Context, receiver string, limit int) ([]triage.Decision, error)
		MarkTriageDelivered(ctx context.Context, receiver string, seq int64) error
	}
	reminders interface {
		Triages(ctx context.Context, alertID string) ([]triage.Decision, error)
		Alert(ctx context.Context, id string) (alert.Alert, error)
	}
}

// Outbox reads: the plain configuration sends what it reads at once, one
// Notify call per read (the JSON Lines file fsyncs once per call); a routed
// one holds alerts in groups and reads them again until they flush, so it
// reads more.
const (
	plainReadLimit  = 100
	routedReadLimit = 5000
)

// NewPipeline checks that every receiver the tree names exists and
// registers the metrics.
func NewPipeline(o PipelineOptions) (*Pipeline, error) {
	if o.Store == nil || o.Tree == nil {
		return nil, errors.New("alerting: pipeline needs a store and a routing tree")
	}
	if o.DigestThreshold == 0 {
		o.DigestThreshold = 10
	}
	names, err := receiverNames(o.Notifiers)
	if err != nil {
		return nil, err
	}
	for _, r := range o.Tree.Receivers() {
		if !slices.Contains(names, r) {
			return nil, fmt.Errorf("alerting: route names receiver %q, which is not configured", r)
		}
	}
	st := stores{outbox: o.Store, silences: o.Store, triages: o.Store, reminders: o.Store}
	return newPipeline(o, st, routedReadLimit, names), nil
}

// NewDispatcher returns the pipeline of the plain configuration (no
// alerting.route): one default route that sends every alert to every
// receiver at once, without grouping, digests, silences, triage or
// reminders. Options that cannot work (no outbox, a receiver name empty
// or not unique) make Run fail at once. Its metrics are registered with
// o.Registerer here (a second pipeline on one registry panics, as
// client_golang does for duplicate collectors).
func NewDispatcher(o DispatcherOptions) *Pipeline {
	names, err := receiverNames(o.Notifiers)
	if err == nil && o.Outbox == nil {
		err = errors.New("alerting: dispatcher needs an outbox")
	}
	po := PipelineOptions{Tree: defaultTree(names), Notifiers: o.Notifiers, DigestThreshold: -1, PollInterval: o.PollInterval,
		Backoff: o.Backoff, Clock: o.Clock, Logger: o.Logger, Registerer: o.Registerer}
	p := newPipeline(po, stores{outbox: o.Outbox}, plainReadLimit, names)
	p.err = err
	return p
}

func receiverNames(ns []Notifier) ([]string, error) {
	names := make([]string, 0, len(ns))
	for _, n := range ns {
		if n.Name() == "" || slices.Contains(names, n.Name()) {
			return nil, fmt.Errorf("alerting: receiver name %q is empty or not unique", n.Name())
		}
		names = append(names, n.Name())
	}
	return names, nil
}

func newPipeline(o PipelineOptions, st stores, readLimit int, names []string) *Pipeline {
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
	p := &Pipeline{opts: o, st: st, tree: o.Tree, readLimit: readLimit, m: newMetrics(o.Registerer, names)}
	if names == nil { // invalid: Run reports it
		return p
	}
	for _, n := range o.Notifiers {
		p.loops = append(p.loops, p.newLoop(n))
		p.wakes = append(p.wakes, make(chan struct{}, 1))
	}
	return p
}

// newLoop composes one receiver's stages.
func (p *Pipeline) newLoop(n Notifier) *receiverLoop {
	o := p.opts
	name := n.Name()
	log := o.Logger.With("receiver", name)
	snd := &sender{name: name, outbox: p.st.outbox, backoff: o.Backoff, now: o.Clock.Now, sleep: o.Clock.Sleep,
		log: log, m: p.m, pauses: &p.pauses}
	l := &receiverLoop{p: p, n: n, s: snd, name: name, log: log, groups: map[string]*group{}, held: map[string]int64{}}
	if p.st.silences != nil {
		l.flush = append(l.flush, silenceStage{silences: p.st.silences, clock: o.Clock, mark: snd.mark})
	}
	l.flush = append(l.flush, &notifyStage{n: n, s: snd, clock: o.Clock, threshold: o.DigestThreshold, m: p.m})
	l.stages = append(MultiStage{
		dedupStage{held: l.held},
		newRouteStage(p.tree, name, snd.mark),
		newGroupStage(p.tree, name, o.Clock, l.groups, l.held),
	}, l.flush...)
	return l
}

// Ready reports the receivers paused because their set-up is broken (for
// /readyz): nil when none is.
func (p *Pipeline) Ready(ctx context.Context) error { return p.pauses.Ready(ctx) }

// Wake makes every receiver read the outbox now rather than at its next
// poll. It never blocks; the daemon calls it after each stored batch.
func (p *Pipeline) Wake() {
	for _, w := range p.wakes {
		select {
		case w <- struct{}{}:
		default: // a wake is already pending
		}
	}
}

// Run delivers until ctx is cancelled, then returns nil once every loop has
// stopped. It returns an error at once if the options cannot work.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	var wg sync.WaitGroup
	for i, l := range p.loops {
		wg.Go(func() { l.run(ctx, p.wakes[i]) })
	}
	wg.Wait()
	<-ctx.Done() // with no receivers, still run until told to stop (oklog/run ends the group when an actor returns)
	return nil
}

// receiverLoop is one receiver's delivery: its stages and its groups.
type receiverLoop struct {
	p      *Pipeline
	n      Notifier
	s      *sender
	name   string
	log    *slog.Logger
	groups map[string]*group
	held   map[string]int64 // alert id → version waiting in a group (dedup)
	stages MultiStage       // dedup → route → group → silence → notify with retry
	flush  MultiStage       // silence → notify with retry: a group's flush
}

func (l *receiverLoop) run(ctx context.Context, wake <-chan struct{}) {
	o := l.p.opts
	failures := 0 // consecutive failed steps (the outbox unavailable), for backoff
	for {
		next, err := l.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.log.Error("alert pipeline step failed", "err", err)
			if o.Clock.Sleep(ctx, o.Backoff.Wait(failures)) != nil {
				return
			}
			failures++
			continue
		}
		failures = 0
		wait := o.PollInterval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(o.Clock.Now()), 0))
		}
		if wait == 0 {
			continue
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

// step reads the outbox, runs the stages once and returns when it next has
// work on a timer (zero: none).
func (l *receiverLoop) step(ctx context.Context) (time.Time, error) {
	clock := l.p.opts.Clock
	batch, err := l.p.st.outbox.Pending(ctx, l.name, l.p.readLimit)
	if err != nil {
		return time.Time{}, fmt.Errorf("pending for %s: %w", l.name, err)
	}
	l.p.m.pending.WithLabelValues(l.name).Set(float64(len(batch)))
	// What a route sends at once goes through every stage now; the rest
	// waits in its group, and its flush runs the flush stages below.
	if _, _, err := l.stages.Exec(ctx, batch); err != nil {
		return time.Time{}, err
	}
	flushed := len(batch) > 0 && len(l.groups) == 0
	l.p.m.held.WithLabelValues(l.name).Set(float64(len(l.held)))

	if l.p.st.triages != nil {
		if err := l.triages(ctx); err != nil {
			return time.Time{}, err
		}
	}

	keys := make([]string, 0, len(l.groups))
	for k := range l.groups {
		keys = append(keys, k)
	}
	// Flush the group that has waited longest first: delivery follows the outbox order.
	slices.SortFunc(keys, func(a, b string) int { return l.groups[a].next.Compare(l.groups[b].next) })
	for _, k := range keys {
		g := l.groups[k]
		now := clock.Now()
		if len(g.pending) > 0 && !g.next.After(now) {
			if err := l.flushGroup(ctx, g); err != nil {
				return time.Time{}, err
			}
			flushed = true
			continue
		}
		if len(g.pending) == 0 && !g.lastFlush.Add(g.opts.RepeatInterval).After(now) {
			if err := l.remind(ctx, g); err != nil {
				return time.Time{}, err
			}
		}
	}
	l.p.m.held.WithLabelValues(l.name).Set(float64(len(l.held)))
	l.p.m.pending.WithLabelValues(l.name).Set(float64(len(l.held)))

	if flushed && len(batch) == l.p.readLimit {
		return clock.Now(), nil // a full read, and room made: read on at once
	}
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

// flushGroup runs a group's pending alerts through the flush stages.
func (l *receiverLoop) flushGroup(ctx context.Context, g *group) error {
	if _, _, err := l.flush.Exec(withGroupInterval(ctx, g.opts.GroupInterval), g.pending); err != nil {
		return err // ctx done or the outbox failed: the group stays pending
	}
	for _, a := range g.pending {
		delete(l.held, a.ID)
		if !slices.Contains(g.sent, a.ID) {
			g.sent = append(g.sent, a.ID)
		}
	}
	g.pending = nil
	g.lastFlush = l.p.opts.Clock.Now()
	g.next = g.lastFlush.Add(g.opts.GroupInterval)
	if g.opts.RepeatInterval <= 0 {
		delete(l.groups, g.key) // never reminded (the default route): nothing to keep
	}
	return nil
}

// remind re-notifies a group's untriaged alerts after repeat_interval, or
// forgets the group when there is nothing to remind of.
func (l *receiverLoop) remind(ctx context.Context, g *group) error {
	r, ok := l.n.(Reminder)
	rs := l.p.st.reminders
	var due []alert.Alert
	if ok && rs != nil {
		for _, id := range g.sent {
			ts, err := rs.Triages(ctx, id)
			if err != nil {
				return err
			}
			if len(ts) > 0 {
				continue
			}
			a, err := rs.Alert(ctx, id)
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
	st := l.p.st.triages
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
