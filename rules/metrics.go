package rules

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alert"
)

// Label values of dpiawatch_rules_events_ignored_total{reason}.
const (
	ignoredUnknownOrg = "unknown_org"
	// ignoredNotStaff: a patient, relative or system (actor.kind) is
	// stored, never judged as staff access.
	ignoredNotStaff = "not_staff"
)

// noRisk labels alerts of a check the org's DPIA maps to no risk.
const noRisk = "none"

type metrics struct {
	evaluations *prometheus.CounterVec
	alerts      *prometheus.CounterVec
	ignored     *prometheus.CounterVec
	open        *prometheus.GaugeVec
	keys        *prometheus.GaugeVec
	late        prometheus.Counter
	future      prometheus.Counter
	pending     prometheus.Gauge
	unknown     *prometheus.CounterVec
}

// newMetrics registers the rules metrics with reg (nil: not registered) and
// pre-initialises every label set, all of which come from configuration.
// A collector already registered by an earlier Engine (a rebuilt one after a
// config reload) is shared rather than an error.
func newMetrics(reg prometheus.Registerer, checks []Check, orgs map[string]*orgRuntime) (*metrics, error) {
	m := &metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_rules_evaluations_total",
			Help: "Events a check judged.",
		}, []string{"check"}),
		alerts: newAlertsVec(),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_rules_events_ignored_total",
			Help: "Events the checks did not judge, by reason.",
		}, []string{"reason"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_rules_open_episodes",
			Help: "Episodes that may still grow, on time or from late events (held in memory and in checkpointed state).",
		}, []string{"check"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_rules_state_keys",
			Help: "Keys of per-key check state held (in memory and in checkpointed state).",
		}, []string{"check"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_rules_late_events_total",
			Help: "Events that arrived later than the lateness bound and were judged on arrival rather than in order.",
		}),
		future: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_rules_future_events_total",
			Help: "Events stamped too far ahead of the org's watermark (or the wall clock) to move it; judged on arrival.",
		}),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_rules_unknown_account_events_total",
			Help: "Events by an account on no staff list of its org, of an org that has one (CONTRACT §2: an unknown account), by the event's org.",
		}, []string{"org"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_rules_waiting_events",
			Help: "Events waiting, within the lateness bound, for their turn in event time.",
		}),
	}
	if reg != nil {
		var err error
		if m.evaluations, err = register(reg, m.evaluations); err != nil {
			return nil, err
		}
		if m.alerts, err = register(reg, m.alerts); err != nil {
			return nil, err
		}
		if m.ignored, err = register(reg, m.ignored); err != nil {
			return nil, err
		}
		if m.open, err = register(reg, m.open); err != nil {
			return nil, err
		}
		if m.keys, err = register(reg, m.keys); err != nil {
			return nil, err
		}
		if m.late, err = register(reg, m.late); err != nil {
			return nil, err
		}
		if m.future, err = register(reg, m.future); err != nil {
			return nil, err
		}
		if m.pending, err = register(reg, m.pending); err != nil {
			return nil, err
		}
		if m.unknown, err = register(reg, m.unknown); err != nil {
			return nil, err
		}
	}
	m.ignored.WithLabelValues(ignoredUnknownOrg)
	m.ignored.WithLabelValues(ignoredNotStaff)
	for id, o := range orgs {
		m.alerts.WithLabelValues(CheckFeedIntegrity, o.dpia, noRisk) // AlertCounter's
		m.unknown.WithLabelValues(id)
	}
	for _, c := range checks {
		m.evaluations.WithLabelValues(c.Name())
		m.open.WithLabelValues(c.Name())
		m.keys.WithLabelValues(c.Name())
		for _, o := range orgs {
			sets := []riskSet{o.risks[c.Name()]}
			for _, rs := range o.patternRisks[c.Name()] {
				sets = append(sets, rs)
			}
			for _, rs := range sets {
				if len(rs.ids) == 0 {
					m.alerts.WithLabelValues(c.Name(), o.dpia, noRisk)
				}
				for _, r := range rs.ids {
					m.alerts.WithLabelValues(c.Name(), o.dpia, r)
				}
			}
		}
	}
	return m, nil
}

func newAlertsVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dpiawatch_rules_alerts_total",
		Help: "Alerts opened, by check, DPIA and each DPIA risk the alert evidences (risk=\"none\" when the DPIA maps the check or pattern to no risk).",
	}, []string{"check", "dpia", "risk"})
}

func countAlert(c *prometheus.CounterVec, a *alert.Alert) {
	if len(a.Risks) == 0 {
		c.WithLabelValues(a.Check, a.DPIA, noRisk).Inc()
		return
	}
	for _, r := range a.Risks {
		c.WithLabelValues(a.Check, a.DPIA, r).Inc()
	}
}

// AlertCounter counts in dpiawatch_rules_alerts_total the alerts raised
// outside the engine — the daemon's feed-integrity alerts (ConflictAlert),
// check "feed-integrity", risk "none", pre-initialised for each org's DPIA
// by the engine — so that the metric counts every alert opened.
type AlertCounter struct{ alerts *prometheus.CounterVec }

// NewAlertCounter shares the engine's counter registered with reg (nil:
// not registered).
func NewAlertCounter(reg prometheus.Registerer) (*AlertCounter, error) {
	c := newAlertsVec()
	if reg != nil {
		var err error
		if c, err = register(reg, c); err != nil {
			return nil, err
		}
	}
	return &AlertCounter{alerts: c}, nil
}

// Count counts a, once per risk it evidences or once as risk "none".
func (c *AlertCounter) Count(a *alert.Alert) { countAlert(c.alerts, a) }

// register registers c with reg, or returns the collector of the same
// description registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
	}
	return c, fmt.Errorf("register rules metrics: %w", err)
}
