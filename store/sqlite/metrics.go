package sqlite

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	applyDuration prometheus.Histogram
	stored        prometheus.Counter
	duplicates    prometheus.Counter
	alerts        prometheus.Counter
}

// newMetrics builds the store's metrics and registers them with reg when it
// is not nil; unregistered metrics still count, they are just not exported.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dpiawatch_store_apply_duration_seconds",
			Help:    "Time taken to store one batch of events with its alerts and check state.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1ms … 8s
		}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_store_events_stored_total",
			Help: "Events stored for the first time.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_store_events_duplicate_total",
			Help: "Events ignored because their (org, system, id) was already stored.",
		}),
		alerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_store_alerts_written_total",
			Help: "Alerts inserted or changed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.applyDuration, m.stored, m.duplicates, m.alerts)
	}
	return m
}
