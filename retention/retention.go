// Package retention runs the retention job: it resolves store.retention and
// each org's DPIA schedule into the policy the stores apply, and applies it
// at start and every interval, counting what it deleted and logging counts,
// never content.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// Policy resolves store.retention and each org's DPIA schedule
// (config.RetentionFor) into the policy both stores apply. Orgs not
// configured take what an unknown org resolves to.
func Policy(cfg *config.Config) store.RetentionPolicy {
	periods := func(org string) store.RetentionPeriods {
		ps := store.RetentionPeriods{}
		for _, c := range cfg.RetentionFor(org) {
			ps[c.Class] = time.Duration(c.Days) * 24 * time.Hour
		}
		return ps
	}
	p := store.RetentionPolicy{
		Default:             periods(""),
		Orgs:                map[string]store.RetentionPeriods{},
		ChunkRows:           cfg.Store.Retention.ChunkRows,
		KeepStateContaining: []string{rules.PendingStatePrefix, rules.WatermarkStatePrefix},
	}
	for _, o := range cfg.Orgs {
		p.Orgs[o.ID] = periods(o.ID)
	}
	return p
}

// Options configures a Job. Store is required; the rest have safe zero
// values.
type Options struct {
	Store  store.Retainer
	Policy store.RetentionPolicy
	// Interval between runs; zero or less: store.retention.interval's
	// default.
	Interval time.Duration
	// Now is the clock retention measures ages against; nil: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer takes the job's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// Job applies the retention policy every interval, the first time at
// start.
type Job struct {
	store    store.Retainer
	policy   store.RetentionPolicy
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	m        *retentionMetrics
}

// New builds the job; nothing runs until Run.
func New(o Options) *Job {
	if o.Interval <= 0 {
		o.Interval = config.DefaultRetentionInterval.D()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Job{store: o.Store, policy: o.Policy, interval: o.Interval, now: o.Now, log: o.Logger, m: newRetentionMetrics(o.Registerer)}
}

type retentionMetrics struct {
	deleted      *prometheus.CounterVec
	keptOpen     prometheus.Gauge
	lastRun      prometheus.Gauge
	lastSuccess  prometheus.Gauge
	errors       prometheus.Counter
	longestChunk prometheus.Gauge
}

func newRetentionMetrics(reg prometheus.Registerer) *retentionMetrics {
	m := &retentionMetrics{
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_retention_deleted_rows_total",
			Help: "Rows deleted by retention because their org's period had passed, by class (events, check_state, view_logs, alerts).",
		}, []string{"class"}),
		keptOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_retention_kept_open_alerts",
			Help: "Alerts past their retention period kept at the last run because their triage is not final.",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_retention_last_run_timestamp_seconds",
			Help: "When retention last ran, successfully or not (Unix time).",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_retention_last_success_timestamp_seconds",
			Help: "When retention last ran to the end (Unix time).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_retention_errors_total",
			Help: "Retention runs that failed; the next interval tries again.",
		}),
		longestChunk: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_retention_longest_chunk_seconds",
			Help: "The longest deletion transaction of the last run: how long it held the store's write lock.",
		}),
	}
	for _, c := range store.RetentionClasses {
		m.deleted.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.deleted, m.keptOpen, m.lastRun, m.lastSuccess, m.errors, m.longestChunk)
	}
	return m
}

// Run applies retention at once and then every interval until ctx is done.
func (j *Job) Run(ctx context.Context) error {
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		j.once(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// once runs retention and logs counts, never content.
func (j *Job) once(ctx context.Context) {
	start := time.Now()
	now := j.now()
	j.m.lastRun.Set(float64(now.Unix()))
	res, err := j.store.Retain(ctx, j.policy, now)
	for _, c := range store.RetentionClasses {
		j.m.deleted.WithLabelValues(c).Add(float64(res.Total(c)))
	}
	attrs := []any{"events", res.Total(store.RetainEvents), "check_state", res.Total(store.RetainCheckState),
		"view_logs", res.Total(store.RetainViewLogs), "alerts", res.Total(store.RetainAlerts),
		"kept_open_alerts", res.KeptOpen, "chunks", res.Chunks, "longest_chunk", res.LongestChunk, "took", time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			return // stopping
		}
		j.m.errors.Inc()
		j.log.Error("retention run failed", append(attrs, "err", err)...)
		return
	}
	j.m.keptOpen.Set(float64(res.KeptOpen))
	j.m.longestChunk.Set(res.LongestChunk.Seconds())
	j.m.lastSuccess.Set(float64(now.Unix()))
	j.log.Info("retention run", attrs...)
}
