// Package bench measures dpiawatch end to end: simulated events go through a
// Kafka broker, the kafka-go consumer, the embedded store and the checks.
// It reports sustained events per second and the latency from produce to
// stored, checked and alerted (both happen in one durable unit per batch).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/demo"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/ingest"
	"github.com/dpiawatch/dpiawatch/producer"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/simulate"
)

// Options configures a benchmark run.
type Options struct {
	Config *config.Config
	// Events is how many events the throughput phase pushes; default 300,000.
	Events int
	// Rate is the paced produce rate of the latency phase; default 20,000/s.
	Rate int
	// LatencyFor is how long the latency phase publishes; default 15s.
	LatencyFor time.Duration
	// Brokers, when set, is an external Kafka to use instead of kfake.
	Brokers    []string
	Partitions int // default 3
	// BatchEvents is the consumer's batch size; default 20000.
	BatchEvents int
	// Repartition runs the device- and team-keyed checks on repartition
	// topics (ingest.kafka.repartition); the throughput counts the main
	// pipeline, which writes their outbox.
	Repartition bool
	DataDir     string
	Logger      *slog.Logger
	Progress    io.Writer
}

// Result is what a run measured.
type Result struct {
	Broker          string        `json:"broker"`
	Events          int           `json:"events"`
	ProduceSeconds  float64       `json:"produce_seconds"`
	ConsumeSeconds  float64       `json:"consume_seconds"`
	EventsPerSecond float64       `json:"events_per_second"`
	LatencyRate     int           `json:"latency_rate"`
	LatencyEvents   int           `json:"latency_events"`
	P50             time.Duration `json:"p50_ns"`
	P99             time.Duration `json:"p99_ns"`
	Max             time.Duration `json:"max_ns"`
	Alerts          int           `json:"alert_updates"`
}

func (r Result) String() string {
	return fmt.Sprintf(`broker                  %s
throughput phase        %d events produced in %.1fs, then consumed, stored and checked in %.2fs
sustained end to end    %.0f events/s
latency phase           %d events at %d events/s
produce → alert stored  p50 %s   p99 %s   max %s
alert versions written  %d`,
		r.Broker, r.Events, r.ProduceSeconds, r.ConsumeSeconds, r.EventsPerSecond,
		r.LatencyEvents, r.LatencyRate, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.Alerts)
}

var errEnough = errors.New("enough events")

