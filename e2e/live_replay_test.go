package e2e

import (
	"context"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// Live equals replay. The live daemon's alerts must be exactly those of
// `dpiawatch replay` over the events it stored, with the same reference
// data, whatever Kafka did on the way: several partitions drifting hours
// apart in event time, a whole backlog read at once, a kill -9 in the
// middle. These tests produce a simulated organisation's events to a
// three-partition topic (keyed by actor, as producers do) in ways that make
// the partitions drift, run the real binary against it, and compare every
// check's alerts with the replay's, alert by alert.

// liveScenario is one way of feeding the topic.
type liveScenario struct {
	// skew holds partition heldBack this far behind the others in event
	// time for the first two thirds of the stream, then releases it.
	skew time.Duration
	// catchUp produces everything before the daemon starts.
	catchUp bool
	// kill SIGKILLs the daemon once while events flow, and restarts it.
	kill bool
}

const (
	livePartitions = 3
	heldBack       = 2
)

// TestKafkaLiveEqualsReplayHeldBackPartition holds one partition six hours
// of event time behind the other two, then releases it, with a kill -9 in
// the middle.
func TestKafkaLiveEqualsReplayHeldBackPartition(t *testing.T) {
	liveVersusReplay(t, liveScenario{skew: 6 * time.Hour, kill: true})
}

// TestKafkaLiveEqualsReplayCatchUp reads a whole backlog: the consumer takes
// the partitions at its own pace, days of event time apart, and is killed
// (SIGKILL: nothing drained) and started again part way. (A SIGTERM would
// drain everything already fetched: the whole backlog here.)
func TestKafkaLiveEqualsReplayCatchUp(t *testing.T) {
	liveVersusReplay(t, liveScenario{catchUp: true, kill: true})
}

// partitionOf is the partition of an actor's events: every event of an
// actor in one partition, as producers key them.
func partitionOf(key []byte) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % livePartitions)
}

func liveVersusReplay(t *testing.T, sc liveScenario) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		dir := t.TempDir()
		topic := c.NewTopic(t, livePartitions)
		cfgPath := writeConfig(t, dir, c.Brokers, topic, kafkatest.UniqueName(t, "g"))
		// Idle release as a deployment would set it: far longer than any
		// pause between two of a partition's messages here, so that only
		// the watermark, never a timeout, decides when events are judged.
		setConfig(t, cfgPath, "  idle_release: 500ms\n", "  idle_release: 5s\n")
		values, keys, ids := simulatedWith(t, dir, 8, simulate.InjectionRates{OutOfHours: 3, UnlockedSession: 4, BulkAccess: 2})
		exp := replayAlerts(t, cfgPath, values)
		requireEveryKind(t, exp)

		order := produceOrder(t, values, keys, sc.skew)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		produce := func(pace time.Duration) error {
			const step = 60
			for lo := 0; lo < len(order); lo += step {
				byPart := map[int][]kafka.Message{}
				for _, i := range order[lo:min(lo+step, len(order))] {
					p := partitionOf(keys[i])
					byPart[p] = append(byPart[p], kafka.Message{Key: keys[i], Value: values[i]})
				}
				for p := range livePartitions {
					if err := c.ProduceTo(ctx, topic, p, byPart[p]...); err != nil {
						return err
					}
				}
				if pace > 0 {
					time.Sleep(pace) // a steady stream: the load under test, not a wait
				}
			}
			return nil
		}
		produced := make(chan error, 1)
		if sc.catchUp {
			produced <- produce(0)
		} else {
			go func() { produced <- produce(100 * time.Millisecond) }()
		}

		st := openStore(t, filepath.Join(dir, "dpiawatch.db"))
		count := func() int64 {
			n, err := st.CountEvents(ctx, store.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		d := startDaemon(t, cfgPath)
		if sc.kill {
			at := killAt(killSeed(t), len(ids))
			t.Logf("kill -9 once %d of %d events are stored", at, len(ids))
			if !testwait.Until(2*time.Minute, func() bool { return count() >= at }) {
				t.Fatalf("%d of %d events stored after 2 minutes:\n%s", count(), len(ids), d.stderr.String())
			}
			if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = d.cmd.Wait()
			t.Logf("%d of %d events stored when it was killed", count(), len(ids))
			d = startDaemon(t, cfgPath)
		}
		if err := <-produced; err != nil {
			t.Fatal(err)
		}
		if !testwait.Until(2*time.Minute, func() bool { return count() >= int64(len(ids)) }) {
			t.Fatalf("%d of %d events stored after 2 minutes:\n%s", count(), len(ids), d.stderr.String())
		}
		waitAlerts(ctx, t, st, 45*time.Second, exp, nil)
		d.waitRunning(t)
		logFeedMetrics(t, d)
		d.stop(t)
		assertStoredOnce(ctx, t, st, ids)
		got, err := st.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		compareAlerts(t, got, exp)
		compareExplanations(t, got, exp)
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.stderr.String())
		}
	})
}

