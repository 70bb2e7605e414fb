package alerting

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcomes of one alert version for one receiver (the fixed label set of
// dpiawatch_alerting_notifications_total).
const (
	OutcomeSuccess  = "success"  // delivered and recorded in the outbox
	OutcomeRetry    = "retry"    // an attempt failed and will be repeated
	OutcomeFailed   = "failed"   // given up: refused by the receiver
	OutcomeSilenced = "silenced" // muted by a silence; recorded, not sent
	OutcomeUnrouted = "unrouted" // no route sends it to this receiver
)

var outcomes = []string{OutcomeSuccess, OutcomeRetry, OutcomeFailed, OutcomeSilenced, OutcomeUnrouted}

// metrics are delivery's series, defined once for every configuration
// (with or without alerting.route), by receiver.
type metrics struct {
	notifications *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	digests       *prometheus.CounterVec
	triages       *prometheus.CounterVec
	held          *prometheus.GaugeVec
	pending       *prometheus.GaugeVec
	paused        *prometheus.GaugeVec
	pauses        *prometheus.CounterVec
}

// newMetrics registers the series with reg (nil: not registered) and
// creates each receiver's, so that dashboards see zeros, not gaps.
func newMetrics(reg prometheus.Registerer, receivers []string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		notifications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_alerting_notifications_total",
			Help: "Alert versions by receiver and outcome (success, retry: an attempt failed and will be repeated, failed: refused by the receiver and given up, silenced, unrouted).",
		}, []string{"receiver", "outcome"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dpiawatch_alerting_notification_duration_seconds",
			Help:    "Time taken by one notification call, by receiver.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"receiver"}),
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
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_alerting_pending",
			Help: "Alert versions read from the outbox at the last read and not yet delivered, by receiver (at most one read: 100 without alerting.route, 5000 with).",
		}, []string{"receiver"}),
		paused: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_alerting_receiver_paused",
			Help: "1 while a receiver is paused because its set-up is broken (credentials, channel, URL): its alerts wait, none is given up.",
		}, []string{"receiver"}),
		pauses: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_alerting_receiver_pauses_total",
			Help: "Times a receiver was paused because its set-up was broken.",
		}, []string{"receiver"}),
	}
	for _, r := range receivers {
		for _, o := range outcomes {
			m.notifications.WithLabelValues(r, o)
		}
		for _, o := range []string{OutcomeSuccess, OutcomeRetry, OutcomeFailed} {
			m.triages.WithLabelValues(r, o)
		}
		m.duration.WithLabelValues(r)
		m.digests.WithLabelValues(r)
		m.held.WithLabelValues(r)
		m.pending.WithLabelValues(r)
		m.paused.WithLabelValues(r)
		m.pauses.WithLabelValues(r)
	}
	return m
}
