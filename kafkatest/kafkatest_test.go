package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestMain(m *testing.M) { os.Exit(RunMain(m)) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// groupReader is configured as a consumer that commits explicitly, the way
// package ingest consumes.
func groupReader(c *Cluster, group, topic string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           c.Brokers,
		GroupID:           group,
		Topic:             topic,
		StartOffset:       kafka.FirstOffset,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second, // kfake's minimum
		RebalanceTimeout:  5 * time.Second,
		JoinGroupBackoff:  200 * time.Millisecond,
		CommitInterval:    0, // synchronous commits
	})
}

func keyed(prefix string, n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:     fmt.Appendf(nil, "actor-%d", i%7),
			Value:   fmt.Appendf(nil, "%s-%d", prefix, i),
			Headers: []kafka.Header{{Key: "seq", Value: fmt.Appendf(nil, "%d", i)}},
		}
	}
	return msgs
}

// consume fetches n messages in group, committing each after "processing",
// and returns their values.
func consume(ctx context.Context, t *testing.T, r *kafka.Reader, n int) map[string]int {
	t.Helper()
	seen := make(map[string]int, n)
	for range n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d messages: %v", len(seen), n, err)
		}
		seen[string(m.Value)]++
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit offset %d of partition %d: %v", m.Offset, m.Partition, err)
		}
	}
	return seen
}

func TestConsumerGroupRoundTrip(t *testing.T) {
	ForEachKind(t, func(t *testing.T, c *Cluster) {
		ctx := testContext(t)
		topic := c.NewTopic(t, 3)
		group := UniqueName(t, "g")
		const n = 60
		if err := c.Produce(ctx, topic, keyed("first", n)...); err != nil {
			t.Fatal(err)
		}
		offs, err := c.PartitionOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		used := 0
		for _, o := range offs {
			if o.End > o.First {
				used++
			}
		}
		if used < 2 {
			t.Errorf("keys spread over %d of 3 partitions (%v); murmur2 should use more", used, offs)
		}

		if got, err := c.CommittedOffsets(ctx, group, topic); err != nil || len(got) != 0 {
			t.Errorf("CommittedOffsets of a new group = %v, %v; want none", got, err)
		}
		if lag, err := c.Lag(ctx, group, topic); err != nil || lag != n {
			t.Errorf("Lag of a new group = %d, %v; want %d", lag, err, n)
		}

		start := time.Now()
		r := groupReader(c, group, topic)
		seen := consume(ctx, t, r, n)
		t.Logf("group join + %d fetch/commit took %v", n, time.Since(start).Round(time.Millisecond))
		if err := r.Close(); err != nil {
			t.Fatalf("close reader: %v", err)
		}
		for i := range n {
			if v := fmt.Sprintf("first-%d", i); seen[v] != 1 {
				t.Errorf("message %q seen %d times, want 1", v, seen[v])
			}
		}

		committed, err := c.CommittedOffsets(ctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p, o := range offs {
			want, ok := o.End, o.End > o.First
			if got, has := committed[p]; has != ok || (ok && got != want) {
				t.Errorf("partition %d: committed %d (present %v), want %d (present %v)", p, got, has, want, ok)
			}
		}
		if lag, err := c.Lag(ctx, group, topic); err != nil || lag != 0 {
			t.Errorf("Lag = %d, %v; want 0", lag, err)
		}

		// A new member of the group resumes after the commits: it sees
		// only what was produced since.
		if err := c.Produce(ctx, topic, keyed("second", 5)...); err != nil {
			t.Fatal(err)
		}
		if lag, err := c.Lag(ctx, group, topic); err != nil || lag != 5 {
			t.Errorf("Lag = %d, %v; want 5", lag, err)
		}
		r2 := groupReader(c, group, topic)
		defer r2.Close()
		seen = consume(ctx, t, r2, 5)
		for v := range seen {
			if !strings.HasPrefix(v, "second-") {
				t.Errorf("resumed group re-read %q", v)
			}
		}
		if len(seen) != 5 {
			t.Errorf("resumed group read %d distinct messages, want 5", len(seen))
		}
	})
}

func TestCreateTopic(t *testing.T) {
	ForEachKind(t, func(t *testing.T, c *Cluster) {
		ctx := testContext(t)
		topic := UniqueName(t, "t")
		if err := c.CreateTopic(ctx, topic, 3); err != nil {
			t.Fatal(err)
		}
		ps, err := c.Partitions(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ps) != "[0 1 2]" {
			t.Errorf("partitions = %v, want [0 1 2]", ps)
		}
		err = c.CreateTopic(ctx, topic, 3)
		if !errors.Is(err, kafka.TopicAlreadyExists) {
			t.Errorf("second CreateTopic = %v, want TopicAlreadyExists", err)
		}
		if err := c.CreateTopic(ctx, UniqueName(t, "t"), 0); err == nil {
			t.Error("CreateTopic with 0 partitions succeeded")
		}
		// Topics are never auto-created, on either kind.
		err = c.Produce(ctx, UniqueName(t, "missing"), kafka.Message{Value: []byte("x")})
		if err == nil {
			t.Error("produce to a missing topic succeeded")
		}
	})
}

func TestReadAll(t *testing.T) {
	ForEachKind(t, func(t *testing.T, c *Cluster) {
		ctx := testContext(t)
		topic := c.NewTopic(t, 2)
		if err := c.ProduceTo(ctx, topic, 1, kafka.Message{Key: []byte("k"), Value: []byte("p1-a")}, kafka.Message{Value: []byte("p1-b")}); err != nil {
			t.Fatal(err)
		}
		if err := c.ProduceTo(ctx, topic, 0, kafka.Message{Value: []byte("p0-a")}); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.ReadAll(ctx, topic, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, fmt.Sprintf("%d/%d=%s", m.Partition, m.Offset, m.Value))
		}
		if want := "0/0=p0-a 1/0=p1-a 1/1=p1-b"; strings.Join(got, " ") != want {
			t.Errorf("ReadAll = %v, want %s", got, want)
		}
		if string(msgs[1].Key) != "k" {
			t.Errorf("key = %q, want k", msgs[1].Key)
		}

		// Asking for more than the topic holds fails at the deadline.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if msgs, err := c.ReadAll(short, topic, 4); err == nil {
			t.Errorf("ReadAll(4) of 3 messages = %d messages, want error", len(msgs))
		}
		if err := c.ProduceTo(ctx, topic, 5, kafka.Message{Value: []byte("x")}); err == nil {
			t.Error("produce to partition 5 of 2 succeeded")
		}
	})
}

