package ingest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/kafkatest"
)

// readyDeadline bounds how long a consumer on a reachable broker may take
// to say it is ready: a group join and one offset fetch, a few seconds even
// on a loaded machine.
const readyDeadline = 10 * time.Second

// startConsumer runs cons until the test ends.
func startConsumer(t *testing.T, cons *Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("consumer did not stop within 60s")
		}
	})
}

// readyWithin polls cons.Ready until it holds or d passes, and returns how
// long it took and whether it held.
func readyWithin(cons *Consumer, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cons.Ready() {
		select {
		case <-deadline.C:
			return time.Since(start), false
		case <-tick.C:
		}
	}
	return time.Since(start), true
}

// TestKafkaConsumerReadyOnEmptyTopic: the consumer is ready once its group
// has joined and the committed positions are known, with nothing to fetch
// and nothing to commit (it used to wait for the first message).
func TestKafkaConsumerReadyOnEmptyTopic(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		for _, tc := range []struct {
			name       string
			partitions int
		}{
			{"one partition", 1},
			{"three partitions", 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				topic := c.NewTopic(t, tc.partitions)
				cons := newTestConsumer(t, c, topic, kafkatest.UniqueName(t, "g"), newMemProcessor(), nil)
				startConsumer(t, cons)
				took, ok := readyWithin(cons, readyDeadline)
				if !ok {
					t.Fatalf("not ready within %s on an empty topic", readyDeadline)
				}
				t.Logf("ready after %s", took.Round(time.Millisecond))
			})
		}
	})
}

// TestKafkaConsumerNotReadyWhileBrokersUnreachable: with no broker
// answering, the consumer does not call itself ready.
func TestKafkaConsumerNotReadyWhileBrokersUnreachable(t *testing.T) {
	// A port nothing listens on: connections are refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cons := newTestConsumer(t, &kafkatest.Cluster{Brokers: []string{addr}}, "t-unreachable", "g-unreachable", newMemProcessor(), nil)
	startConsumer(t, cons)
	// Several readiness measurements fail in this time; none may pass.
	if took, ok := readyWithin(cons, 8*readyPoll); ok {
		t.Fatalf("ready after %s with the brokers unreachable", took)
	}
}
