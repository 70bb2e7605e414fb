package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/testlog"
)

var testLogger = testlog.New

// startDaemon loads the configuration at cfgPath and runs a daemon on it
// until the test ends; stop ends it sooner and returns Run's error.
func startDaemon(t *testing.T, cfgPath string) (d *Daemon, stop func() error) {
	t.Helper()
	cfg, diags := config.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Options{Config: cfg, Logger: testLogger(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return d, stop
}

// officeWorkerViews is three views of one care plan a minute apart from at
// by u-07, a St Martins support worker with no shifts: out of hours at
// night on a weekday.
func officeWorkerViews(at time.Time) []event.Event {
	var events []event.Event
	for i, id := range []string{"e1", "e2", "e3"} {
		events = append(events, event.Event{ID: id, Time: at.Add(time.Duration(i) * time.Minute), Org: "st-martins", System: "logmycare",
			Action: event.ActionView, Actor: event.Actor{ID: "u-07", Role: "support-worker", Team: "webster-court"},
			Subject: event.Subject{ID: "c-0042"}, Record: event.Record{Type: "care-plan", ID: "cp-1"}, Outcome: event.OutcomeSuccess})
	}
	return events
}
