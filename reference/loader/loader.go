// Package loader keeps the reference data (CONTRACT §2) in force: it loads
// the reference directory, reloads it without a restart when its files
// change, refuses a reload that would take most of a table away, merges
// the kinds that come from reference topics on Kafka (reference/kafkaref),
// and snapshots every load to the store for evidence.
package loader

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/store"
)

// referenceFiles are the CONTRACT §2 files and the optional subjects.csv; a
// change to any reloads them all.
var referenceFiles = []string{reference.FileStaff, reference.FileRelationships, reference.FileShifts, reference.FileAbsences, reference.FileDevices,
	reference.FileSharingAgreements, reference.FileSubjects}

// A reload that would take most of a table away is far more often a file
// deleted, truncated or half copied than a real change, and the checks
// would judge every access against the hole: without shifts.csv a week of
// St Martins raised 155 alerts instead of 13; without relationships.csv
// no-business-need fell silent. So a reload (never the first load) is
// refused, and the data in force kept, when a kind that had rows has none
// now (its file missing or empty), or when a table of at least
// shrinkGuardMinRows rows loses more than maxReferenceShrink of them. A
// deliberate change that large is accepted by a restart.
const (
	maxReferenceShrink = 0.5
	// shrinkGuardMinRows: a smaller table (a handful of sharing agreements
	// or devices) may well halve in one honest edit; losing every row is
	// still refused.
	shrinkGuardMinRows = 10
)

// referenceTables are the kinds of CONTRACT §2 the reload guard compares.
var referenceTables = []struct {
	kind kafkaref.Kind
	file string
	rows func(*reference.Data) int
}{
	{kafkaref.KindStaff, reference.FileStaff, func(d *reference.Data) int { return len(d.Staff) }},
	{kafkaref.KindRelationships, reference.FileRelationships, func(d *reference.Data) int { return len(d.Relationships) }},
	{kafkaref.KindShifts, reference.FileShifts, func(d *reference.Data) int { return len(d.Shifts) }},
	{kafkaref.KindAbsences, reference.FileAbsences, func(d *reference.Data) int { return len(d.Absences) }},
	{kafkaref.KindDevices, reference.FileDevices, func(d *reference.Data) int { return len(d.Devices) }},
	{kafkaref.KindSharingAgreements, reference.FileSharingAgreements, func(d *reference.Data) int { return len(d.SharingAgreements) }},
}

// Loader loads the reference directory and reloads it, without a
// restart, when its files change. A directory that fails to load, or whose
// reload the guard above refuses, keeps the last good data in force and
// fails readiness until a reload succeeds.
type Loader struct {
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
	refused *prometheus.CounterVec
	lastOK  prometheus.Gauge
	okAt    time.Time // when the data in force loaded

	// problem, while set, is why the directory's data in force is not its
	// current content (a failed or refused reload): readiness fails with it.
	problemMu sync.Mutex
	problem   error

	// With reference topics on Kafka (reference/kafkaref), the kinds they
	// carry come from there and the rest from the directory.
	mu         sync.Mutex
	csv, kafka *reference.Data
	kafkaKinds []kafkaref.Kind
}

// Options configures a Loader. Apply is required; the rest have safe zero
// values.
type Options struct {
	// Dir is the reference directory (reference.dir).
	Dir string
	// Interval is how often the directory is checked for changes
	// (reference.reload_interval); zero or less: never reloaded.
	Interval time.Duration
	// Apply puts each load's data in force (the checks' roster).
	Apply func(rules.Roster)
	// Snapshots, when the store keeps them, gets every load with its time;
	// nil: none kept.
	Snapshots store.ReferenceSnapshots
	Logger    *slog.Logger
	// Registerer takes the loader's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// New builds a Loader; nothing is read until Load.
func New(o Options) *Loader {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := newLoader(o.Dir, o.Interval, o.Apply, o.Logger, o.Registerer)
	l.snapshots = o.Snapshots
	return l
}

// SetKafkaKinds names the kinds that come from reference topics on Kafka:
// they are no longer the directory's to lose.
func (l *Loader) SetKafkaKinds(kinds []kafkaref.Kind) {
	l.mu.Lock()
	l.kafkaKinds = kinds
	l.mu.Unlock()
}

func newLoader(dir string, interval time.Duration, apply func(rules.Roster), log *slog.Logger, reg prometheus.Registerer) *Loader {
	f := promauto.With(reg)
	l := &Loader{
		dir: dir, interval: interval, apply: apply, log: log,
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_reference_loads_total", Help: "Reference data loads, by outcome.",
		}, []string{"outcome"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "dpiawatch_reference_reloads_refused_total",
			Help: "Reference reloads refused, keeping the previous data, because a kind that had rows would have lost them all or most of them; by kind.",
		}, []string{"kind"}),
		lastOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "dpiawatch_reference_last_load_success_timestamp_seconds", Help: "When reference data last loaded successfully.",
		}),
		snapshotErrs: f.NewCounter(prometheus.CounterOpts{
			Name: "dpiawatch_reference_snapshot_save_failures_total", Help: "Failed attempts to save loaded reference data to the store (retried).",
		}),
	}
	l.reloads.WithLabelValues("success")
	l.reloads.WithLabelValues("failure")
	l.reloads.WithLabelValues("refused")
	for _, t := range referenceTables {
		l.refused.WithLabelValues(string(t.kind))
	}
	return l
}