// Run runs both phases.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Events <= 0 {
		o.Events = 300_000
	}
	if o.Rate <= 0 {
		o.Rate = 20_000
	}
	if o.LatencyFor <= 0 {
		o.LatencyFor = 15 * time.Second
	}
	if o.Partitions <= 0 {
		o.Partitions = 3
	}
	if o.BatchEvents <= 0 {
		o.BatchEvents = 20000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "dpiawatch-bench-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		o.DataDir = dir
	}
	res := Result{Broker: "kfake (in-process)", Events: o.Events, LatencyRate: o.Rate}
	brokers := o.Brokers
	if len(brokers) == 0 {
		c, err := demo.StartBroker(int32(o.Partitions))
		if err != nil {
			return res, err
		}
		defer c.Close()
		brokers = c.ListenAddrs()
	} else {
		res.Broker = fmt.Sprint(brokers)
	}

	// A county-sized organisation: its events are the expensive kind.
	loc, _ := time.LoadLocation("Europe/London")
	sim, err := simulate.New(simulate.Options{Org: simulate.OrgWiltshire, From: time.Date(2026, 3, 2, 0, 0, 0, 0, loc), Days: 60, Seed: 7, Scale: 1})
	if err != nil {
		return res, err
	}
	refDir := filepath.Join(o.DataDir, "reference")
	if err := reference.WriteDir(refDir, sim.Reference()); err != nil {
		return res, err
	}

	events := make(chan event.Event, 4096)
	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	go func() {
		defer close(events)
		_ = sim.Run(genCtx, func(ev *event.Event, _ *simulate.Label) error {
			select {
			case events <- *ev:
				return nil
			case <-genCtx.Done():
				return errEnough
			}
		})
	}()

	fmt.Fprintf(o.Progress, "producing %d events…\n", o.Events)
	start := time.Now()
	if err := produce(ctx, brokers, 0, events, o.Events); err != nil {
		return res, err
	}
	res.ProduceSeconds = time.Since(start).Seconds()

	cfg := *o.Config
	cfg.Reference.Dir = refDir
	cfg.Store.Embedded.Path = filepath.Join(o.DataDir, "dpiawatch.db")
	cfg.Alerting.Console.Enabled = false
	cfg.Alerting.JSONL.Path = ""
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Ingest.Kafka = &config.Kafka{
		Brokers: brokers, ClientID: "dpiawatch-bench", GroupID: fmt.Sprintf("dpiawatch-bench-%d", time.Now().UnixNano()),
		Topics:          []config.Topic{{Name: demo.Topic, Format: config.FormatAuto}},
		DeadLetterTopic: "dpiawatch-dead-letter",
		Batch:           config.Batch{MaxEvents: o.BatchEvents, MaxWait: config.DefaultBatchMaxWait},
		QueueBatches:    4,
		Repartition:     o.Repartition,
	}

	var (
		mu        sync.Mutex
		consumed  int
		latencies []time.Duration
		measuring bool
		caughtUp  = make(chan time.Time, 1)
	)
	d, err := daemon.New(ctx, daemon.Options{Config: &cfg, Logger: o.Logger, Stdout: io.Discard,
		OnBatch: func(b ingest.BatchInfo) {
			mu.Lock()
			defer mu.Unlock()
			consumed += len(b.Messages)
			res.Alerts += b.Alerts
			if consumed >= o.Events && !measuring {
				measuring = true
				caughtUp <- b.Committed
				return
			}
			if measuring {
				for i := range b.Messages {
					latencies = append(latencies, b.Committed.Sub(b.Messages[i].Time))
				}
			}
		}})
	if err != nil {
		return res, err
	}
	runCtx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	done := make(chan error, 1)
	fmt.Fprintln(o.Progress, "consuming…")
	start = time.Now()
	go func() { done <- d.Run(runCtx) }()
	select {
	case t := <-caughtUp:
		res.ConsumeSeconds = t.Sub(start).Seconds()
		res.EventsPerSecond = float64(o.Events) / res.ConsumeSeconds
	case err := <-done:
		return res, fmt.Errorf("daemon stopped early: %w", err)
	case <-ctx.Done():
		return res, ctx.Err()
	}

	fmt.Fprintf(o.Progress, "latency phase: %d events/s for %s…\n", o.Rate, o.LatencyFor)
	n := int(float64(o.Rate) * o.LatencyFor.Seconds())
	if err := produce(ctx, brokers, o.Rate, events, n); err != nil {
		return res, err
	}
	// Wait for the tail to be consumed.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(latencies)
		mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopDaemon()
	if err := <-done; err != nil {
		return res, err
	}
	mu.Lock()
	defer mu.Unlock()
	res.LatencyEvents = len(latencies)
	if len(latencies) > 0 {
		slices.Sort(latencies)
		res.P50 = latencies[len(latencies)/2]
		res.P99 = latencies[len(latencies)*99/100]
		res.Max = latencies[len(latencies)-1]
	}
	return res, nil
}

func produce(ctx context.Context, brokers []string, rate int, events <-chan event.Event, n int) error {
	p, err := producer.New(producer.Options{Brokers: brokers, Topic: demo.Topic, Rate: rate, BatchSize: 5000})
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		ev, ok := <-events
		if !ok {
			return fmt.Errorf("the simulation ran out after %d events", i)
		}
		if err := p.Publish(ctx, &ev); err != nil {
			return err
		}
	}
	return p.Close(ctx)
}
