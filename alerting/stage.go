package alerting

import (
	"context"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/store"
)

// Stage is one step of delivery to one receiver, as in Alertmanager's
// notify package: it does its part with the alerts it is given — records
// in the outbox those it settles (unrouted, silenced, delivered, refused)
// — and hands on the rest. A stage that fails leaves its alerts pending:
// the outbox is the truth, and the next step reads them again.
type Stage interface {
	Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error)
}

// MultiStage runs stages in order, each on what the one before handed on,
// until one fails or no alert is left.
type MultiStage []Stage

// Exec implements Stage.
func (ms MultiStage) Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
	var err error
	for _, s := range ms {
		if len(alerts) == 0 {
			return ctx, nil, nil
		}
		if ctx, alerts, err = s.Exec(ctx, alerts); err != nil {
			return ctx, nil, err
		}
	}
	return ctx, alerts, nil
}

type ctxKey int

const keyGroupInterval ctxKey = iota

// withGroupInterval tells the stages of a group's flush its group_interval
// (the digest window), as Alertmanager's notify.WithGroupInterval does.
func withGroupInterval(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, keyGroupInterval, d)
}

func groupInterval(ctx context.Context) time.Duration {
	d, _ := ctx.Value(keyGroupInterval).(time.Duration)
	return d
}

// markFunc records alerts as settled for the receiver under an outcome.
type markFunc func(ctx context.Context, alerts []alert.Alert, outcome string) error

// dedupStage drops alert versions already waiting in one of the
// receiver's groups: the outbox hands a version out until it is marked, so
// each step reads the held ones again.
type dedupStage struct{ held map[string]int64 }

// Exec implements Stage.
func (s dedupStage) Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
	if len(s.held) == 0 {
		return ctx, alerts, nil // nothing waits (always so on the default route): no copy
	}
	out := make([]alert.Alert, 0, len(alerts))
	for _, a := range alerts {
		if s.held[a.ID] != a.Version {
			out = append(out, a)
		}
	}
	return ctx, out, nil
}

// routeStage keeps the alerts a route sends to the receiver and records
// the others as unrouted for it.
type routeStage struct {
	tree     *Tree
	receiver string
	mark     markFunc
	all      bool // the tree has no matchers and sends every alert here
}

func newRouteStage(t *Tree, receiver string, mark markFunc) routeStage {
	_, routed, fixed := t.fixedRoute(receiver)
	return routeStage{tree: t, receiver: receiver, mark: mark, all: fixed && routed}
}

// Exec implements Stage.
func (s routeStage) Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
	if s.all {
		return ctx, alerts, nil
	}
	first := slices.IndexFunc(alerts, func(a alert.Alert) bool { _, ok := s.tree.routeTo(a, s.receiver); return !ok })
	if first < 0 {
		return ctx, alerts, nil // all routed here: no copy (alerts are large)
	}
	out := slices.Clone(alerts[:first])
	unrouted := []alert.Alert{alerts[first]}
	for _, a := range alerts[first+1:] {
		if _, ok := s.tree.routeTo(a, s.receiver); ok {
			out = append(out, a)
		} else {
			unrouted = append(unrouted, a)
		}
	}
	return ctx, out, s.mark(ctx, unrouted, OutcomeUnrouted)
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

// groupStage puts each alert in its group (route and group_by values),
// where it waits for the group's flush. A route that neither waits nor
// groups (the default route: zero group_wait and group_interval, no
// group_by) has nothing to hold: those alerts are handed on at once.
type groupStage struct {
	tree     *Tree
	receiver string
	clock    Clock
	groups   map[string]*group
	held     map[string]int64 // alert id → version waiting in a group
	none     bool             // every alert's route is immediate: nothing is ever held
}

func newGroupStage(t *Tree, receiver string, clock Clock, groups map[string]*group, held map[string]int64) groupStage {
	opts, routed, fixed := t.fixedRoute(receiver)
	return groupStage{tree: t, receiver: receiver, clock: clock, groups: groups, held: held,
		none: fixed && routed && immediate(opts)}
}