// Ready fails while the last reload of the directory failed or was refused.
func (l *Loader) Ready() error {
	l.problemMu.Lock()
	defer l.problemMu.Unlock()
	return l.problem
}

func (l *Loader) setProblem(err error) {
	l.problemMu.Lock()
	l.problem = err
	l.problemMu.Unlock()
}

// errReloadRefused marks the error of a reload the guard refused (logged
// already, kind by kind).
var errReloadRefused = errors.New("reference reload refused")

// refusals says which kinds the reload from prev to next would empty or
// shrink sharply: one line each, with counts but never a row. Kinds that
// come from Kafka are not the directory's to lose.
func (l *Loader) refusals(prev, next *reference.Data) []string {
	var out []string
	for _, t := range referenceTables {
		if slices.Contains(l.kafkaKinds, t.kind) {
			continue
		}
		had, has := t.rows(prev), t.rows(next)
		var why string
		switch {
		case had == 0 || has >= had:
		case has == 0:
			why = "is empty"
			if _, err := os.Stat(filepath.Join(l.dir, t.file)); errors.Is(err, os.ErrNotExist) {
				why = "is missing"
			}
		case had >= shrinkGuardMinRows && float64(had-has) > maxReferenceShrink*float64(had):
			why = fmt.Sprintf("lost more than %.0f%% of its rows", maxReferenceShrink*100)
		}
		if why == "" {
			continue
		}
		l.refused.WithLabelValues(string(t.kind)).Inc()
		l.log.Warn("reference reload refused; keeping the previous data", "kind", string(t.kind), "file", t.file,
			"why", why, "rows_in_force", had, "rows_now", has)
		out = append(out, fmt.Sprintf("%s %s (%d rows in force, %d now)", t.file, why, had, has))
	}
	return out
}

