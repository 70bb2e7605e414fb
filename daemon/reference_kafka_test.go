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