// TestPrivateBroker covers StartKFake and StartApache (a broker per test)
// and that Close leaves no process behind.
func TestPrivateBroker(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			c := Start(t, kind, 2)
			if c.Kind != kind || len(c.Brokers) != 1 || !strings.HasPrefix(c.Brokers[0], "127.0.0.1:") {
				t.Fatalf("cluster = %s %v", c.Kind, c.Brokers)
			}
			ctx := testContext(t)
			topic := c.NewTopic(t, 1)
			if err := c.Produce(ctx, topic, kafka.Message{Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ReadAll(ctx, topic, 1); err != nil {
				t.Fatal(err)
			}
			if kind != KindApache {
				return
			}
			t.Logf("apache broker started in %v", c.StartDuration)
			pid := c.proc.cmd.Process.Pid
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process group %d still exists after Close (kill 0: %v)", pid, err)
			}
		})
	}
}

func TestNotInstalled(t *testing.T) {
	t.Setenv("DPIAWATCH_ROOT", t.TempDir())
	t.Setenv("KAFKA_VERSION", "")
	if err := os.MkdirAll(filepath.Join(os.Getenv("DPIAWATCH_ROOT"), "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Options{Kind: KindApache})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), InstallCommand) {
		t.Fatalf("New without jars = %v, want ErrNotInstalled naming %s", err, InstallCommand)
	}

	for _, tc := range []struct {
		name, ci, require string
		wantFatal         bool
	}{
		{name: "local", wantFatal: false},
		{name: "ci", ci: "true", wantFatal: true},
		{name: "required", require: "1", wantFatal: true},
		{name: "required=0", require: "0", wantFatal: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ci != "" {
				t.Setenv("CI", tc.ci)
			} else {
				t.Setenv("CI", "")
				os.Unsetenv("CI")
			}
			t.Setenv(RequireApacheEnv, tc.require)
			tb := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() { // Skip and Fatal end the goroutine, as in a test
				defer close(done)
				unavailable(tb, err)
			}()
			<-done
			if tb.fatal != tc.wantFatal || tb.skipped == tc.wantFatal {
				t.Errorf("fatal=%v skipped=%v, want fatal=%v", tb.fatal, tb.skipped, tc.wantFatal)
			}
			if !strings.Contains(tb.msg, InstallCommand) {
				t.Errorf("message %q does not say how to install", tb.msg)
			}
		})
	}
}

// recordingTB records Skip and Fatal instead of acting on them.
type recordingTB struct {
	testing.TB
	fatal, skipped bool
	msg            string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName(t, "t"), UniqueName(t, "t")
	if a == b {
		t.Errorf("UniqueName repeated %q", a)
	}
	for _, n := range []string{a, b} {
		if nameUnsafe.MatchString(n) || len(n) > 249 {
			t.Errorf("%q is not a valid topic name", n)
		}
	}
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{{1, "d"}, {3, "b\nc\nd"}, {10, "a\nb\nc\nd"}} {
		if got := LogTail(path, tc.n); got != tc.want {
			t.Errorf("LogTail(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := LogTail(filepath.Join(t.TempDir(), "none"), 3); !strings.Contains(got, "cannot read") {
		t.Errorf("LogTail of missing file = %q", got)
	}
}

// BenchmarkStart measures how long a broker takes from start to ready
// (metadata and group coordinator answering), then stops it.
func BenchmarkStart(b *testing.B) {
	for _, kind := range Kinds() {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				c, err := New(context.Background(), Options{Kind: kind})
				if errors.Is(err, ErrNotInstalled) {
					unavailable(b, err)
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
