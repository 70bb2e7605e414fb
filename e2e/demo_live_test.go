package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/replay"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testlog"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// TestDemoLiveEqualsReplay runs `dpiawatch demo` as shipped — the shipped
// configuration, the in-process broker's three partitions, both
// organisations published side by side in compressed simulated time (hours
// of event time a second, so partitions drift hours apart) — with a bounded
// number of events, lets every alert settle, and compares them alert by
// alert with `dpiawatch replay` over the events the demo stored and the
// reference data it wrote. This is what a new user does to check the demo.
func TestDemoLiveEqualsReplay(t *testing.T) {
	dir := t.TempDir()
	const perOrg = 6000
	cmd := exec.Command(binary, "demo", "--config", "../configs/dpiawatch.yaml", "--listen", "127.0.0.1:0",
		"--rate", "1000", "--events", "6000", "--data", dir)
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // already stopped on success

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := openStore(t, filepath.Join(dir, "dpiawatch.db"))
	// Every event stored, then every org complete up to its newest event:
	// the demo has judged all it stored (idle_release after the input went
	// quiet).
	if !testwait.Until(2*time.Minute, func() bool {
		n, err := st.CountEvents(ctx, store.EventFilter{})
		return err == nil && n >= 2*perOrg && complete(ctx, t, st)
	}) {
		t.Fatalf("the demo did not store and judge its %d events within 2 minutes:\n%s", 2*perOrg, stderr.String())
	}
	alerts, err := st.Alerts(ctx, store.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo did not stop cleanly: %v\n%s", err, stderr.String())
	}

	var values [][]byte
	if err := st.ScanEvents(ctx, store.EventFilter{}, func(ev event.Event) error {
		b, err := event.Encode(&ev)
		values = append(values, b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(values) != 2*perOrg {
		t.Fatalf("%d events stored, want %d", len(values), 2*perOrg)
	}
	exp := replayWith(t, "../configs/dpiawatch.yaml", filepath.Join(dir, "reference"), values)
	byCheck := map[string]int{}
	for _, a := range exp {
		byCheck[a.Check+"/"+a.Pattern]++
	}
	t.Logf("the replay of the demo's %d events raised %d alerts: %v", len(values), len(exp), byCheck)
	if byCheck["unlocked-session/device-handover"] == 0 {
		t.Fatal("the replay raised no device-handover alert: the test would prove nothing")
	}
	compareAlerts(t, alerts, exp)
	compareExplanations(t, alerts, exp)
}

// complete reports whether every org with stored events is complete up to
// its newest stored event.
func complete(ctx context.Context, t *testing.T, st store.Store) bool {
	t.Helper()
	points, err := store.LoadCompleteness(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, org := range []string{"st-martins", "wiltshire-council"} {
		newest := newestStored(ctx, t, st, org)
		if newest.IsZero() || points[org].Before(newest) {
			return false
		}
	}
	return true
}

// replayWith is replayAlerts with the configuration at cfgPath and the
// reference data in refDir.
func replayWith(t *testing.T, cfgPath, refDir string, values [][]byte) []alert.Alert {
	t.Helper()
	cfg, diags := config.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	opts, err := checkconfig.EngineOptions(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.LoadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	opts.Roster = reference.NewIndex(ref)
	eng, err := rules.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := replay.Run(context.Background(), bytes.NewReader(bytes.Join(values, []byte("\n"))), &out,
		replay.Options{Evaluator: eng, Decoder: event.NewDecoder(event.DecoderOptions{})}); err != nil {
		t.Fatal(err)
	}
	return slices.Clip(decodeAlerts(t, out.Bytes()))
}