// logFeedMetrics logs what the daemon says of late events and its input
// partitions: a failure is easier to read with them.
// No event is late in these scenarios (each partition is in event order):
// any counted late means the daemon judged past a partition it had not
// heard from.
func logFeedMetrics(t *testing.T, d *daemonProc) {
	t.Helper()
	m := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		return
	}
	resp, err := http.Get(m[1] + "/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "dpiawatch_rules_late_events_total") || strings.HasPrefix(line, "dpiawatch_feed_") {
			t.Log(line)
		}
		if strings.HasPrefix(line, "dpiawatch_rules_late_events_total ") && line != "dpiawatch_rules_late_events_total 0" {
			t.Errorf("events judged late: %s", line)
		}
	}
}

// produceOrder is the order to produce events in: event time, with the
// held-back partition's events delayed by skew until two thirds of the
// stream, after which it catches up. Each partition's own events stay in
// event order, as a producer writes them.
func produceOrder(t *testing.T, values, keys [][]byte, skew time.Duration) []int {
	t.Helper()
	times := make([]time.Time, len(values))
	dec := event.NewDecoder(event.DecoderOptions{})
	for i, v := range values {
		var ev event.Event
		if err := dec.Decode(v, &ev); err != nil {
			t.Fatal(err)
		}
		times[i] = ev.Time
	}
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	if skew == 0 {
		return order
	}
	// The held-back partition's events stay in order: skew behind until
	// the others reach release, then what it held back in one burst.
	release := times[len(times)*2/3]
	at := func(i int) time.Time {
		if partitionOf(keys[i]) != heldBack {
			return times[i]
		}
		if t := times[i].Add(skew); !t.After(release) {
			return t
		}
		if times[i].Before(release) {
			return release
		}
		return times[i]
	}
	slices.SortStableFunc(order, func(a, b int) int { return at(a).Compare(at(b)) })
	return order
}

// requireEveryKind fails unless the replay raised alerts of the device-
// and team-keyed patterns, which partitions drifting apart put at risk:
// without them the comparison would prove little.
func requireEveryKind(t *testing.T, exp []alert.Alert) {
	t.Helper()
	byCheck := map[string]int{}
	for _, a := range exp {
		k := a.Check
		if a.Pattern == "device-handover" {
			k += "/" + a.Pattern
		}
		byCheck[k]++
	}
	t.Logf("the replay raised %d alerts: %v", len(exp), byCheck)
	for _, k := range []string{"unlocked-session/device-handover", "bulk-access"} {
		if byCheck[k] == 0 {
			t.Fatalf("the replay raised no %s alert: the test would prove nothing", k)
		}
	}
}

// compareExplanations checks that each alert's "why" is the replay's: the
// sentence a manager reads must not depend on how Kafka delivered.
func compareExplanations(t *testing.T, got, exp []alert.Alert) {
	t.Helper()
	want := map[string]string{}
	for _, a := range exp {
		want[a.ID] = a.Explanation
	}
	for _, a := range got {
		if w, ok := want[a.ID]; ok && w != a.Explanation {
			t.Errorf("alert %s (%s/%s): explanation %q, the replay's %q", a.ID, a.Check, a.Pattern, a.Explanation, w)
		}
	}
}

// setConfig replaces old with new in the configuration file at path.
func setConfig(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("configuration has no %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}
