package daemon

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
)

// referenceFiles are the CONTRACT §2 files; a change to any reloads them all.
var referenceFiles = []string{"staff.csv", "relationships.csv", "shifts.csv", "absences.csv", "devices.csv", "sharing_agreements.csv"}

// referenceLoader loads the reference directory and reloads it, without a
// restart, when its files change. A directory that fails to load keeps the
// last good data in force.
type referenceLoader struct {
	dir      string
	interval time.Duration
	apply    func(rules.Roster)
	log      *slog.Logger
	stamp    [32]byte

	reloads *prometheus.CounterVec
	lastOK  prometheus.Gauge
}

func newReferenceLoader(dir string, interval time.Duration, apply func(rules.Roster), log *slog.Logger, reg prometheus.Registerer) *referenceLoader {
	f := promauto.With(reg)
	l := &referenceLoader{
		dir: dir, interval: interval, apply: apply, log: log,
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_reference_loads_total", Help: "Reference data loads, by outcome.",
		}, []string{"outcome"}),
		lastOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_reference_last_load_success_timestamp_seconds", Help: "When reference data last loaded successfully.",
		}),
	}
	l.reloads.WithLabelValues("success")
	l.reloads.WithLabelValues("failure")
	return l
}

// fingerprint summarises the files' names, sizes and modification times.
func (l *referenceLoader) fingerprint() [32]byte {
	h := sha256.New()
	for _, name := range referenceFiles {
		fi, err := os.Stat(filepath.Join(l.dir, name))
		if err != nil {
			fmt.Fprintf(h, "%s:absent;", name)
			continue
		}
		fmt.Fprintf(h, "%s:%d:%d;", name, fi.Size(), fi.ModTime().UnixNano())
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// load reads the directory now. A directory that does not exist is an
// error: a monitor with no reference data would judge every access wrongly.
func (l *referenceLoader) load() error {
	if l.dir == "" {
		l.log.Warn("no reference directory configured: every actor is judged by default working hours")
		return nil
	}
	if _, err := os.Stat(l.dir); err != nil {
		return fmt.Errorf("reference directory: %w", err)
	}
	stamp := l.fingerprint()
	start := time.Now()
	d, err := reference.LoadDir(l.dir)
	if err != nil {
		l.reloads.WithLabelValues("failure").Inc()
		return fmt.Errorf("load reference data from %s: %w", l.dir, err)
	}
	l.apply(reference.NewIndex(d))
	l.stamp = stamp
	l.reloads.WithLabelValues("success").Inc()
	l.lastOK.SetToCurrentTime()
	l.log.Info("reference data loaded", "dir", l.dir, "staff", len(d.Staff), "relationships", len(d.Relationships),
		"shifts", len(d.Shifts), "absences", len(d.Absences), "devices", len(d.Devices), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// run reloads whenever the files change, until ctx ends.
func (l *referenceLoader) run(ctx context.Context) error {
	if l.dir == "" || l.interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if l.fingerprint() == l.stamp {
				continue
			}
			if err := l.load(); err != nil {
				l.log.Error("reference data reload failed; keeping the previous data", "err", err)
			}
		}
	}
}
