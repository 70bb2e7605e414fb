// Package daemon runs dpiawatch: it wires the configured store, reference
// data, checks, Kafka consumer, alert delivery and the operations endpoints
// together and runs them as one group that stops as one (oklog/run), as
// Prometheus' main does.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alerting"
	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/opsserver"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
	"github.com/dpiawatch/dpiawatch/reference/loader"
	"github.com/dpiawatch/dpiawatch/retention"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/rules/heartbeat"
	"github.com/dpiawatch/dpiawatch/store"
	chstore "github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/stream"
	"github.com/dpiawatch/dpiawatch/version"
	"github.com/dpiawatch/dpiawatch/web"
)

// Options configures a Daemon. Config is required; everything else has a
// safe default.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Registry gathers every metric; nil: a new registry.
	Registry *prometheus.Registry
	// Stdout receives console alerts; nil: os.Stdout.
	Stdout io.Writer
	// Brokers, when set, replaces the configured Kafka brokers (the demo's
	// in-process broker).
	Brokers []string
	// OnBatch observes every committed batch (the benchmark).
	OnBatch func(ingest.BatchInfo)
	// OnReady is called once the operations endpoints listen, with their URL.
	OnReady func(url string)
}

// Daemon is one running dpiawatch.
type Daemon struct {
	o         Options
	log       *slog.Logger
	store     store.Store
	roster    atomic.Pointer[rosterBox] // the reference data every engine judges against
	stream    *stream.Stream
	delivery  delivery
	heartbeat *heartbeat.Heartbeat
	reference *loader.Loader
	refTopics *kafkaref.Loader // reference data from compacted topics; nil: none
	ops       *opsserver.Server
	ui        *web.Server    // nil when the web UI is off
	retention *retention.Job // nil: the store applies no retention
}

