package kafkaref_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/testwait"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

// simulated returns a small org's reference data, as the CSV loader reads
// it back (the comparison baseline of the round trip).
func simulated(t *testing.T) (*reference.Data, string) {
	t.Helper()
	sim, err := simulate.New(simulate.Options{Org: simulate.OrgStMartins, From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Days: 7, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := reference.WriteDir(dir, sim.Reference()); err != nil {
		t.Fatal(err)
	}
	d, err := reference.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

// sameFiles fails t unless dirs a and b hold the same CSV bytes.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	for _, f := range []string{reference.FileStaff, reference.FileRelationships, reference.FileShifts,
		reference.FileAbsences, reference.FileDevices, reference.FileSharingAgreements, reference.FileSubjects} {
		x, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs after the Kafka round trip (%d vs %d bytes)", f, len(x), len(y))
		}
	}
}

type harness struct {
	c         *kafkatest.Cluster
	topics    map[kafkaref.Kind]string
	reg       *prometheus.Registry
	snapshots chan *reference.Data
	loader    *kafkaref.Loader
}

func newHarness(t *testing.T, c *kafkatest.Cluster) *harness {
	t.Helper()
	h := &harness{c: c, topics: map[kafkaref.Kind]string{}, reg: prometheus.NewRegistry(), snapshots: make(chan *reference.Data, 16)}
	for _, k := range kafkaref.Kinds() {
		h.topics[k] = kafkatest.UniqueName(t, "ref-"+string(k))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.CreateTopic(ctx, h.topics[k], 3)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func (h *harness) produce(t *testing.T, msgs ...kafkaref.Message) {
	t.Helper()
	by := map[kafkaref.Kind][]kafka.Message{}
	for _, m := range msgs {
		by[m.Kind] = append(by[m.Kind], kafka.Message{Key: m.Key, Value: m.Value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k, ms := range by {
		if err := h.c.Produce(ctx, h.topics[k], ms...); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	l, err := kafkaref.New(kafkaref.Options{
		Brokers: h.c.Brokers, Topics: h.topics, PublishInterval: 20 * time.Millisecond, Registerer: h.reg,
		Apply: func(_ context.Context, d *reference.Data) { h.snapshots <- d },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.loader = l
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// next waits for the next snapshot.
func (h *harness) next(t *testing.T) *reference.Data {
	t.Helper()
	select {
	case d := <-h.snapshots:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("no reference snapshot within 30s")
		return nil
	}
}

// until waits for a snapshot satisfying ok.
func (h *harness) until(t *testing.T, what string, ok func(*reference.Data) bool) *reference.Data {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case d := <-h.snapshots:
			if ok(d) {
				return d
			}
		case <-deadline:
			t.Fatalf("no snapshot with %s within 30s", what)
			return nil
		}
	}
}

func all(t *testing.T, d *reference.Data) []kafkaref.Message {
	t.Helper()
	var out []kafkaref.Message
	if err := kafkaref.Messages(d, func(m kafkaref.Message) error { out = append(out, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKafka(t *testing.T) {
	want, wantDir := simulated(t)
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		h := newHarness(t, c)
		h.produce(t, all(t, want)...)
		h.start(t)

		// The first snapshot is the whole data set: only published once
		// every partition is read to its end.
		first := h.next(t)
		// Ready is set once Apply has returned: the snapshot reaches this
		// test from inside Apply, an instant before.
		if !testwait.Until(5*time.Second, h.loader.Ready) {
			t.Error("Ready() is false 5s after the first snapshot was applied")
		}
		gotDir := t.TempDir()
		if err := reference.WriteDir(gotDir, first); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, wantDir, gotDir)

		// Pick rows to change: a relationship to end, a staff member to
		// delete.
		rel := want.Relationships[0]
		gone := want.Staff[len(want.Staff)-1]
		x := reference.NewIndex(first)
		ended := rel.ValidFrom.Add(time.Hour)
		if !x.HasRelationship(rel.Org, rel.ActorID, rel.Team, rel.SubjectID, ended.Add(time.Minute)) {
			t.Fatal("relationship is not in force before the update")
		}
		if _, ok := x.Staff(gone.Org, gone.ActorID); !ok {
			t.Fatal("staff row missing before the tombstone")
		}

		upd := rel
		upd.ValidTo = ended
		updMsgs := all(t, &reference.Data{Relationships: []reference.Relationship{upd}})
		bad := kafkaref.Message{Kind: kafkaref.KindShifts, Key: []byte(`["x"]`), Value: []byte(`{"actor_id":"u-1","start":"yesterday","end":"2026-03-02T10:00:00Z"}`)}
		h.produce(t, append(updMsgs,
			kafkaref.Message{Kind: kafkaref.KindStaff, Key: kafkaref.StaffKey(gone)}, // tombstone
			bad)...)

		d := h.until(t, "the update and tombstone", func(d *reference.Data) bool {
			return len(d.Staff) == len(want.Staff)-1 && len(d.Relationships) == len(want.Relationships) &&
				!reference.NewIndex(d).HasRelationship(rel.Org, rel.ActorID, rel.Team, rel.SubjectID, ended.Add(time.Minute))
		})
		x = reference.NewIndex(d)
		if _, ok := x.Staff(gone.Org, gone.ActorID); ok {
			t.Error("tombstoned staff row still present")
		}
		// Validity windows apply as before: in force until valid_to.
		if !x.HasRelationship(rel.Org, rel.ActorID, rel.Team, rel.SubjectID, ended.Add(-time.Minute)) {
			t.Error("updated relationship not in force before its new valid_to")
		}
		if len(d.Shifts) != len(want.Shifts) {
			t.Errorf("shifts: %d rows, want %d (the invalid one skipped)", len(d.Shifts), len(want.Shifts))
		}
		// The invalid row was counted, perhaps a moment after the snapshot
		// that followed it.
		testwait.Until(10*time.Second, func() bool { return testutil.ToFloat64(invalidRows(t, h.reg, "shifts")) == 1 })
		if n := testutil.ToFloat64(invalidRows(t, h.reg, "shifts")); n != 1 {
			t.Errorf("dpiawatch_reference_invalid_rows_total{kind=shifts} = %v, want 1", n)
		}
	})
}

func invalidRows(t *testing.T, reg *prometheus.Registry, kind string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "dpiawatch_reference_invalid_rows_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "kind" && lp.GetValue() == kind {
					g.Set(m.GetCounter().GetValue())
				}
			}
		}
	}
	return g
}

// An empty topic set still yields a (empty) first snapshot: the loader must
// not wait for rows that will never come.
func TestKafkaEmptyTopics(t *testing.T) {
	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		h := newHarness(t, c)
		h.start(t)
		d := h.next(t)
		if len(d.Staff)+len(d.Relationships)+len(d.Shifts)+len(d.Absences)+len(d.Devices)+len(d.SharingAgreements) != 0 {
			t.Errorf("rows in a snapshot of empty topics: %+v", d)
		}
		h.produce(t, all(t, &reference.Data{Devices: []reference.Device{{DeviceID: "tab-1", Org: "st-martins", Kind: reference.DeviceSharedTablet}}})...)
		h.until(t, "the device", func(d *reference.Data) bool { return len(d.Devices) == 1 })
	})
}
