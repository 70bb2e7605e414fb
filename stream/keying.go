package stream

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/checks/bulkaccess"
	"github.com/dpiawatch/dpiawatch/checks/unlockedsession"
	"github.com/dpiawatch/dpiawatch/rules"
)

// Keying. The producer keys events by actor, so one partition holds all of
// an actor's events and the per-partition tasks judge everything that is an
// actor's own. Two patterns need a wider view: a device handed from one
// account to another (device-keyed) and an actor's access against their
// team's peers (team-keyed). They run in one shared engine that sees every
// event this daemon consumes: exact with one daemon, whatever the number of
// partitions. With several daemons in one group each shared engine sees
// only its partitions' events, unless ingest.kafka.repartition gives those
// checks keyed streams of their own (repartition.go).

// sharedChecks are the checks that run in the shared engine.
var sharedChecks = []string{unlockedsession.Name, bulkaccess.Name}

// splitByKeying derives from o the options of the per-partition engines
// (actor-keyed) and of the shared engine.
func splitByKeying(o rules.Options) (actor, shared rules.Options) {
	actor, shared = o, o
	actor.Orgs, shared.Orgs = map[string]rules.OrgPolicy{}, map[string]rules.OrgPolicy{}
	actor.Disabled = slices.Clone(o.Disabled)
	shared.Disabled = slices.Clone(o.Disabled)
	actor.Disabled = append(actor.Disabled, bulkaccess.Name)
	for _, c := range rules.Checks() {
		if !slices.Contains(sharedChecks, c) && !slices.Contains(shared.Disabled, c) {
			shared.Disabled = append(shared.Disabled, c)
		}
	}
	off := false
	for id, p := range o.Orgs {
		a, s := p, p
		uls, _ := p.Checks[unlockedsession.Name].(unlockedsession.Policy) // EngineOptions' value; none: defaults
		a.Checks = withPolicy(p.Checks, unlockedsession.Name, withULS(uls, func(k *unlockedsession.Knobs) { k.DeviceHandover = &off }))
		s.Checks = withPolicy(p.Checks, unlockedsession.Name, withULS(uls, func(k *unlockedsession.Knobs) { k.UnlockedGap = &off }))
		actor.Orgs[id], shared.Orgs[id] = a, s
	}
	return actor, shared
}

// withPolicy returns a copy of policies (an OrgPolicy.Checks) with check's
// policy set to p, so that the two engines' orgs share no map.
func withPolicy(policies map[string]any, check string, p any) map[string]any {
	c := make(map[string]any, len(policies)+1)
	maps.Copy(c, policies)
	c[check] = p
	return c
}

// withULS returns a copy of p with set applied at every level, so that no
// override turns the pattern back on.
func withULS(p unlockedsession.Policy, set func(*unlockedsession.Knobs)) unlockedsession.Policy {
	set(&p.Knobs)
	for _, m := range []*map[string]unlockedsession.Knobs{&p.DeviceKinds, &p.Roles, &p.Teams} {
		c := make(map[string]unlockedsession.Knobs, len(*m))
		for k, v := range *m {
			set(&v)
			c[k] = v
		}
		*m = c
	}
	return p
}

// watchKeying tells the operator when several daemons share the consumer
// group while the device- and team-keyed checks run in each daemon's shared
// engine: each then sees only its own partitions' events, and device
// handovers or team baselines that span partitions go unseen until
// ingest.kafka.repartition is set.
func (s *Stream) watchKeying(ctx context.Context, members func() int, g prometheus.Gauge) error {
	t := time.NewTicker(time.Second) // Members is measured after each rebalance
	defer t.Stop()
	partial := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n := members()
		if now := n > 1; now != partial {
			partial = now
			if now {
				g.Set(1)
				s.log.Warn("several daemons share the consumer group without ingest.kafka.repartition: the device- and team-keyed checks see only this daemon's partitions",
					"members", n, "checks", sharedChecks)
			} else {
				g.Set(0)
				s.log.Info("this daemon is alone in its consumer group again: the device- and team-keyed checks see every event", "members", n)
			}
		}
	}
}

// newKeyedPartialGauge registers dpiawatch_rules_keyed_checks_partial.
func newKeyedPartialGauge(reg prometheus.Registerer) prometheus.Gauge {
	return promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "dpiawatch_rules_keyed_checks_partial",
		Help: "1 while several daemons share the consumer group without ingest.kafka.repartition: the device- and team-keyed checks see part of the events.",
	})
}
