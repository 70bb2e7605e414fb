package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/alert"
	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/testlog"
	"github.com/dpiawatch/dpiawatch/testwait"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dpiawatch-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "dpiawatch")
	build := exec.Command("go", "build", "-o", binary, "../cmd/dpiawatch")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build dpiawatch:", err)
		os.Exit(1)
	}
	code := kafkatest.RunMain(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoFile is the absolute path of a file in this repository.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeConfig writes a daemon configuration for the test broker and topic.
func writeConfig(t *testing.T, dir string, brokers []string, topic, group string) string {
	return writeConfigAlerting(t, dir, brokers, topic, group, "  console: {enabled: true, format: json}\n")
}

// writeConfigAlerting is writeConfig with the given alerting section body.
func writeConfigAlerting(t *testing.T, dir string, brokers []string, topic, group, alerting string) string {
	t.Helper()
	cfg := fmt.Sprintf(`dpias:
  - file: %s
  - file: %s
orgs:
  - {id: st-martins, dpia: st-martins-webster-court}
  - {id: wiltshire-council, dpia: wiltshire-childrens-cms, out_of_hours_roles: [emergency-duty-team]}
ingest:
  # The events are dated March 2026: a window that holds them whenever the test runs.
  event_time: {max_age: 876000h}
  kafka:
    brokers: [%s]
    group_id: %s
    topics: [{name: %s}]
    dead_letter_topic: %s-dlq
    batch: {max_events: 500, max_wait: 50ms}
    session_timeout: 6s
store:
  embedded: {path: %s}
reference:
  dir: %s
checks:
  idle_release: 500ms
  out-of-hours:
    evidences:
      st-martins-webster-court: [R2]
      wiltshire-childrens-cms: [R1, R4]
alerting:
%shttp:
  listen: 127.0.0.1:0
`, repoFile(t, "configs/dpia/st-martins-webster-court.yaml"), repoFile(t, "configs/dpia/wiltshire-childrens-cms.yaml"),
		brokers[0], group, topic, topic, filepath.Join(dir, "dpiawatch.db"), filepath.Join(dir, "reference"), alerting)
	path := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// simulated returns a small organisation's events (encoded, in time order)
// and writes its reference data into dir/reference.
func simulated(t *testing.T, dir string, days int) (values [][]byte, keys [][]byte, ids []string) {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/London")
	sim, err := simulate.New(simulate.Options{Org: simulate.OrgStMartins, From: time.Date(2026, 3, 23, 0, 0, 0, 0, loc), Days: days, Seed: 11,
		Injections: simulate.InjectionRates{OutOfHours: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reference.WriteDir(filepath.Join(dir, "reference"), sim.Reference()); err != nil {
		t.Fatal(err)
	}
	err = sim.Run(context.Background(), func(ev *event.Event, _ *simulate.Label) error {
		b, err := event.Encode(ev)
		values = append(values, b)
		keys = append(keys, []byte(ev.Actor.ID))
		ids = append(ids, ev.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return values, keys, ids
}

type daemonProc struct {
	cmd    *exec.Cmd
	stderr testlog.Buffer
}

// waitRunning waits until the daemon says it runs: its signal handling is
// in place from then on.
func (p *daemonProc) waitRunning(t *testing.T) {
	t.Helper()
	if !testwait.Until(30*time.Second, func() bool { return strings.Contains(p.stderr.String(), "dpiawatch running") }) {
		t.Fatalf("daemon not running after 30s:\n%s", p.stderr.String())
	}
}

// stop stops the daemon with SIGTERM and fails unless it stops cleanly.
func (p *daemonProc) stop(t *testing.T) {
	t.Helper()
	p.waitRunning(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("daemon did not stop cleanly: %v\n%s", err, p.stderr.String())
	}
}

func newDaemonCmd(cfgPath string) *exec.Cmd { return exec.Command(binary, "run", "--config", cfgPath) }

func startDaemon(t *testing.T, cfgPath string) *daemonProc {
	t.Helper()
	p := &daemonProc{cmd: newDaemonCmd(cfgPath)}
	p.cmd.Stdout = nil // alerts: the store is what is judged
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKafkaKill9NothingLostNothingTwice kills the daemon with SIGKILL at
// random points while events flow, restarts it, and checks that every
// produced event is stored exactly once and that the alerts are exactly
// those an uninterrupted offline replay of the same events raises: no
// alert lost, none raised twice.
func TestKafkaKill9NothingLostNothingTwice(t *testing.T) {
	kill9(t, false)
}

// TestKafkaKill9RepartitionNothingLostNothingTwice is the same over two
// partitions with ingest.kafka.repartition on: the outbox rows a killed
// daemon leaves are produced by its successor before its own, and every
// check's alerts — the device- and team-keyed ones too — must equal the
// replay's.
func TestKafkaKill9RepartitionNothingLostNothingTwice(t *testing.T) {
	kill9(t, true)
}

func kill9(t *testing.T, repartition bool) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		// Every random choice (the kill points) comes from the seed, so
		// that a failure can be re-run with it.
		const kills = 4
		waits := killWaits(killSeed(t), kills)
		dir := t.TempDir()
		// One partition: events reach the checks in the order produced, so
		// the streaming result must equal the replay exactly. With
		// repartitioning, two: the actor-keyed checks' tasks each see one
		// partition in order, the repartitioned ones wait for both.
		topic := c.NewTopic(t, 1)
		if repartition {
			topic = c.NewTopic(t, 2)
		}
		cfgPath := writeConfig(t, dir, c.Brokers, topic, kafkatest.UniqueName(t, "g"))
		var values, keys [][]byte
		var ids []string
		if repartition {
			enableRepartition(t, cfgPath)
			values, keys, ids = simulatedWith(t, dir, 8, simulate.InjectionRates{OutOfHours: 3, UnlockedSession: 3, BulkAccess: 2})
		} else {
			values, keys, ids = simulated(t, dir, 8)
		}
		bad := [][]byte{[]byte(`{"id":`), []byte(`{"id":"x","time":"2026-03-24T10:00:00Z","org":"st-martins","system":"logmycare","action":"fly","actor":{"id":"u-01"}}`)}
		t.Logf("%d events, %d invalid messages", len(values), len(bad))

		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		// A restarted daemon waits out the killed one's group session
		// (6s) before it gets the partitions: events flow long enough
		// for every kill to fall while they do.
		const pace = 200 * time.Millisecond
		produced := make(chan error, 1)
		go func() {
			// Events flow while the daemon is killed: a steady stream in
			// small batches, with the invalid messages in the middle.
			const step = 50
			for lo := 0; lo < len(values); lo += step {
				hi := min(lo+step, len(values))
				msgs := make([]kafka.Message, 0, hi-lo+len(bad))
				for i := lo; i < hi; i++ {
					msgs = append(msgs, kafka.Message{Key: keys[i], Value: values[i]})
				}
				if lo == step*5 {
					for _, b := range bad {
						msgs = append(msgs, kafka.Message{Key: []byte("bad"), Value: b})
					}
				}
				if err := c.Produce(ctx, topic, msgs...); err != nil {
					produced <- err
					return
				}
				time.Sleep(pace) // a steady stream: the load under test, not a wait
			}
			produced <- nil
		}()

		st := openStore(t, filepath.Join(dir, "dpiawatch.db"))
		interrupted := 0 // kills that fell after some events were stored and before all
		var last int64
		for kill, wait := range waits {
			d := startDaemon(t, cfgPath)
			// Kill once this run has stored something, at a random point.
			testwait.Until(30*time.Second, func() bool {
				n, err := st.CountEvents(ctx, store.EventFilter{})
				return err == nil && n > last
			})
			time.Sleep(wait) // the kill point: the behaviour under test, not a wait
			if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = d.cmd.Wait()
			n, err := st.CountEvents(ctx, store.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if n > last && n < int64(len(ids)) {
				interrupted++
			}
			last = n
			t.Logf("kill %d after %s: %d of %d events stored", kill+1, wait, n, len(ids))
		}
		if interrupted < 2 {
			t.Fatalf("%d kills fell while events were flowing: the test proved too little", interrupted)
		}
		if err := <-produced; err != nil {
			t.Fatal(err)
		}

		// The last run takes the rest and stops cleanly on SIGTERM.
		d := startDaemon(t, cfgPath)
		stored := func() int64 {
			n, err := st.CountEvents(ctx, store.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if !testwait.Until(2*time.Minute, func() bool { return stored() == int64(len(ids)) }) {
			t.Fatalf("stored %d of %d events after 2 minutes; daemon log:\n%s", stored(), len(ids), d.stderr.String())
		}
		// Once the input is quiet the events still waiting out the lateness
		// bound are judged (idle_release): wait for the alerts to settle.
		exp := replayAlerts(t, cfgPath, values)
		if len(exp) == 0 {
			t.Fatal("the replay raised no alerts: the test would prove nothing")
		}
		if repartition && !slices.ContainsFunc(exp, func(a alert.Alert) bool { return !slices.Contains(actorKeyed, a.Check) }) {
			t.Fatal("the replay raised no device- or team-keyed alerts: the test would prove nothing")
		}
		waitAlerts(ctx, t, st, 60*time.Second, exp, nil)
		d.stop(t)

		assertStoredOnce(ctx, t, st, ids)

		// Alerts exactly as an uninterrupted replay raises them.
		got, err := st.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		compareAlerts(t, got, exp)

		// The invalid messages reached the dead-letter topic (at least once).
		dead, err := c.ReadAll(ctx, topic+"-dlq", len(bad))
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) < len(bad) {
			t.Errorf("%d dead letters, want at least %d", len(dead), len(bad))
		}
	})
}

func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	var st store.Store
	var err error
	if !testwait.Until(30*time.Second, func() bool {
		st, err = sqlite.Open(context.Background(), sqlite.Options{Path: path})
		return err == nil
	}) {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// waitAlerts waits, within limit, until the store holds the alerts want
// (after keep, when given, picks the checks compared). The last events wait
// out the lateness bound until the input has been idle for idle_release, so
// alerts settle a while after the last event is stored. It returns on the
// deadline all the same: the caller compares and reports the difference.
func waitAlerts(ctx context.Context, t *testing.T, st store.Store, limit time.Duration, want []alert.Alert, keep func([]alert.Alert) []alert.Alert) {
	t.Helper()
	testwait.Until(limit, func() bool {
		got, err := st.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if keep != nil {
			got = keep(got)
		}
		return slices.Equal(alertKeys(got), alertKeys(want))
	})
}

func replayAlerts(t *testing.T, cfgPath string, values [][]byte) []alert.Alert {
	t.Helper()
	cfg, diags := config.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	return replayWith(t, cfgPath, cfg.Reference.Dir, values)
}

// alertKeys renders alerts comparably, sorted.
func alertKeys(as []alert.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s %s %s %s %s %s %d %v", a.ID, a.Check, a.Pattern, a.ActorID, a.FirstSeen.UTC().Format(time.RFC3339), a.LastSeen.UTC().Format(time.RFC3339), a.EventCount, a.EventIDs)
	}
	slices.Sort(out)
	return out
}

func compareAlerts(t *testing.T, got, want []alert.Alert) {
	t.Helper()
	g, w := alertKeys(got), alertKeys(want)
	if !slices.Equal(g, w) {
		var missing, extra []string
		for _, k := range w {
			if !slices.Contains(g, k) {
				missing = append(missing, k)
			}
		}
		for _, k := range g {
			if !slices.Contains(w, k) {
				extra = append(extra, k)
			}
		}
		t.Errorf("alerts differ from an uninterrupted replay: got %d, want %d\nmissing or different: %v\nextra or different: %v", len(g), len(w), missing, extra)
		return
	}
	t.Logf("%d alerts, identical to the replay", len(g))
}
