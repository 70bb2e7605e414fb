package clickhouse

import "github.com/prometheus/client_golang/prometheus"

// metrics share their names with the embedded store's where they mean the
// same, so that dashboards and alert rules work with either.
type metrics struct {
	applyDuration prometheus.Histogram
	applyErrors   *prometheus.CounterVec
	stored        prometheus.Counter
	duplicates    prometheus.Counter
	alerts        prometheus.Counter
	rows          *prometheus.CounterVec
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
		applyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_store_apply_errors_total",
			Help: "Batches that failed to store, by the step that failed (the batch is retried; nothing is lost).",
		}, []string{"step"}),
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
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_store_clickhouse_inserted_rows_total",
			Help: "Rows inserted into ClickHouse, by table.",
		}, []string{"table"}),
	}
	for _, s := range applySteps {
		m.applyErrors.WithLabelValues(s)
	}
	for _, t := range []string{"events", "alerts", "checkpoint", "reference_rows"} {
		m.rows.WithLabelValues(t)
	}
	if reg != nil {
		reg.MustRegister(m.applyDuration, m.applyErrors, m.stored, m.duplicates, m.alerts, m.rows)
	}
	return m
}
