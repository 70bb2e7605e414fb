package daemon

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

// readiness is one condition /readyz reports.
type readiness struct {
	name  string
	check func(ctx context.Context) error
}

// opsServer serves /metrics, /healthz and /readyz. It holds no personal
// data and so needs no authentication; it should still listen on a
// management network only (the default is loopback).
type opsServer struct {
	srv *http.Server
	ln  net.Listener
	mux *http.ServeMux // other components mount their handlers here before run
}

func newOpsServer(listen string, gatherer prometheus.Gatherer, checks []readiness, ui http.Handler) (*opsServer, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
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
			if err := c.check(ctx); err != nil {
				status[c.name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[c.name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	if ui != nil {
		// The more specific patterns above keep /metrics, /healthz and
		// /readyz public; everything else is the authenticated UI.
		mux.Handle("/", ui)
	}
	return &opsServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second},
		ln:  ln,
		mux: mux,
	}, nil
}

// URL is the base address the server listens on.
func (s *opsServer) URL() string { return "http://" + s.ln.Addr().String() }

func (s *opsServer) run() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *opsServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
