package rules

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// What the external tests (package rules_test) read of the Engine's
// insides. They are external because they run the shipped checks
// (checks/install), whose packages import this one.

type EpisodeState = episodeState

const (
	PendingPrefix     = pendingPrefix
	IgnoredUnknownOrg = ignoredUnknownOrg
)

// Metrics are the Engine's collectors.
type Metrics struct {
	Evaluations, Ignored *prometheus.CounterVec
	Open, Keys           *prometheus.GaugeVec
	Late, Future         prometheus.Counter
	Pending              prometheus.Gauge
}

func (e *Engine) Metrics() Metrics {
	m := e.metrics
	return Metrics{Evaluations: m.evaluations, Ignored: m.ignored, Open: m.open, Keys: m.keys, Late: m.late, Future: m.future, Pending: m.pending}
}

// Watermark is the org's watermark, zero when the Engine has no clock for it.
func (e *Engine) Watermark(org string) time.Time {
	if c := e.clocks[org]; c != nil {
		return c.wm
	}
	return time.Time{}
}

// Waiting is how many events of org wait for the frontier; -1 when the
// Engine has no clock for it.
func (e *Engine) Waiting(org string) int {
	if c := e.clocks[org]; c != nil {
		return c.wait.Len()
	}
	return -1
}

// LastCheck is the check the Engine runs last (a test's extra check).
func (e *Engine) LastCheck() Check { return e.checks[len(e.checks)-1].check }

// EnvOf is an Env of org, to read a check's Keyed state.
func (e *Engine) EnvOf(org string) *Env { return &Env{org: e.orgs[org]} }

// WithExtraChecks adds checks, unregistered and without policies, to o.
func WithExtraChecks(o Options, cs ...Check) Options {
	o.extraChecks = append(o.extraChecks, cs...)
	return o
}

const LateJoin = lateJoin
