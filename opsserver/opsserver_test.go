package opsserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestEndpoints: /metrics, /healthz and /readyz stay public when the UI is
// mounted at /, /readyz names each failing condition, and Run returns once
// its context is done.
func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "dpiawatch_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	ui := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "log in", http.StatusUnauthorized) })
	s, err := New(Options{Listen: "127.0.0.1:0", Gatherer: reg, UI: ui, Checks: []Readiness{
		{Name: "store", Check: func(context.Context) error { return nil }},
		{Name: "kafka", Check: func(context.Context) error { return errors.New("consumer group not joined yet") }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("/api/v1/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("api")) }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	client := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		path     string
		code     int
		contains string
	}{
		{"/healthz", http.StatusOK, "ok"},
		{"/metrics", http.StatusOK, "dpiawatch_test_things_total"},
		{"/readyz", http.StatusServiceUnavailable, `"kafka":"consumer group not joined yet","store":"ok"`},
		{"/api/v1/alerts", http.StatusOK, "api"},
		{"/alerts", http.StatusUnauthorized, "log in"},
	}
	for _, tc := range tests {
		resp, err := client.Get(s.URL() + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s = %d %q; want %d containing %q", tc.path, resp.StatusCode, body, tc.code, tc.contains)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
}
