package daemon

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
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

	// snapshots, when the store keeps them, gets every load with its time,
	// so that evidence can say what the reference data was when. A save
	// that fails is retried at the next tick, with the original load time.
	snapshots    store.ReferenceSnapshots
	unsaved      *reference.Data
	unsavedAt    time.Time
	snapshotErrs prometheus.Counter

	reloads *prometheus.CounterVec
	lastOK  prometheus.Gauge

	// With reference topics on Kafka (reference/kafkaref), the kinds they
	// carry come from there and the rest from the directory.
	mu         sync.Mutex
	csv, kafka *reference.Data
	kafkaKinds []kafkaref.Kind
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
		snapshotErrs: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_reference_snapshot_save_failures_total", Help: "Failed attempts to save loaded reference data to the store (retried).",
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
func (l *referenceLoader) load(ctx context.Context) error {
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
	l.publish(ctx, d, nil)
	l.stamp = stamp
	l.reloads.WithLabelValues("success").Inc()
	l.lastOK.SetToCurrentTime()
	l.log.Info("reference data loaded", "dir", l.dir, "staff", len(d.Staff), "relationships", len(d.Relationships),
		"shifts", len(d.Shifts), "absences", len(d.Absences), "devices", len(d.Devices), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// applyKafka takes a snapshot of the reference topics (kafkaref.Options.Apply).
func (l *referenceLoader) applyKafka(ctx context.Context, d *reference.Data) { l.publish(ctx, nil, d) }

// publish puts the newest directory and topic data in force, together, and
// snapshots the result to the store.
func (l *referenceLoader) publish(ctx context.Context, csv, kafka *reference.Data) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if csv != nil {
		l.csv = csv
	}
	if kafka != nil {
		l.kafka = kafka
	}
	all := l.csv
	if all == nil {
		all = &reference.Data{}
	}
	if l.kafka != nil {
		all = kafkaref.Overlay(all, l.kafka, l.kafkaKinds)
	}
	// Named by content, as its snapshot is, so that each alert can say
	// which data it was judged against. Unnamed if it cannot be hashed:
	// the checks still run, the alerts just cannot point at a snapshot.
	id, err := store.ReferenceID(all)
	if err != nil {
		l.log.Error("naming reference data failed; alerts will not name it", "err", err)
	}
	l.apply(reference.NewNamedIndex(all, id))
	if l.snapshots != nil {
		l.unsaved, l.unsavedAt = all, time.Now()
		l.saveSnapshot(ctx)
	}
}

// saveSnapshot saves the last load to the store, if not saved yet; l.mu held.
func (l *referenceLoader) saveSnapshot(ctx context.Context) {
	if l.unsaved == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := l.snapshots.SaveReference(sctx, l.unsavedAt, l.unsaved); err != nil {
		l.snapshotErrs.Inc()
		l.log.Error("saving reference snapshot failed; will retry", "err", err)
		return
	}
	l.unsaved = nil
}

// run reloads whenever the files change, until ctx ends.
func (l *referenceLoader) run(ctx context.Context) error {
	interval := l.interval
	if interval <= 0 && l.snapshots != nil {
		interval = time.Minute // no reloads, but an unsaved snapshot is retried
	}
	if l.dir == "" || interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.mu.Lock()
			l.saveSnapshot(ctx)
			l.mu.Unlock()
			if l.interval <= 0 || l.fingerprint() == l.stamp {
				continue
			}
			if err := l.load(ctx); err != nil {
				l.log.Error("reference data reload failed; keeping the previous data", "err", err)
			}
		}
	}
}
