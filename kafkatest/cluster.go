// Package kafkatest starts Kafka brokers for tests: a real Apache Kafka 4.x
// node (KRaft, jars from Maven Central, see scripts/install-kafka) where Java
// and the jars are present, and the in-process kfake broker everywhere. Both
// speak the Kafka protocol on 127.0.0.1 only, so the code under test (the
// kafka-go consumer in package ingest) cannot tell them apart; running a
// suite against both catches what kfake models differently from Kafka.
//
// A JVM broker takes seconds to start, so a test binary shares one per kind:
//
//	func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }
//
//	func TestConsume(t *testing.T) {
//		kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
//			topic := c.NewTopic(t, 3)
//			...
//		})
//	}
//
// Tests sharing a broker keep apart by using unique topic and group names
// (NewTopic, UniqueName).
//
// Both kinds are configured alike: one node, replication 1, no topic
// auto-creation (tests create topics, as production does), groups form at
// once (group.initial.rebalance.delay.ms=0). kfake needs no special option
// for kafka-go consumer groups (JoinGroup/SyncGroup, OffsetCommit/Fetch
// are native), but it refuses session timeouts below 6 s (kfake's
// GroupMinSessionTimeout); kafka-go's default of 30 s is fine.
//
// Without Java or the jars (scripts/install-kafka), Apache tests are
// skipped, or fail when CI or DPIAWATCH_REQUIRE_APACHE_KAFKA=1 is set.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker kinds.
const (
	KindKFake  = "kfake"
	KindApache = "apache"
)

// Kinds returns every broker kind, cheapest first.
func Kinds() []string { return []string{KindKFake, KindApache} }

// MaxStartTimeout bounds how long an Apache broker may take to become ready.
const MaxStartTimeout = 90 * time.Second

// ErrNotInstalled reports that an Apache broker cannot be started on this
// machine (no Java or no jars); its message says how to install them.
var ErrNotInstalled = errors.New("apache kafka is not installed")

// Options configures New. The zero value starts a kfake broker whose
// auto-created topics have one partition.
type Options struct {
	// Kind is KindKFake (default) or KindApache.
	Kind string
	// Partitions is the broker's default partition count (num.partitions),
	// used when a topic is created without a count. Default 1.
	Partitions int
	// StartTimeout bounds an Apache broker's start; default and maximum
	// MaxStartTimeout.
	StartTimeout time.Duration
	// Dir holds an Apache broker's data and its log file (broker.log).
	// Default: a new temporary directory, removed by Close.
	Dir string
	// Logger receives start/stop events. Default: discard.
	Logger *slog.Logger
}

// Cluster is a running single-node Kafka cluster on loopback.
type Cluster struct {
	// Kind is KindKFake or KindApache.
	Kind string
	// Brokers are the bootstrap addresses, host:port on 127.0.0.1.
	Brokers []string
	// LogPath is the Apache broker's log file; empty for kfake.
	LogPath string
	// StartDuration is how long the broker took to become ready.
	StartDuration time.Duration

	fake      *kfake.Cluster
	proc      *brokerProcess
	transport *kafka.Transport
	client    *kafka.Client
	closeOnce sync.Once
	closeErr  error
}

// New starts a broker as opts say. ctx bounds the start only. For KindApache
// it returns an error wrapping ErrNotInstalled when Java or the jars are
// missing.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Partitions <= 0 {
		opts.Partitions = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StartTimeout <= 0 || opts.StartTimeout > MaxStartTimeout {
		opts.StartTimeout = MaxStartTimeout
	}
	start := time.Now()
	var (
		c   *Cluster
		err error
	)
	switch opts.Kind {
	case "", KindKFake:
		c, err = newKFake(opts)
	case KindApache:
		c, err = newApache(ctx, opts)
	default:
		return nil, fmt.Errorf("kafkatest: unknown broker kind %q (want %q or %q)", opts.Kind, KindKFake, KindApache)
	}
	if err != nil {
		return nil, err
	}
	c.StartDuration = time.Since(start)
	opts.Logger.Info("kafka broker ready", "kind", c.Kind, "brokers", c.Brokers, "took", c.StartDuration)
	return c, nil
}

func newKFake(opts Options) (*Cluster, error) {
	// One broker like the Apache node, so partition leadership and
	// coordinator lookups look the same; kfake listens on 127.0.0.1 only.
	fake, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(opts.Partitions),
	)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: start kfake: %w", err)
	}
	c := &Cluster{Kind: KindKFake, Brokers: fake.ListenAddrs(), fake: fake}
	c.initClient()
	return c, nil
}

func (c *Cluster) initClient() {
	// An own transport so Close can drop its pooled connections instead of
	// leaving them to kafka.DefaultTransport.
	c.transport = &kafka.Transport{}
	c.client = &kafka.Client{Addr: c.Addr(), Transport: c.transport, Timeout: 30 * time.Second}
}

// Addr returns the bootstrap addresses as a net.Addr for kafka-go.
func (c *Cluster) Addr() net.Addr { return kafka.TCP(c.Brokers...) }

// Client returns a kafka-go admin client bound to the cluster.
func (c *Cluster) Client() *kafka.Client { return c.client }

// KFake returns the in-process cluster (for fault injection with
// ControlKey), or nil for an Apache broker.
func (c *Cluster) KFake() *kfake.Cluster { return c.fake }

// Close stops the broker and, for Apache, kills its process group and
// removes its temporary directory. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		if c.transport != nil {
			c.transport.CloseIdleConnections()
		}
		if c.fake != nil {
			c.fake.Close()
		}
		if c.proc != nil {
			c.closeErr = c.proc.stop()
		}
	})
	return c.closeErr
}