// New opens the store, loads reference data and check state, and builds the
// components. Nothing consumes until Run.
func New(ctx context.Context, o Options) (*Daemon, error) {
	cfg := o.Config
	if cfg == nil {
		return nil, errors.New("daemon: no configuration")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	version.Register(o.Registry)
	d := &Daemon{o: o, log: o.Logger}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()

	st, err := openStore(ctx, cfg, o.Logger, o.Registry)
	if err != nil {
		return nil, err
	}
	d.store = st
	if r, ok := st.(store.Retainer); ok {
		d.retention = retention.New(retention.Options{
			Store: r, Policy: retention.Policy(cfg), Interval: cfg.Store.Retention.Interval.D(),
			Logger: o.Logger.With("component", "retention"), Registerer: o.Registry,
		})
	}

	ro, err := checkconfig.EngineOptions(cfg, o.Logger, o.Registry)
	if err != nil {
		return nil, err
	}
	ro.Now = time.Now // guards the watermark against clocks far in the future
	if loader, ok := st.(store.EventLoader); ok {
		// Events waiting for a slower partition are stored already:
		// checkpoint their keys, read them back on restart.
		ro.LoadEvents = func(keys []event.Key) ([]event.Event, error) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
			defer cancel()
			return loader.EventsByKey(ctx, keys)
		}
	}
	setRoster := func(r rules.Roster) {
		d.roster.Store(&rosterBox{r}) // for engines created later
		if d.stream != nil {
			d.stream.SetRoster(r)
		}
	}
	snapshots, _ := st.(store.ReferenceSnapshots)
	d.reference = loader.New(loader.Options{Dir: cfg.Reference.Dir, Interval: cfg.Reference.ReloadInterval.D(), Apply: setRoster,
		Snapshots: snapshots, Logger: o.Logger, Registerer: o.Registry})
	if d.refTopics, err = d.reference.Topics(cfg.Reference.Kafka, o.Logger, o.Registry); err != nil {
		return nil, err
	}
	if err := d.reference.Load(ctx); err != nil {
		return nil, err
	}

	checks := []opsserver.Readiness{{Name: "store", Check: st.Ping}, {Name: "kafka", Check: func(context.Context) error {
		if d.stream == nil {
			return nil // built below, before anything runs
		}
		return d.stream.Ready()
	}}, {Name: "reference", Check: func(context.Context) error {
		if d.refTopics != nil && !d.refTopics.Ready() {
			return errors.New("reference topics not read to their end yet")
		}
		return d.reference.Ready()
	}}, {Name: "alerting", Check: func(ctx context.Context) error {
		if d.delivery == nil {
			return nil // built below, before anything runs
		}
		return d.delivery.Ready(ctx)
	}}}
	inForce := func() web.ReferenceIndex {
		// The checks' own data: the loader builds a *reference.Index.
		if b := d.roster.Load(); b != nil {
			if x, ok := b.Roster.(*reference.Index); ok {
				return x
			}
		}
		return nil
	}
	ui, err := newWebUI(ctx, cfg, st, inForce, o.Logger, o.Registry)
	if err != nil {
		return nil, err
	}
	if d.ops, err = opsserver.New(opsserver.Options{Listen: cfg.HTTP.Listen, Gatherer: o.Registry, Checks: checks, UI: ui}); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP.Listen, err)
	}
	if cfg.Alerting.DashboardURL == "" {
		// Links point at this daemon unless a public address is configured.
		acfg := *cfg
		acfg.Alerting.DashboardURL = d.ops.URL()
		cfg = &acfg
	}

	var api http.Handler
	if d.delivery, api, d.heartbeat, err = buildDelivery(ctx, cfg, st, o.Stdout, o.Logger, o.Registry); err != nil {
		return nil, err
	}
	if s, ok := ui.(*web.Server); ok {
		s.SetOnTriage(d.delivery.Wake) // a UI triage shows in Slack at once
		d.ui = s
	}
	if api != nil {
		d.ops.Handle("/api/v1/", api)
		d.ops.Handle("POST /slack/interactions", api)
	}

	counter, err := rules.NewAlertCounter(o.Registry)
	if err != nil {
		return nil, err
	}
	so := stream.Options{Store: st, Rules: ro, Wake: d.delivery.Wake, ConflictAlert: ConflictAlerter(cfg), AlertCounter: counter,
		IdleRelease: cfg.Checks.IdleRelease.D(), Lateness: cfg.Checks.Lateness.D(), Logger: o.Logger, Registerer: o.Registry,
		Roster: func() rules.Roster {
			if r := d.roster.Load(); r != nil {
				return r.Roster
			}
			return nil
		}}
	for _, org := range cfg.Orgs {
		so.Orgs = append(so.Orgs, org.ID)
	}
	so.Systems = cfg.Systems()
	if hb := d.heartbeat; hb != nil {
		so.Observe = func(events []event.Event, arrival time.Time) { observeFeeds(hb, events, arrival) }
	}
	if cfg.Ingest.Kafka != nil || len(o.Brokers) > 0 {
		io, err := IngestOptions(cfg, o.Brokers)
		if err != nil {
			return nil, err
		}
		io.Logger, io.OnBatch = o.Logger, o.OnBatch
		so.Ingest = &io
		so.Repartition = cfg.Ingest.Kafka != nil && cfg.Ingest.Kafka.Repartition
	}
	if d.stream, err = stream.New(ctx, so); err != nil {
		return nil, err
	}

	ok = true
	return d, nil
}

// URL is where /metrics, /healthz and /readyz are served.
func (d *Daemon) URL() string { return d.ops.URL() }

// Store is the daemon's store (read it; the daemon writes it).
func (d *Daemon) Store() store.Store { return d.store }

