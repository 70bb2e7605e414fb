package daemon

import (
	"context"
	"sync"
	"testing"

	"github.com/dpiawatch/dpiawatch/config"
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
