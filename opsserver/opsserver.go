// Package opsserver serves the daemon's operations endpoints: /metrics,
// /healthz and /readyz, with the authenticated web UI and the triage API
// mounted beside them. The endpoints hold no personal data and so need no
// authentication; the server should still listen on a management network
// only (the default is loopback).
package opsserver

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is one condition /readyz reports under Name: ok, or the error
// Check returns.
type Readiness struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configures a Server. Listen is required.
type Options struct {
	Listen string
	// Gatherer is served at /metrics; nil: prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	Checks   []Readiness
	// UI, when set, serves every path the endpoints above do not.
	UI http.Handler
}

// Server is the operations HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
	mux *http.ServeMux
}

// New listens on o.Listen; nothing is served until Run.
func New(o Options) (*Server, error) {
	if o.Gatherer == nil {
		o.Gatherer = prometheus.DefaultGatherer
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, err
	}
	checks := o.Checks
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				status[c.Name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[c.Name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	if o.UI != nil {
		// The more specific patterns above keep /metrics, /healthz and
		// /readyz public; everything else is the authenticated UI.
		mux.Handle("/", o.UI)
	}
	return &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second},
		ln:  ln,
		mux: mux,
	}, nil
}

// Handle mounts another component's handler (the triage API, Slack's
// interactions); call it before Run.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// URL is the base address the server listens on.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			s.Stop()
		case <-stopped:
		}
	}()
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Stop shuts the server down, waiting up to 5s for requests in flight; it
// also closes the listener of a server that never ran.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.ln.Close()
}