// Run runs every component until ctx is cancelled or one of them fails,
// then stops them all: the consumer drains and commits what it fetched,
// delivery stops, and the store is closed last.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.close()
	var g run.Group
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	}
	{
		// The consumers, the pipeline's idle release and the repartition
		// jobs (stream.Run stops them as one).
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.stream.Run(ctx) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.delivery.Run(ctx) }, func(error) { cancel() })
	}
	if d.refTopics != nil {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.refTopics.Run(ctx) }, func(error) { cancel() })
	}
	if d.heartbeat != nil {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.heartbeat.Run(ctx) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.reference.Run(ctx) }, func(error) { cancel() })
	}
	if d.ui != nil {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.ui.Run(ctx) }, func(error) { cancel() }) // reloads the accounts file
	}
	if d.retention != nil {
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.retention.Run(ctx) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { return d.ops.Run(ctx) }, func(error) { cancel() })
	}
	d.log.Info("dpiawatch running", "url", d.ops.URL(), "version", version.Get().Version)
	if d.o.OnReady != nil {
		d.o.OnReady(d.ops.URL())
	}
	err := g.Run()
	d.log.Info("dpiawatch stopped")
	return err
}

func (d *Daemon) close() {
	if d.ops != nil {
		d.ops.Stop()
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Warn("close store", "err", err)
		}
		d.store = nil
	}
}

// ConflictAlerter builds the feed-integrity alert of a conflicting duplicate
// (rules.ConflictAlert) under its org's DPIA; the daemon and replay share it
// so that live equals replay.
func ConflictAlerter(cfg *config.Config) func(store.Conflict) alert.Alert {
	return func(c store.Conflict) alert.Alert {
		dpiaID := ""
		if org, ok := cfg.Org(c.Event.Org); ok {
			dpiaID = org.DPIA
		}
		return rules.ConflictAlert(c, dpiaID)
	}
}

// EventTimeWindows is the event-time window of each org: maxAge and
// maxAhead (ingest.event_time), with maxAge shortened to the org's events
// retention (store.retention) where that is shorter: an event older than
// that would be deleted by the next retention run, after its alerts were
// raised. The daemon's ingest and replay share it, so that live equals
// replay.
func EventTimeWindows(cfg *config.Config, maxAge, maxAhead time.Duration) event.TimeWindows {
	w := event.TimeWindows{Default: event.TimeWindow{MaxAge: maxAge, MaxAhead: maxAhead}}
	for _, org := range cfg.Orgs {
		for _, r := range cfg.RetentionFor(org.ID) {
			if d := time.Duration(r.Days) * 24 * time.Hour; r.Class == "events" && r.Days > 0 && d < maxAge {
				if w.ByOrg == nil {
					w.ByOrg = map[string]event.TimeWindow{}
				}
				w.ByOrg[org.ID] = event.TimeWindow{MaxAge: d, MaxAhead: maxAhead,
					AgeBound: fmt.Sprintf("the org's events retention of %d days", r.Days)}
			}
		}
	}
	return w
}

// IngestOptions turns the Kafka configuration into the consumer's options;
// brokers, when set, replaces the configured ones.
func IngestOptions(cfg *config.Config, brokers []string) (ingest.Options, error) {
	k := cfg.Ingest.Kafka
	if k == nil {
		k = &config.Kafka{Topics: []config.Topic{{Name: "access-events", Format: config.FormatAuto}}}
	}
	o := ingest.Options{
		Brokers:         k.Brokers,
		GroupID:         k.GroupID,
		ClientID:        k.ClientID,
		DeadLetterTopic: k.DeadLetterTopic,
		MaxBatchEvents:  k.Batch.MaxEvents,
		MaxBatchWait:    k.Batch.MaxWait.D(),
		QueueBatches:    k.QueueBatches,
		SessionTimeout:  k.SessionTimeout.D(),
		MaxEventBytes:   cfg.Ingest.MaxEventBytes,
		EventTime:       EventTimeWindows(cfg, cfg.Ingest.EventTime.MaxAge.D(), cfg.Ingest.EventTime.MaxAhead.D()),
		KnownOrgs:       map[string]bool{},
		TLS: ingest.TLS{Enabled: k.TLS.Enabled, CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile, KeyFile: k.TLS.KeyFile,
			ServerName: k.TLS.ServerName, InsecureSkipVerify: k.TLS.InsecureSkipVerify},
	}
	if len(brokers) > 0 {
		o.Brokers = brokers
	}
	for _, org := range cfg.Orgs {
		o.KnownOrgs[org.ID] = true
	}
	for _, t := range k.Topics {
		f, err := event.ParseFormat(t.Format)
		if err != nil {
			return o, fmt.Errorf("topic %s: %w", t.Name, err)
		}
		o.Topics = append(o.Topics, ingest.Topic{Name: t.Name, Format: f, Org: t.Org, System: t.System, FHIR: t.FHIR.Options()})
	}
	if k.SASL.Mechanism != "" {
		pw, err := k.SASL.Password.Resolve()
		if err != nil {
			return o, fmt.Errorf("kafka sasl password: %w", err)
		}
		o.SASL = ingest.SASL{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: pw}
	}
	return o, nil
}