// immediate reports whether a route sends at once: no wait, no grouping.
func immediate(o RouteOpts) bool {
	return o.GroupWait <= 0 && o.GroupInterval <= 0 && len(o.GroupBy) == 0
}

// Exec implements Stage.
func (s groupStage) Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
	if s.none {
		return ctx, alerts, nil
	}
	now := s.clock.Now()
	var handOn []alert.Alert
	copied := false // handOn is a copy; until then it is alerts[:i] (alerts are large)
	for i, a := range alerts {
		opts, ok := s.tree.routeTo(a, s.receiver)
		atOnce := ok && immediate(opts)
		if !atOnce && !copied {
			handOn, copied = slices.Clone(alerts[:i]), true
		}
		if atOnce {
			if copied {
				handOn = append(handOn, a)
			}
			continue
		}
		if !ok {
			continue // routeStage settled it
		}
		key := groupKey(opts, a)
		g := s.groups[key]
		if g == nil {
			g = &group{key: key, opts: opts, next: now.Add(opts.GroupWait)}
			s.groups[key] = g
		} else if len(g.pending) == 0 {
			g.next = latest(g.lastFlush.Add(g.opts.GroupInterval), now)
		}
		if _, waiting := s.held[a.ID]; waiting {
			if i := slices.IndexFunc(g.pending, func(p alert.Alert) bool { return p.ID == a.ID }); i >= 0 {
				g.pending = slices.Delete(g.pending, i, i+1) // an older version waiting: send the newest only
			}
		}
		g.pending = append(g.pending, a)
		s.held[a.ID] = a.Version
	}
	if !copied {
		return ctx, alerts, nil
	}
	return ctx, handOn, nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// silenceStage records the alerts a silence in effect mutes as silenced
// and hands on the rest.
type silenceStage struct {
	silences store.Silences
	clock    Clock
	mark     markFunc
}

// Exec implements Stage.
func (s silenceStage) Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
	now := s.clock.Now()
	active, err := activeSilences(ctx, s.silences, now)
	if err != nil {
		return ctx, nil, err
	}
	var send, muted []alert.Alert
	for _, a := range alerts {
		if silenced(active, a, now) {
			muted = append(muted, a)
		} else {
			send = append(send, a)
		}
	}
	return ctx, send, s.mark(ctx, muted, OutcomeSilenced)
}

// notifyStage sends the alerts with retry (see sender): one by one in a
// Notify call or, in a burst — more than threshold alerts within the
// group_interval — as one digest, when the receiver is a Digester.
type notifyStage struct {
	n         Notifier
	s         *sender
	clock     Clock
	threshold int // negative: never a digest
	m         *metrics
	recent    []time.Time // when alerts were sent, for the digest window
}

// Exec implements Stage.
func (s *notifyStage) Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
	now := s.clock.Now()
	window := groupInterval(ctx)
	s.recent = slices.DeleteFunc(s.recent, func(t time.Time) bool { return !t.After(now.Add(-window)) })
	d, isDigester := s.n.(Digester)
	digest := isDigester && s.threshold > 0 && len(alerts) > 1 && len(s.recent)+len(alerts) > s.threshold
	var err error
	if digest {
		err = s.s.deliver(ctx, alerts, true, func(ctx context.Context, alerts ...alert.Alert) (bool, error) {
			retry, err := d.NotifyDigest(ctx, alerts...)
			if err == nil {
				s.m.digests.WithLabelValues(s.s.name).Inc()
			}
			return retry, err
		})
	} else {
		err = s.s.deliver(ctx, alerts, false, s.n.Notify)
	}
	if err != nil {
		return ctx, nil, err // ctx done or the outbox failed: the group stays pending
	}
	for range alerts {
		s.recent = append(s.recent, now)
	}
	return ctx, nil, nil
}
