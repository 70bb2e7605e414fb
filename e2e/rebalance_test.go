package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// actorKeyed are the checks whose state is wholly an actor's, and so is
// sharded with the actor's partition; the others (team baselines, devices
// shared between accounts) need their own keyed stream.
var actorKeyed = []string{"out-of-hours", "no-business-need", "shared-credential"}

// TestKafkaTwoDaemonsAcrossARebalance runs two daemons in one consumer group
// over a four-partition topic and one shared store: the second joins while
// events flow, the first leaves before they end. Every event must be stored
// once, and the actor-keyed checks' alerts must equal an uninterrupted
// replay's: none lost, none raised twice across the moves.
func TestKafkaTwoDaemonsAcrossARebalance(t *testing.T) {
	twoDaemonsAcrossARebalance(t, false)
}

// TestKafkaTwoDaemonsRepartitionAcrossARebalance is the same with
// ingest.kafka.repartition on: the device- and team-keyed checks run on
// their own keyed streams, so every check's alerts must equal the replay's.
func TestKafkaTwoDaemonsRepartitionAcrossARebalance(t *testing.T) {
	twoDaemonsAcrossARebalance(t, true)
}

func twoDaemonsAcrossARebalance(t *testing.T, repartition bool) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		dir := t.TempDir()
		topic := c.NewTopic(t, 4)
		cfgPath := writeConfig(t, dir, c.Brokers, topic, kafkatest.UniqueName(t, "g"))
		filterChecks := filterActorKeyed
		var values, keys [][]byte
		var ids []string
		if repartition {
			enableRepartition(t, cfgPath)
			filterChecks = func(as []alert.Alert) []alert.Alert { return as }
			values, keys, ids = simulatedWith(t, dir, 8, simulate.InjectionRates{OutOfHours: 3, UnlockedSession: 3, BulkAccess: 2})
		} else {
			values, keys, ids = simulated(t, dir, 8)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		produced := make(chan error, 1)
		go func() {
			const step = 50
			for lo := 0; lo < len(values); lo += step {
				hi := min(lo+step, len(values))
				msgs := make([]kafka.Message, 0, hi-lo)
				for i := lo; i < hi; i++ {
					msgs = append(msgs, kafka.Message{Key: keys[i], Value: values[i]})
				}
				if err := c.Produce(ctx, topic, msgs...); err != nil {
					produced <- err
					return
				}
				time.Sleep(60 * time.Millisecond) // a steady stream: the load under test, not a wait
			}
			produced <- nil
		}()

		st := openStore(t, filepath.Join(dir, "dpiawatch.db"))
		count := func() int64 {
			n, err := st.CountEvents(ctx, store.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		waitFor := func(what string, cond func() bool) {
			t.Helper()
			if !testwait.Until(90*time.Second, cond) {
				t.Fatalf("%s: not within 90s (%d of %d events stored)", what, count(), len(ids))
			}
		}
		stop := func(d *daemonProc) { d.stop(t) }

		a := startDaemon(t, cfgPath)
		waitFor("the first daemon stores events", func() bool { return count() > 200 })
		b := startDaemon(t, cfgPath) // joins: the group splits the partitions
		atJoin := count()
		completeAtJoin := completeUntil(ctx, t, st, "st-martins")
		// With repartition the daemons share the work for most of the
		// events, so that team and device episodes span both.
		shareFor := int64(600)
		if repartition {
			shareFor = int64(len(ids)) / 2
		}
		waitFor("both daemons share the work", func() bool { return count() > atJoin+shareFor })
		if !repartition {
			// Without repartitioning the device- and team-keyed checks
			// see part of the events now: the daemons must say so.
			warned := func() bool {
				return strings.Contains(a.stderr.String(), "without ingest.kafka.repartition") &&
					strings.Contains(b.stderr.String(), "without ingest.kafka.repartition")
			}
			waitFor("both daemons warn that the keyed checks are partial", warned)
		}
		// While both share the group, the completeness point is combined
		// from every partition's progress, whichever daemon consumes it.
		waitFor("the completeness point moves on, combined from both daemons' partitions", func() bool {
			combined := strings.Contains(a.stderr.String()+b.stderr.String(), "completeness combined from every partition")
			return combined && completeUntil(ctx, t, st, "st-martins").After(completeAtJoin)
		})
		if c, n := completeUntil(ctx, t, st, "st-martins"), newestStored(ctx, t, st, "st-martins"); c.After(n) {
			t.Fatalf("complete up to %s, after the newest stored event %s", c, n)
		}
		stop(a) // leaves: the second daemon takes every partition
		atLeave := count()
		if atLeave >= int64(len(ids)) {
			t.Fatalf("everything was stored before the first daemon left: no rebalance under load")
		}
		if err := <-produced; err != nil {
			t.Fatal(err)
		}
		waitFor("every event stored", func() bool { return count() == int64(len(ids)) })
		exp := filterChecks(replayAlerts(t, cfgPath, values))
		if len(exp) == 0 {
			t.Fatal("the replay raised no alerts of the checks compared: the test would prove nothing")
		}
		if repartition {
			var keyed int
			for _, a := range exp {
				if !slices.Contains(actorKeyed, a.Check) {
					keyed++
				}
			}
			if keyed == 0 {
				t.Fatal("the replay raised no device- or team-keyed alerts: the test would prove nothing")
			}
			t.Logf("%d device- or team-keyed alerts expected", keyed)
		}
		waitAlerts(ctx, t, st, 30*time.Second, exp, filterChecks)
		stop(b)
		t.Logf("joined at %d, left at %d of %d events", atJoin, atLeave, len(ids))

		assertStoredOnce(ctx, t, st, ids)
		got, err := st.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		compareAlerts(t, filterChecks(got), exp)
		if repartition && strings.Contains(a.stderr.String()+b.stderr.String(), "without ingest.kafka.repartition") {
			t.Error("a daemon warned that the keyed checks are partial although they are repartitioned")
		}
		if t.Failed() {
			for _, d := range []*daemonProc{a, b} {
				for _, l := range strings.Split(d.stderr.String(), "\n") {
					if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") {
						t.Log(l)
					}
				}
			}
		}
	})
}