// Notifiers builds the configured alert receivers.
func Notifiers(cfg *config.Config, stdout io.Writer, log *slog.Logger) ([]alerting.Notifier, error) {
	a := cfg.Alerting
	var ns []alerting.Notifier
	pseudo, err := pseudonymizer(a)
	if err != nil {
		return nil, err
	}
	if a.Console.Enabled {
		c, err := alerting.NewConsole(alerting.ConsoleOptions{W: stdout, Format: a.Console.Format, DashboardURL: a.DashboardURL, Pseudonymizer: pseudo})
		if err != nil {
			return nil, err
		}
		ns = append(ns, c)
	}
	if a.JSONL.Path != "" {
		f, err := alerting.NewFile(alerting.FileOptions{Name: "jsonl", Path: a.JSONL.Path, KeepSubject: true})
		if err != nil {
			return nil, err
		}
		ns = append(ns, f)
	}
	if !a.Slack.Token.IsZero() {
		token, err := a.Slack.Token.Resolve()
		if err != nil {
			// A missing token means Slack is not wanted here; say so once.
			log.Info("slack not enabled: its token is not set", "source", a.Slack.Token.String())
		} else {
			s, err := alerting.NewSlack(alerting.SlackOptions{Token: token, Channel: a.Slack.Channel, APIURL: a.Slack.APIURL, DashboardURL: a.DashboardURL, Pseudonymizer: pseudo})
			if err != nil {
				return nil, err
			}
			ns = append(ns, s)
		}
	}
	return ns, nil
}

// OpenStore opens the configured store as the daemon does (migrating it),
// for commands that write to it outside the daemon (`dpiawatch bench store`).
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	return openStore(ctx, cfg, log, nil)
}

// openStore opens the configured store: ClickHouse when configured, else the
// embedded SQLite file.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (store.Store, error) {
	if ch := cfg.Store.ClickHouse; ch != nil {
		co, err := ClickHouseOptions(ch)
		if err != nil {
			return nil, fmt.Errorf("clickhouse store: %w", err)
		}
		co.Logger, co.Registerer = log, reg
		// Events carry their org's period for the TTL: the same policy
		// the retention job applies (store.retention).
		p := retention.Policy(cfg)
		co.DefaultRetention = p.Default[store.RetainEvents]
		co.Retention = map[string]time.Duration{}
		for org, ps := range p.Orgs {
			co.Retention[org] = ps[store.RetainEvents]
		}
		st, err := chstore.Open(ctx, co) // migrates unless store.clickhouse.migrate is manual
		if err != nil {
			return nil, fmt.Errorf("open clickhouse store: %w", err)
		}
		return st, nil
	}
	path := cfg.Store.Embedded.Path
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path, Synchronous: cfg.Store.Embedded.Synchronous, Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return st, nil
}

// rosterBox lets a Roster interface value live in an atomic.Pointer.
type rosterBox struct{ rules.Roster }
