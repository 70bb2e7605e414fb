package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/event"
)

type metrics struct {
	consumed      *prometheus.CounterVec
	stored        prometheus.Counter
	duplicates    prometheus.Counter
	deadLettered  *prometheus.CounterVec
	conflicts     *prometheus.CounterVec
	lag           *prometheus.GaugeVec
	batchSize     prometheus.Histogram
	batchDuration prometheus.Histogram
	latency       prometheus.Histogram
	retries       *prometheus.CounterVec
	commitErrors  prometheus.Counter
	fetchErrors   prometheus.Counter
	rebalances    prometheus.Counter
	members       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, topics []string, orgs map[string]bool) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		consumed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_messages_consumed_total", Help: "Kafka messages fetched, by topic.",
		}, []string{"topic"}),
		stored: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_events_stored_total", Help: "Valid events stored for the first time.",
		}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_events_duplicate_total", Help: "Valid events already stored (replays), absorbed.",
		}),
		deadLettered: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_events_dead_lettered_total", Help: "Invalid messages sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		conflicts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_conflicting_duplicates_total",
			Help: "Events dead-lettered because they reuse the id of a kept event with other content (tampering or a broken producer), by org.",
		}, []string{"org"}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_ingest_consumer_lag_messages", Help: "Messages of the partition not yet committed by the consumer group (end offset − committed offset).",
		}, []string{"topic", "partition"}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name: "dpiawatch_ingest_batch_size_events", Help: "Messages per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		batchDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name: "dpiawatch_ingest_batch_duration_seconds", Help: "From a batch's first fetched message to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name: "dpiawatch_ingest_end_to_end_latency_seconds", Help: "From the message's Kafka timestamp to stored, checked and committed.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_batch_retries_total", Help: "Retried batch steps, by stage.",
		}, []string{"stage"}),
		commitErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_commit_errors_total", Help: "Offset commits that failed (the batch is redelivered and deduplicated).",
		}),
		fetchErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_fetch_errors_total", Help: "Failed fetches from Kafka.",
		}),
		members: f.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_ingest_group_members", Help: "Members of the consumer group (daemons sharing the input), as last measured.",
		}),
		rebalances: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_ingest_rebalances_total", Help: "Consumer-group rebalances seen between batches (check state is reloaded after each).",
		}),
	}
	for _, t := range topics {
		m.consumed.WithLabelValues(t)
	}
	for _, r := range event.Reasons {
		m.deadLettered.WithLabelValues(string(r))
	}
	for org := range orgs {
		m.conflicts.WithLabelValues(org)
	}
	m.conflicts.WithLabelValues("other")
	for _, s := range []string{"apply", "dead-letter", "record-conflicts"} {
		m.retries.WithLabelValues(s)
	}
	return m
}
