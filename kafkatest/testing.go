package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RequireApacheEnv, when "1", makes a missing Apache install fail tests
// instead of skipping them; so does a set CI variable.
const RequireApacheEnv = "DPIAWATCH_REQUIRE_APACHE_KAFKA"

// apacheRequired reports whether a missing Apache broker is a failure.
func apacheRequired() bool {
	_, ci := os.LookupEnv("CI")
	return ci || os.Getenv(RequireApacheEnv) == "1"
}

// unavailable skips or fails tb for an Apache broker that is not installed.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	msg := fmt.Sprintf("%v\ninstall with: %s", err, InstallCommand)
	if apacheRequired() {
		tb.Fatalf("kafkatest: Apache Kafka required (CI or %s=1): %s", RequireApacheEnv, msg)
	}
	tb.Skipf("kafkatest: skipping Apache Kafka test: %s", msg)
}

// StartKFake starts an in-process kfake broker for tb, stopped at cleanup.
func StartKFake(tb testing.TB, partitions int) *Cluster {
	tb.Helper()
	c, err := New(context.Background(), Options{Kind: KindKFake, Partitions: partitions})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// StartApache starts an Apache Kafka broker for tb in a tb.TempDir, killed
// at cleanup; the broker log's tail is printed if tb failed. Without Java
// or jars it skips tb, or fails it under CI or DPIAWATCH_REQUIRE_APACHE_KAFKA=1.
func StartApache(tb testing.TB, partitions int) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), MaxStartTimeout)
	defer cancel()
	c, err := New(ctx, Options{Kind: KindApache, Partitions: partitions, Dir: tb.TempDir()})
	if errors.Is(err, ErrNotInstalled) {
		unavailable(tb, err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("kafkatest: apache broker %s ready in %v", c.Brokers[0], c.StartDuration.Round(time.Millisecond))
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("kafkatest: stop broker: %v", err)
		}
	})
	tb.Cleanup(func() { c.logTailOnFailure(tb) })
	return c
}

// Start starts a broker of the given kind for tb (StartKFake or StartApache).
func Start(tb testing.TB, kind string, partitions int) *Cluster {
	tb.Helper()
	if kind == KindApache {
		return StartApache(tb, partitions)
	}
	if kind != KindKFake {
		tb.Fatalf("kafkatest: unknown broker kind %q", kind)
	}
	return StartKFake(tb, partitions)
}

func (c *Cluster) logTailOnFailure(tb testing.TB) {
	if tb.Failed() && c.LogPath != "" {
		tb.Logf("kafkatest: tail of %s:\n%s", c.LogPath, LogTail(c.LogPath, 60))
	}
}

// shared holds the brokers a test binary shares, one per kind.
var shared = struct {
	sync.Mutex
	main     bool // RunMain is running the tests
	clusters map[string]*sharedCluster
}{clusters: map[string]*sharedCluster{}}

type sharedCluster struct {
	c    *Cluster
	err  error // a failed start is remembered so later tests fail fast
	refs int
}

// Shared returns the broker of kind shared by the test binary, starting it
// on first use, and a release function; the broker stops when every caller
// has released it. Meant for TestMain. A missing Apache install returns an
// error wrapping ErrNotInstalled.
func Shared(kind string) (*Cluster, func(), error) {
	shared.Lock()
	defer shared.Unlock()
	sc := shared.clusters[kind]
	if sc == nil {
		sc = &sharedCluster{}
		ctx, cancel := context.WithTimeout(context.Background(), MaxStartTimeout)
		// Broker defaults of one partition: tests name their own counts.
		sc.c, sc.err = New(ctx, Options{Kind: kind})
		cancel()
		shared.clusters[kind] = sc
	}
	if sc.err != nil {
		return nil, nil, sc.err
	}
	sc.refs++
	var once sync.Once
	release := func() {
		once.Do(func() {
			shared.Lock()
			defer shared.Unlock()
			if sc.refs--; sc.refs == 0 {
				_ = sc.c.Close()
				delete(shared.clusters, kind)
			}
		})
	}
	return sc.c, release, nil
}

// RunMain runs the tests of m and then stops the brokers that Get and
// ForEachKind started. Call it from TestMain: os.Exit(kafkatest.RunMain(m)).
func RunMain(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	defer func() {
		shared.Lock()
		defer shared.Unlock()
		shared.main = false
		for kind, sc := range shared.clusters {
			if sc.c != nil {
				_ = sc.c.Close()
			}
			delete(shared.clusters, kind)
		}
	}()
	return m.Run()
}

// Get returns the binary's shared broker of kind, starting it on first
// use; RunMain stops it. A missing Apache install skips tb (fails it under
// CI or DPIAWATCH_REQUIRE_APACHE_KAFKA=1). The broker log's tail is printed
// if tb fails.
func Get(tb testing.TB, kind string) *Cluster {
	tb.Helper()
	shared.Lock()
	inMain := shared.main
	shared.Unlock()
	if !inMain {
		tb.Fatal("kafkatest: Get needs TestMain to call kafkatest.RunMain (it stops the shared brokers)")
	}
	c, _, err := Shared(kind) // released by RunMain
	if errors.Is(err, ErrNotInstalled) {
		unavailable(tb, err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.logTailOnFailure(tb) })
	return c
}

// ForEachKind runs fn as a subtest per broker kind, on the shared brokers
// (see Get).
func ForEachKind(t *testing.T, fn func(t *testing.T, c *Cluster)) {
	t.Helper()
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) { fn(t, Get(t, kind)) })
	}
}

var (
	nameSeq    atomic.Uint64
	nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)
)

// UniqueName returns a Kafka-safe name (topic or group id) derived from
// tb's name and unique within the process, so tests can share a broker.
func UniqueName(tb testing.TB, prefix string) string {
	base := strings.Trim(nameUnsafe.ReplaceAllString(tb.Name(), "_"), "_.")
	if len(base) > 180 {
		base = base[len(base)-180:]
	}
	return fmt.Sprintf("%s-%s-%d", prefix, base, nameSeq.Add(1))
}

// NewTopic creates a topic with a unique name and the given partitions for
// tb and returns its name.
func (c *Cluster) NewTopic(tb testing.TB, partitions int) string {
	tb.Helper()
	name := UniqueName(tb, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.CreateTopic(ctx, name, partitions); err != nil {
		tb.Fatal(err)
	}
	return name
}
