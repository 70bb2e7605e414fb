package retention

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/teststores"
)

// TestRetentionPolicyFromConfig: each org's periods come from its DPIA's
// schedule or store.retention, the same ones for either store.
func TestRetentionPolicyFromConfig(t *testing.T) {
	cfg, diags := config.Load("../config/testdata/retention_ok.yaml")
	if cfg == nil {
		t.Fatalf("load: %v", diags)
	}
	p := Policy(cfg)
	day := 24 * time.Hour
	tests := []struct {
		org, class string
		want       time.Duration
	}{
		{"care-home", store.RetainEvents, 730 * day},         // its DPIA
		{"care-home", store.RetainViewLogs, 180 * day},       // overridden
		{"st-martins", store.RetainEvents, 400 * day},        // DPIA silent: the default
		{"st-martins", store.RetainAlerts, 0},                // kept
		{"not-configured", store.RetainCheckState, 30 * day}, // the default
	}
	for _, tc := range tests {
		if got := p.Period(tc.org, tc.class); got != tc.want {
			t.Errorf("Period(%s, %s) = %v, want %v", tc.org, tc.class, got, tc.want)
		}
	}
	if p.ChunkRows != 2000 || !slices.Equal(p.KeepStateContaining, []string{rules.PendingStatePrefix, rules.WatermarkStatePrefix}) {
		t.Errorf("ChunkRows %d, KeepStateContaining %q", p.ChunkRows, p.KeepStateContaining)
	}
}

// TestRetentionJob: the daemon's job runs at start and every interval,
// counts what it deleted per class, and logs counts, never content.
func TestRetentionJob(t *testing.T) {
	teststores.ForEach(t, func(t *testing.T, st store.Store) {
		now := time.Now().UTC()
		var evs []event.Event
		for i, age := range []time.Duration{400 * 24 * time.Hour, 40 * 24 * time.Hour, time.Hour} {
			evs = append(evs, event.Event{
				ID: "e" + string(rune('0'+i)), Time: now.Add(-age), Org: "st-martins", System: "logmycare",
				Action: event.ActionView, Actor: event.Actor{ID: "u-17"}, Subject: event.Subject{ID: "c-secret-subject"},
				Outcome: event.OutcomeSuccess,
			})
		}
		if _, err := st.Apply(context.Background(), evs, nil, nil); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		reg := prometheus.NewRegistry()
		j := New(Options{
			Store:    st.(store.Retainer),
			Policy:   store.RetentionPolicy{Default: store.RetentionPeriods{store.RetainEvents: 30 * 24 * time.Hour}},
			Interval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- j.Run(ctx) }()
		deadline := time.After(30 * time.Second)
		for testutil.ToFloat64(j.m.lastSuccess) == 0 {
			select {
			case <-deadline:
				t.Fatal("no retention run within 30s of start")
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		if got := testutil.ToFloat64(j.m.deleted.WithLabelValues(store.RetainEvents)); got != 2 {
			t.Errorf("dpiawatch_retention_deleted_rows_total{class=events} = %v, want 2", got)
		}
		if n, err := st.CountEvents(context.Background(), store.EventFilter{}); err != nil || n != 1 {
			t.Errorf("events left = %d, %v; want 1", n, err)
		}
		if got := testutil.ToFloat64(j.m.errors); got != 0 {
			t.Errorf("errors = %v", got)
		}
		out := logs.String()
		if !strings.Contains(out, `msg="retention run"`) || !strings.Contains(out, "events=2") {
			t.Errorf("log lacks the run's counts:\n%s", out)
		}
		if strings.Contains(out, "c-secret-subject") || strings.Contains(out, "u-17") {
			t.Errorf("log names a person:\n%s", out)
		}
		if n, err := testutil.GatherAndCount(reg, "dpiawatch_retention_deleted_rows_total"); err != nil || n != len(store.RetentionClasses) {
			t.Errorf("deleted_rows_total series = %d, %v; want one per class", n, err)
		}
	})
}
