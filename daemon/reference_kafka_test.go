package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/testwait"
)

// TestDaemonReferenceFromKafkaTopics runs a daemon whose reference data
// comes from compacted topics only, and checks that it becomes ready and
// judges against the staff it read there.
func TestDaemonReferenceFromKafkaTopics(t *testing.T) {
	c := kafkatest.StartKFake(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc, _ := time.LoadLocation("Europe/London")
	sim, err := simulate.New(simulate.Options{Org: simulate.OrgStMartins, From: time.Date(2026, 3, 2, 0, 0, 0, 0, loc), Days: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	byTopic := map[string][]kafka.Message{}
	if err := kafkaref.Messages(sim.Reference(), func(m kafkaref.Message) error {
		topic := kafkaref.DefaultTopic(m.Kind)
		byTopic[topic] = append(byTopic[topic], kafka.Message{Key: m.Key, Value: m.Value})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range kafkaref.Kinds() {
		topic := kafkaref.DefaultTopic(k)
		if err := c.CreateTopic(ctx, topic, 1); err != nil {
			t.Fatal(err)
		}
		if msgs := byTopic[topic]; len(msgs) > 0 {
			if err := c.Produce(ctx, topic, msgs...); err != nil {
				t.Fatal(err)
			}
		}
	}

	dir := t.TempDir()
	dpias, _ := filepath.Abs("../configs/dpia")
	cfgText := `dpias: [{file: ` + dpias + `/st-martins-webster-court.yaml}]
orgs: [{id: st-martins, dpia: st-martins-webster-court}]
store: {embedded: {path: ` + filepath.Join(dir, "d.db") + `}}
reference:
  dir: ` + dir + `
  kafka: {brokers: [` + c.Brokers[0] + `], publish_interval: 100ms}
checks:
  out-of-hours: {evidences: {st-martins-webster-court: [R2]}}
alerting: {console: {enabled: false}}
http: {listen: "127.0.0.1:0"}
`
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	d, err := New(ctx, Options{Config: cfg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	staff := sim.Reference().Staff[0]
	testwait.For(t, 45*time.Second, "the daemon to load the staff from the reference topics", func() bool {
		r := d.roster.Load()
		if !d.refTopics.Ready() || r == nil {
			return false
		}
		got, ok := r.Staff(staff.Org, staff.ActorID)
		return ok && got.Role == staff.Role
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDaemonReferenceTopicsKeepTenantsApart: two orgs' staff rows with the
// same actor id, and two orgs' devices with the same device id, published on
// the compacted topics, are four rows in force, each found under its own org.
// With the old keys (the bare id) the second org's row replaced the first's.
func TestDaemonReferenceTopicsKeepTenantsApart(t *testing.T) {
	c := kafkatest.StartKFake(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	data := &reference.Data{
		Staff: []reference.Staff{
			{ActorID: "u-17", Org: "st-martins", Role: "support-worker", Team: "webster-court", ActiveFrom: from},
			{ActorID: "u-17", Org: "wiltshire-council", Role: "social-worker", Team: "north-locality", ActiveFrom: from},
		},
		Devices: []reference.Device{
			{DeviceID: "tab-1", Org: "st-martins", Kind: reference.DeviceSharedTablet},
			{DeviceID: "tab-1", Org: "wiltshire-council", Kind: reference.DeviceLaptop},
		},
	}
	for _, k := range kafkaref.Kinds() {
		if err := c.CreateTopic(ctx, kafkaref.DefaultTopic(k), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := kafkaref.Messages(data, func(m kafkaref.Message) error {
		return c.Produce(ctx, kafkaref.DefaultTopic(m.Kind), kafka.Message{Key: m.Key, Value: m.Value})
	}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	dpias, _ := filepath.Abs("../configs/dpia")
	cfgText := `dpias: [{file: ` + dpias + `/st-martins-webster-court.yaml}, {file: ` + dpias + `/wiltshire-childrens-cms.yaml}]
orgs: [{id: st-martins, dpia: st-martins-webster-court}, {id: wiltshire-council, dpia: wiltshire-childrens-cms}]
store: {embedded: {path: ` + filepath.Join(dir, "d.db") + `}}
reference:
  dir: ` + dir + `
  kafka: {brokers: [` + c.Brokers[0] + `], publish_interval: 100ms}
checks:
  out-of-hours: {evidences: {st-martins-webster-court: [R2], wiltshire-childrens-cms: [R1]}}
alerting: {console: {enabled: false}}
http: {listen: "127.0.0.1:0"}
`
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	d, _ := startDaemon(t, cfgPath)
	testwait.For(t, 45*time.Second, "the daemon to load both orgs' rows from the reference topics", func() bool {
		r := d.roster.Load()
		if !d.refTopics.Ready() || r == nil {
			return false
		}
		sm, ok1 := r.Staff("st-martins", "u-17")
		wc, ok2 := r.Staff("wiltshire-council", "u-17")
		dsm, ok3 := r.Device("st-martins", "tab-1")
		dwc, ok4 := r.Device("wiltshire-council", "tab-1")
		return ok1 && ok2 && ok3 && ok4 && sm.Role == "support-worker" && wc.Role == "social-worker" &&
			dsm.Kind == reference.DeviceSharedTablet && dwc.Kind == reference.DeviceLaptop
	})
}
