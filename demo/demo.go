// Package demo runs the whole of dpiawatch on one machine with nothing to
// install: an in-process Kafka-protocol broker (kfake), the simulator
// publishing both seed organisations' access events continuously, and the
// daemon consuming them through the same kafka-go consumer, embedded store,
// checks and alert delivery as in production.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/producer"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/web"
)

// Topic is the demo's input topic.
const Topic = "access-events"

// Options configures the demo.
type Options struct {
	Config *config.Config // the shipped configuration; Kafka, store and reference are replaced
	// DataDir holds the store and the simulated reference data; empty: a
	// temporary directory removed at the end.
	DataDir string
	Rate    int    // events per second published, per organisation; default 300
	Days    int    // days simulated, ending today; default 28
	Listen  string // operations endpoint; default the configuration's
	Seed    int64
	Scale   float64 // the county's size relative to its DPIA; default 0.25
	// Events, when above 0, stops each organisation's publisher after that
	// many events; the daemon runs on, so the last alerts settle.
	Events int
	Logger *slog.Logger
	Stdout io.Writer // alerts and the banner
}

// Run runs the demo until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Config == nil {
		return errors.New("demo: no configuration")
	}
	if o.Rate <= 0 {
		o.Rate = 300
	}
	if o.Days <= 0 {
		o.Days = 28
	}
	if o.Scale <= 0 {
		o.Scale = 0.25
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "dpiawatch-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.DataDir = dir
	}
	log := o.Logger

	broker, err := StartBroker(3)
	if err != nil {
		return err
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()

	loc, _ := time.LoadLocation("Europe/London")
	today := time.Now().In(loc)
	from := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -o.Days)
	var sims []*simulate.Simulation
	var ref reference.Data
	for _, org := range []string{simulate.OrgStMartins, simulate.OrgWiltshire} {
		if _, ok := o.Config.Org(org); !ok {
			return fmt.Errorf("demo: the configuration has no org %q", org)
		}
		scale := 1.0
		if org == simulate.OrgWiltshire {
			scale = o.Scale
		}
		sim, err := simulate.New(simulate.Options{Org: org, From: from, Days: o.Days, Seed: o.Seed + 1, Scale: scale})
		if err != nil {
			return err
		}
		sims = append(sims, sim)
		appendData(&ref, sim.Reference())
	}
	refDir := filepath.Join(o.DataDir, "reference")
	if err := reference.WriteDir(refDir, &ref); err != nil {
		return err
	}

	cfg := *o.Config
	cfg.Reference.Dir = refDir
	if err := UseDataDir(&cfg, o.DataDir, true); err != nil {
		return err
	}
	cfg.Ingest.Kafka = &config.Kafka{
		Brokers: brokers, ClientID: "dpiawatch-demo", GroupID: "dpiawatch-demo",
		Topics:          []config.Topic{{Name: Topic, Format: config.FormatAuto}},
		DeadLetterTopic: "dpiawatch-dead-letter",
		Batch:           config.Batch{MaxEvents: 20000, MaxWait: config.Duration(200 * time.Millisecond)},
		QueueBatches:    4,
	}
	if o.Listen != "" {
		cfg.HTTP.Listen = o.Listen
	}
	cfg.Alerting.DashboardURL = "" // links point at the demo's own listener

	// The web UI with one demo account (DPO: sees everything), whose
	// password is new each run and printed once on the console.
	login, err := demoAccount(filepath.Join(o.DataDir, "accounts.yaml"))
	if err != nil {
		return err
	}
	cfg.Web.Enabled = true
	cfg.Web.AccountsFile = filepath.Join(o.DataDir, "accounts.yaml")
	cfg.Web.ExternalURL = ""

	var stored, alerts atomic.Int64
	d, err := daemon.New(ctx, daemon.Options{
		Config: &cfg, Logger: log, Stdout: o.Stdout,
		OnReady: func(url string) { Banner(o.Stdout, url, login, o) },
		OnBatch: func(b ingest.BatchInfo) {
			stored.Add(int64(b.Stored))
			alerts.Add(int64(b.Alerts))
		},
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var published atomic.Int64
	for _, sim := range sims {
		wg.Go(func() {
			if err := publish(ctx, sim, brokers, o.Rate, o.Events, &published); err != nil && ctx.Err() == nil {
				log.Error("demo publisher stopped", "err", err)
			}
		})
	}
	wg.Go(func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				log.Info("demo progress", "published", published.Load(), "stored", stored.Load(), "alert_updates", alerts.Load())
			}
		}
	})

	err = d.Run(ctx) // returns when ctx ends (Ctrl-C) or a component fails
	cancel()
	wg.Wait()
	return err
}

// Files a demo keeps in its data directory.
const (
	StoreFile        = "dpiawatch.db"
	EvidenceKeyFile  = "evidence.key" // and evidence.key.pub
	PseudonymKeyFile = "pseudonym.key"
)