// enableRepartition sets ingest.kafka.repartition in the config at path.
func enableRepartition(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The test compresses days of event time into seconds, so events of
	// different source partitions meet in a repartition topic hours of
	// event time apart: the default lateness bound (5m) could not absorb
	// that, the tasks' wait for their slowest source does. Idle release
	// (and so a source's idleness) waits out a rebalance's pause.
	out := strings.NewReplacer("  kafka:\n", "  kafka:\n    repartition: true\n",
		"  idle_release: 500ms\n", "  idle_release: 10s\n").Replace(string(b))
	if !strings.Contains(out, "repartition: true") || !strings.Contains(out, "idle_release: 10s") {
		t.Fatal("no ingest.kafka or checks.idle_release in the config")
	}
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

func filterActorKeyed(as []alert.Alert) []alert.Alert {
	var out []alert.Alert
	for _, a := range as {
		if slices.Contains(actorKeyed, a.Check) {
			out = append(out, a)
		}
	}
	return out
}

// simulatedWith is simulated with the given injection rates.
func simulatedWith(t *testing.T, dir string, days int, rates simulate.InjectionRates) (values [][]byte, keys [][]byte, ids []string) {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/London")
	sim, err := simulate.New(simulate.Options{Org: simulate.OrgStMartins, From: time.Date(2026, 3, 23, 0, 0, 0, 0, loc), Days: days, Seed: 11,
		Injections: rates})
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

// completeUntil is org's completeness point as the store has it.
func completeUntil(ctx context.Context, t *testing.T, st store.Store, org string) time.Time {
	t.Helper()
	points, err := store.LoadCompleteness(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	return points[org]
}

// newestStored is the time of org's newest stored event.
func newestStored(ctx context.Context, t *testing.T, st store.Store, org string) time.Time {
	t.Helper()
	var newest time.Time
	if err := st.ScanEvents(ctx, store.EventFilter{Org: org}, func(ev event.Event) error {
		newest = ev.Time
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return newest
}
