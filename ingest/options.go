// Package ingest consumes access events from Kafka with segmentio/kafka-go and
// hands them, in batches, to a Processor that stores and checks them.
//
// The loop follows Grafana Tempo's generator: fetch → bounded channel of
// batches → decode → apply → commit. Offsets are committed only after the
// Processor has made a batch durable, and a batch that fails is retried (with
// backoff) until it succeeds or the consumer stops: a later batch can never
// commit past a failed one. Messages that are not valid events go to a
// dead-letter topic, with the reason in headers, before their offsets are
// committed.
package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/dpiawatch/dpiawatch/backoff"
	"github.com/dpiawatch/dpiawatch/event"
)

// Topic is one topic to consume and how to decode it.
type Topic struct {
	Name   string
	Format event.Format
	// Org and System label FHIR AuditEvents, which carry neither.
	Org, System string
	// FHIR maps the topic's AuditEvents (actor sources, identifier
	// systems); it must pass event.FHIROptions.Validate.
	FHIR event.FHIROptions
}

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled            bool
	CAFile             string
	CertFile, KeyFile  string
	ServerName         string
	InsecureSkipVerify bool
}

// SASL configures SASL authentication. Mechanism is "PLAIN",
// "SCRAM-SHA-256" or "SCRAM-SHA-512"; empty disables SASL.
type SASL struct {
	Mechanism string
	Username  string
	Password  string // already resolved from the environment or a file
}

// Options configures a Consumer. The zero value of every field but Brokers,
// Topics and Processor is a safe default.
type Options struct {
	Brokers  []string
	GroupID  string // default "dpiawatch"
	ClientID string // default "dpiawatch"
	Topics   []Topic
	// DeadLetterTopic receives invalid messages; default "dpiawatch-dead-letter".
	DeadLetterTopic string

	MaxBatchEvents int           // default 20000
	MaxBatchWait   time.Duration // default 250ms
	QueueBatches   int           // batches buffered between fetch and apply; default 4
	MaxEventBytes  int           // default 64 KiB
	DecodeWorkers  int           // default 2
	// KnownOrgs, when set, dead-letters events of any other org: with no
	// DPIA configured for them there is nothing to check them against.
	KnownOrgs map[string]bool
	// EventTime dead-letters events whose time is outside their org's
	// window around Now (reason event_time_out_of_range); a zero bound of
	// EventTime.Default is the event package's default
	// (event.DefaultMaxAge, event.DefaultMaxAhead).
	EventTime event.TimeWindows
	// Now is the clock EventTime is measured from; default time.Now.
	Now func() time.Time
	// MarkHeader, when set, names a header that makes a message a control
	// mark, not an event: it is neither decoded nor dead-lettered, but
	// handed to a BatchProcessor with its batch (Batch.Marks) and committed with
	// it. The daemon's repartition topics carry their inputs' event-time
	// progress this way.
	MarkHeader string

	TLS  TLS
	SASL SASL

	// RetryMin and RetryMax bound the wait between attempts of a failing
	// batch (package backoff: exponential, full jitter).
	RetryMin, RetryMax time.Duration // defaults 100ms, 30s
	// SessionTimeout is how long the group waits for a silent member
	// before giving its partitions to another; default 30s. A member that
	// died without leaving holds its partitions that long.
	SessionTimeout time.Duration
	// LagInterval is how often consumer lag is measured; default 15s.
	LagInterval time.Duration
	// DrainTimeout bounds how long a stopping consumer keeps applying and
	// committing what it already fetched; default 30s.
	DrainTimeout time.Duration

	Processor  Processor
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// OnBatch, if set, is called after each batch is committed (benchmarks).
	OnBatch func(BatchInfo)
}

// BatchInfo describes a committed batch.
type BatchInfo struct {
	Messages   []kafka.Message
	Stored     int
	Duplicates int
	DeadLetter int
	Alerts     int
	Committed  time.Time
}

func (o *Options) setDefaults() error {
	if len(o.Brokers) == 0 {
		return errors.New("ingest: no brokers")
	}
	if len(o.Topics) == 0 {
		return errors.New("ingest: no topics")
	}
	if o.Processor == nil {
		return errors.New("ingest: no processor")
	}
	if o.GroupID == "" {
		o.GroupID = "dpiawatch"
	}
	if o.ClientID == "" {
		o.ClientID = "dpiawatch"
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = "dpiawatch-dead-letter"
	}
	if o.MaxBatchEvents <= 0 {
		o.MaxBatchEvents = 20000
	}
	if o.MaxBatchWait <= 0 {
		o.MaxBatchWait = 250 * time.Millisecond
	}
	if o.QueueBatches <= 0 {
		o.QueueBatches = 4
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = 64 << 10
	}
	if o.DecodeWorkers <= 0 {
		o.DecodeWorkers = 2
	}
	if o.EventTime.Default.MaxAge <= 0 {
		o.EventTime.Default.MaxAge = event.DefaultMaxAge
	}
	if o.EventTime.Default.MaxAhead <= 0 {
		o.EventTime.Default.MaxAhead = event.DefaultMaxAhead
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 30 * time.Second
	}
	if o.LagInterval <= 0 {
		o.LagInterval = 15 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, t := range o.Topics {
		if seen[t.Name] {
			return fmt.Errorf("ingest: topic %q listed twice", t.Name)
		}
		seen[t.Name] = true
		if t.Name == o.DeadLetterTopic {
			return fmt.Errorf("ingest: topic %q is also the dead-letter topic", t.Name)
		}
		if err := t.FHIR.Validate(); err != nil {
			return fmt.Errorf("ingest: topic %q: fhir: %w", t.Name, err)
		}
	}
	return nil
}

// Config builds the TLS configuration, or nil when TLS is off. Every Kafka
// client of dpiawatch (consumer, dead letters, reference topics) uses it.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // operator's explicit choice
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca_file %s: no PEM certificates", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// SASLMechanism builds the SASL mechanism, or nil when SASL is off.
func (s SASL) SASLMechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	default:
		return nil, fmt.Errorf("kafka sasl: unknown mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", s.Mechanism)
	}
}

// retryBackoff is the wait policy of every retry loop of the consumer.
func (o Options) retryBackoff() backoff.Policy {
	return backoff.Policy{Initial: o.RetryMin, Max: o.RetryMax}
}
