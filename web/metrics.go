package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests     *prometheus.CounterVec   // route, code
	duration     *prometheus.HistogramVec // route
	logins       *prometheus.CounterVec   // method, outcome
	csrfRejected prometheus.Counter
	views        *prometheus.CounterVec // kind
	reviews      *prometheus.CounterVec // outcome (routineaudit.ReviewOutcomes)
	exports      *prometheus.CounterVec // identities (true, false), outcome (success, failure)
	// accountsLoads counts reloads of the accounts file by outcome
	// (success, failure); accountsLoaded is when one last succeeded.
	accountsLoads  *prometheus.CounterVec
	accountsLoaded prometheus.Gauge
	sessionsEnded  *prometheus.CounterVec // reason (sessionEnd* below)
}

// Label values of logins: fixed sets.
const (
	loginSuccess   = "success"
	loginFailure   = "failure"
	loginThrottled = "throttled"
)

// Label values of sessionsEnded: why a change to the accounts file ended a
// session.
const (
	sessionEndRemoved  = "account_removed"
	sessionEndDisabled = "account_disabled"
	sessionEndChanged  = "account_changed" // password, role, orgs or teams
)

// newMetrics registers the UI's metrics with reg when it is not nil.
func newMetrics(reg prometheus.Registerer, ss *sessions) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_web_requests_total",
			Help: "Web UI requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dpiawatch_web_request_duration_seconds",
			Help:    "Time to answer a web UI request, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_web_logins_total",
			Help: "Login attempts by method (local, oidc) and outcome (success, failure, throttled).",
		}, []string{"method", "outcome"}),
		csrfRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_web_csrf_rejected_total",
			Help: "State-changing requests refused for a missing or invalid CSRF token or a cross-origin source.",
		}),
		views: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_web_record_views_total",
			Help: "Views and exports of personal data recorded in the view log, by kind (queue, alerts-csv, alert, actor, sample, evidence, views).",
		}, []string{"kind"}),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_web_routine_audit_reviews_total",
			Help: "Routine-audit reviews recorded by managers, by outcome (reasonable, query, refer).",
		}, []string{"outcome"}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_web_evidence_exports_total",
			Help: "Evidence packs the DPO exported from the UI, by whether identities were asked for and outcome (success, failure).",
		}, []string{"identities", "outcome"}),
		accountsLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_web_accounts_loads_total",
			Help: "Reloads of the web accounts file after it changed, by outcome (success; failure: the previous accounts stay in force).",
		}, []string{"outcome"}),
		accountsLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_web_accounts_last_load_success_timestamp_seconds",
			Help: "When the web accounts file last loaded successfully.",
		}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_web_sessions_ended_total",
			Help: "Web sessions ended because their local account was removed, disabled or changed (password, role, orgs or teams).",
		}, []string{"reason"}),
	}
	for _, o := range []string{"success", "failure"} {
		m.accountsLoads.WithLabelValues(o)
	}
	for _, r := range []string{sessionEndRemoved, sessionEndDisabled, sessionEndChanged} {
		m.sessionsEnded.WithLabelValues(r)
	}
	if reg != nil {
		sessionsGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dpiawatch_web_sessions",
			Help: "Live web UI sessions.",
		}, func() float64 { return float64(ss.len()) })
		reg.MustRegister(m.requests, m.duration, m.logins, m.csrfRejected, m.views, m.reviews, m.exports, sessionsGauge,
			m.accountsLoads, m.accountsLoaded, m.sessionsEnded)
	}
	return m
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument counts requests by the mux's route pattern (a fixed set), never
// by path, which would carry alert and actor ids.
func (s *Server) instrument(h *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		_, route := h.Handler(r)
		if route == "" {
			route = "none"
		}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
