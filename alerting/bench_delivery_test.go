package alerting

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/alert"
)

// countingNotifier tells done once it has been given want alerts.
type countingNotifier struct {
	name string
	want int
	got  int
	done chan struct{}
}

func (c *countingNotifier) Name() string { return c.name }

func (c *countingNotifier) Notify(_ context.Context, alerts ...alert.Alert) (bool, error) {
	c.got += len(alerts)
	if c.got >= c.want {
		c.got -= c.want
		c.done <- struct{}{}
	}
	return false, nil
}

// BenchmarkPlainDelivery100 measures the plain path (no alerting.route):
// 100 new alert versions taken from the outbox, notified and marked.
func BenchmarkPlainDelivery100(b *testing.B) {
	ob := newMemOutbox()
	n := &countingNotifier{name: "console", want: 100, done: make(chan struct{}, 1)}
	d := NewDispatcher(DispatcherOptions{Outbox: ob, Notifiers: []Notifier{n}, PollInterval: time.Hour, Registerer: prometheus.NewRegistry()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	batch := make([]alert.Alert, 100)
	for i := range batch {
		batch[i] = testAlert(fmt.Sprintf("a-%03d", i))
	}
	for b.Loop() {
		for _, a := range batch {
			ob.put(a)
		}
		d.Wake()
		<-n.done
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkRoutedDelivery100 measures the routed pipeline over SQLite:
// 100 new alert versions routed, grouped, checked against silences,
// notified and marked.
func BenchmarkRoutedDelivery100(b *testing.B) {
	st := openStore(b, "")
	n := &countingNotifier{name: "r", want: 100, done: make(chan struct{}, 1)}
	tree, err := NewTree(&Route{Receiver: "r", GroupWait: time.Nanosecond, GroupInterval: time.Nanosecond, RepeatInterval: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPipeline(PipelineOptions{Store: st, Tree: tree, Notifiers: []Notifier{n}, DigestThreshold: -1, PollInterval: time.Hour, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Run(ctx) }()
	batch := make([]alert.Alert, 100)
	for i := range batch {
		batch[i] = testAlert(fmt.Sprintf("a-%03d", i))
	}
	for b.Loop() {
		for i := range batch {
			batch[i].LastSeen = batch[i].LastSeen.Add(time.Second) // a new version of each
			batch[i].Version = 0
		}
		putAlerts(b, st, batch...)
		p.Wake()
		<-n.done
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "alerts/s")
}