// loadProblems summarises a failed load for readiness: the files with bad
// rows and how many, never a cell's value (the log has the details).
func loadProblems(err error) string {
	bad := map[string]int{}
	var other []string
	var walk func(error)
	walk = func(e error) {
		if pe, ok := e.(*reference.ParseError); ok {
			bad[pe.File]++
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		other = append(other, e.Error())
	}
	walk(err)
	var parts []string
	for _, f := range slices.Sorted(maps.Keys(bad)) {
		parts = append(parts, fmt.Sprintf("%d bad rows or cells in %s", bad[f], f))
	}
	return strings.Join(append(parts, other...), "; ")
}

// fingerprint summarises the files' names, sizes and modification times.
func (l *Loader) fingerprint() [32]byte {
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

// Load reads the directory now. A directory that does not exist is an
// error: a monitor with no reference data would judge every access wrongly.
func (l *Loader) Load(ctx context.Context) error {
	if l.dir == "" {
		l.log.Warn("no reference directory configured: every actor is judged by default working hours")
		return nil
	}
	l.mu.Lock()
	prev := l.csv // nil: the first load, which takes whatever is there
	l.mu.Unlock()
	keeping := func() string {
		return "keeping the data loaded at " + l.okAt.UTC().Format(time.RFC3339)
	}
	if _, err := os.Stat(l.dir); err != nil {
		err = fmt.Errorf("reference directory: %w", err)
		if prev != nil {
			l.setProblem(fmt.Errorf("reload failed at %s: %w; %s", time.Now().UTC().Format(time.RFC3339), err, keeping()))
		}
		return err
	}
	stamp := l.fingerprint()
	start := time.Now()
	d, err := reference.LoadDir(l.dir)
	if err != nil {
		l.reloads.WithLabelValues("failure").Inc()
		if prev != nil {
			l.setProblem(fmt.Errorf("reload failed at %s: %s (details in the log); %s", start.UTC().Format(time.RFC3339), loadProblems(err), keeping()))
		}
		return fmt.Errorf("load reference data from %s: %w", l.dir, err)
	}
	if prev != nil {
		if why := l.refusals(prev, d); len(why) > 0 {
			// These files are judged: not reloaded again until they change.
			l.stamp = stamp
			l.reloads.WithLabelValues("refused").Inc()
			l.setProblem(fmt.Errorf("reload refused at %s: %s; %s until a reload without this succeeds (restore the file, or restart to accept the change)",
				start.UTC().Format(time.RFC3339), strings.Join(why, "; "), keeping()))
			return fmt.Errorf("%w: %s", errReloadRefused, strings.Join(why, "; "))
		}
	}
	l.publish(ctx, d, nil)
	l.stamp = stamp
	l.okAt = time.Now()
	l.setProblem(nil)
	l.reloads.WithLabelValues("success").Inc()
	l.lastOK.SetToCurrentTime()
	l.log.Info("reference data loaded", "dir", l.dir, "staff", len(d.Staff), "relationships", len(d.Relationships),
		"shifts", len(d.Shifts), "absences", len(d.Absences), "devices", len(d.Devices), "subjects", len(d.Subjects), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ApplyKafka takes a snapshot of the reference topics (kafkaref.Options.Apply).
func (l *Loader) ApplyKafka(ctx context.Context, d *reference.Data) { l.publish(ctx, nil, d) }

// publish puts the newest directory and topic data in force, together, and
// snapshots the result to the store.
func (l *Loader) publish(ctx context.Context, csv, kafka *reference.Data) {
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
func (l *Loader) saveSnapshot(ctx context.Context) {
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

// Run reloads whenever the files change, until ctx ends.
func (l *Loader) Run(ctx context.Context) error {
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
			if err := l.Load(ctx); err != nil && !errors.Is(err, errReloadRefused) {
				l.log.Error("reference data reload failed; keeping the previous data", "err", err)
			}
		}
	}
}

// Topics builds the loader of reference data from compacted Kafka topics
// (reference.kafka), when configured; its kinds then come from Kafka, the
// rest from the reference directory. Nil when rk is off.
func (l *Loader) Topics(rk *config.ReferenceKafka, log *slog.Logger, reg prometheus.Registerer) (*kafkaref.Loader, error) {
	if rk == nil || !rk.Enabled {
		return nil, nil
	}
	topics := map[kafkaref.Kind]string{}
	for kind, topic := range rk.Topics.ByKind() {
		topics[kafkaref.Kind(kind)] = topic
	}
	o := kafkaref.Options{
		Brokers: rk.Brokers, ClientID: rk.ClientID, Topics: topics, PublishInterval: rk.PublishInterval.D(),
		TLS: ingest.TLS{Enabled: rk.TLS.Enabled, CAFile: rk.TLS.CAFile, CertFile: rk.TLS.CertFile, KeyFile: rk.TLS.KeyFile,
			ServerName: rk.TLS.ServerName, InsecureSkipVerify: rk.TLS.InsecureSkipVerify},
		Apply: l.ApplyKafka, Logger: log, Registerer: reg,
	}
	if rk.SASL.Mechanism != "" {
		pw, err := rk.SASL.Password.Resolve()
		if err != nil {
			return nil, fmt.Errorf("reference.kafka.sasl.password: %w", err)
		}
		o.SASL = ingest.SASL{Mechanism: rk.SASL.Mechanism, Username: rk.SASL.Username, Password: pw}
	}
	rt, err := kafkaref.New(o)
	if err != nil {
		return nil, fmt.Errorf("reference.kafka: %w", err)
	}
	l.SetKafkaKinds(rt.Kinds())
	return rt, nil
}