// UseDataDir points cfg at a demo's data directory: its store, an evidence
// signing key (so that the DPO's export works out of the box, from the web
// UI or `dpiawatch evidence export --demo-dir`) and a pseudonym key, each
// unless cfg names its own. With create, missing keys are made and kept,
// so that packs and pseudonyms of successive runs agree; without, the
// directory must be a demo's.
func UseDataDir(cfg *config.Config, dir string, create bool) error {
	cfg.Store.ClickHouse = nil
	cfg.Store.Embedded.Path = filepath.Join(dir, StoreFile)
	if !create {
		if _, err := os.Stat(cfg.Store.Embedded.Path); err != nil {
			return fmt.Errorf("demo: %s holds no demo store: %w", dir, err)
		}
	}
	if cfg.Evidence.SigningKey.IsZero() {
		key := filepath.Join(dir, EvidenceKeyFile)
		if err := keep(key, create, func() error {
			priv, pub, err := evidence.GenerateKey()
			if err != nil {
				return err
			}
			if err := os.WriteFile(key+".pub", pub, 0o644); err != nil {
				return err
			}
			return os.WriteFile(key, priv, 0o600)
		}); err != nil {
			return fmt.Errorf("demo: evidence signing key: %w", err)
		}
		cfg.Evidence.SigningKey = config.Secret{File: key}
		if cfg.Evidence.PublicKey == "" {
			cfg.Evidence.PublicKey = key + ".pub"
		}
	}
	if cfg.Alerting.PseudonymKey.IsZero() && cfg.Web.PseudonymKey.IsZero() {
		// Pseudonyms for roles that may not see subject ids.
		key := filepath.Join(dir, PseudonymKeyFile)
		if err := keep(key, create, func() error { return os.WriteFile(key, []byte(randomToken(24)), 0o600) }); err != nil {
			return fmt.Errorf("demo: pseudonym key: %w", err)
		}
		cfg.Web.PseudonymKey = config.Secret{File: key}
	}
	return nil
}

// keep makes path with mk when it is missing and create is set.
func keep(path string, create bool, mk func() error) error {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist) || !create:
		return err
	}
	return mk()
}

// Banner is what the demo prints once the daemon listens.
func Banner(w io.Writer, url string, login Login, o Options) {
	fmt.Fprintf(w, `
dpiawatch demo
  in-process Kafka broker, simulator publishing st-martins and wiltshire-council access events
  (%d days of simulated activity, %d events/s per organisation, with injected misuse)
  web UI    %s/   sign in as %q with password %q (role dpo; new each run)
  metrics   %s/metrics
  health    %s/healthz   %s/readyz
  evidence  %s/evidence, or: dpiawatch evidence export --demo-dir %s --dpia wiltshire-childrens-cms --out PACK
            (signed with %s; verify with --public-key %s.pub)
Alerts appear below as the checks find them. Ctrl-C stops the demo cleanly.

`, o.Days, o.Rate, url, login.Username, login.Password, url, url, url, url, o.DataDir,
		filepath.Join(o.DataDir, EvidenceKeyFile), filepath.Join(o.DataDir, EvidenceKeyFile))
}

// Login is the demo's web UI account.
type Login struct{ Username, Password string }

// demoAccount puts the demo's DPO account, with a fresh random password,
// in the accounts file and returns the login. Every other account in the
// file — those added with `dpiawatch user add` to try the other roles —
// is kept, so that restarting the demo on the same data directory does
// not lock them out; a file that does not parse is an error rather than
// something to overwrite.
func demoAccount(path string) (Login, error) {
	l := Login{Username: "demo", Password: randomToken(12)}
	hash, err := web.HashPassword(l.Password, web.DefaultPasswordParams)
	if err != nil {
		return l, err
	}
	accts, err := web.LoadAccounts(path)
	if err != nil {
		return l, fmt.Errorf("demo: %w", err)
	}
	if err := accts.Put(web.Account{Username: l.Username, Role: "dpo", Password: hash}); err != nil {
		return l, err
	}
	return l, accts.Save(path)
}

// randomToken returns n random bytes as base32 text (no padding).
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand: never fails on Linux
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// StartBroker starts an in-process Kafka-protocol broker on a free loopback
// port, with the demo topic created.
func StartBroker(partitions int32) (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
		kfake.SeedTopics(partitions, Topic),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(1),
	)
	if err != nil {
		return nil, fmt.Errorf("start in-process broker: %w", err)
	}
	return c, nil
}

// errEnough stops a publisher that has published Options.Events.
var errEnough = errors.New("enough events published")

func publish(ctx context.Context, sim *simulate.Simulation, brokers []string, rate, limit int, published *atomic.Int64) error {
	p, err := producer.New(producer.Options{Brokers: brokers, Topic: Topic, Rate: rate})
	if err != nil {
		return err
	}
	defer p.Close(context.WithoutCancel(ctx))
	n := 0
	err = sim.Run(ctx, func(ev *event.Event, _ *simulate.Label) error {
		if limit > 0 && n >= limit {
			return errEnough
		}
		n++
		published.Add(1)
		return p.Publish(ctx, ev)
	})
	if errors.Is(err, errEnough) {
		return nil
	}
	return err
}

func appendData(dst *reference.Data, src *reference.Data) {
	dst.Staff = append(dst.Staff, src.Staff...)
	dst.Relationships = append(dst.Relationships, src.Relationships...)
	dst.Shifts = append(dst.Shifts, src.Shifts...)
	dst.Absences = append(dst.Absences, src.Absences...)
	dst.Devices = append(dst.Devices, src.Devices...)
	dst.SharingAgreements = append(dst.SharingAgreements, src.SharingAgreements...)
	dst.Subjects = append(dst.Subjects, src.Subjects...)
}
