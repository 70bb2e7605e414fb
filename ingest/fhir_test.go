package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/kafkatest"
	"github.com/dpiawatch/dpiawatch/replay"
	"github.com/dpiawatch/dpiawatch/store"
)

// fhirInput returns every FHIR fixture of the event package — single
// AuditEvents (BALP patterns, errors) and Bundles of each type — as one
// JSON line each.
func fhirInput(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, dir := range []string{"fhir", "fhir-bundle"} {
		paths, err := filepath.Glob(filepath.Join("..", "event", "testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, ".golden.json") {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var c bytes.Buffer
			if json.Compact(&c, b) != nil {
				c.Reset()
				c.Write(bytes.TrimSpace(b)) // the malformed fixture, as it is
			}
			out = append(out, c.Bytes())
		}
	}
	if len(out) < 30 {
		t.Fatalf("only %d FHIR fixtures", len(out))
	}
	return out
}

// recordingProcessor keeps the first event of each key, in arrival order,
// as the store would.
type recordingProcessor struct {
	mu     sync.Mutex
	seen   map[event.Key]bool
	events []string
	calls  int
}

func (p *recordingProcessor) Process(_ context.Context, evs []event.Event, _ []store.Position) (store.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	var r store.Result
	for i := range evs {
		if p.seen[evs[i].Key()] {
			r.Duplicates++
			continue
		}
		p.seen[evs[i].Key()] = true
		b, err := event.Encode(&evs[i])
		if err != nil {
			return store.Result{}, err
		}
		p.events = append(p.events, string(b))
		r.Stored++
	}
	return r, nil
}

// replayRecorder is a replay.Evaluator that keeps the events it is given.
type replayRecorder struct{ events []string }

func (r *replayRecorder) Process(fresh []event.Event) (store.Effects, error) {
	for i := range fresh {
		b, err := event.Encode(&fresh[i])
		if err != nil {
			return store.Effects{}, err
		}
		r.events = append(r.events, string(b))
	}
	return store.Effects{}, nil
}

func (r *replayRecorder) Flush() store.Effects { return store.Effects{} }

// TestKafkaFHIRTopicAgreesWithReplay feeds every FHIR fixture (BALP
// patterns and Bundles with good and bad entries) through a Kafka topic
// with format fhir and through dpiawatch replay --format fhir, with the same
// per-topic mapping: both keep the same events, and the dead-letter topic
// holds one dead letter per refused entry with the reason and FHIR path
// replay reports, its value the entry's own resource when it came from a
// Bundle.
func TestKafkaFHIRTopicAgreesWithReplay(t *testing.T) {
	lines := fhirInput(t)
	mapping := event.FHIROptions{
		ActorFrom:         []event.ActorSource{event.ActorFromReference, event.ActorFromIdentifier, event.ActorFromDisplay},
		IdentifierSystems: map[string]string{"https://st-martins.example.org/fhir/staff": "{value}", "2.16.840.1.113883.4.2": "{value}"},
	}

	// The replay path.
	rec := &replayRecorder{}
	var errs bytes.Buffer
	st, err := replay.Run(context.Background(), bytes.NewReader(bytes.Join(lines, []byte("\n"))), &bytes.Buffer{}, replay.Options{
		Evaluator: rec,
		Decoder:   event.NewDecoder(event.DecoderOptions{Format: event.FormatFHIR, Org: "st-martins", System: "fhir-gateway", FHIR: mapping}),
		Errors:    &errs,
		Now:       testNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	var replayBad []string
	for l := range strings.Lines(errs.String()) {
		// "line N: reason: detail"
		_, rest, _ := strings.Cut(strings.TrimSpace(l), ": ")
		replayBad = append(replayBad, rest)
	}
	slices.Sort(replayBad)
	slices.Sort(rec.events)
	if len(rec.events) < 20 || st.Bad != len(replayBad) || st.BadReasons[string(event.ReasonConflictingDuplicate)] != 0 {
		t.Fatalf("replay: %d events, %d bad (%v)", len(rec.events), st.Bad, st.BadReasons)
	}

	kafkatest.ForEachKind(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := c.NewTopic(t, 1) // one partition: arrival order is line order, as in replay
		group := kafkatest.UniqueName(t, "g")
		msgs := make([]kafka.Message, len(lines))
		for i, l := range lines {
			msgs[i] = kafka.Message{Key: []byte("k"), Value: l}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.Produce(ctx, topic, msgs...); err != nil {
			t.Fatal(err)
		}
		p := &recordingProcessor{seen: map[event.Key]bool{}}
		cons, err := New(Options{
			Brokers: c.Brokers, GroupID: group,
			Topics:          []Topic{{Name: topic, Format: event.FormatFHIR, Org: "st-martins", System: "fhir-gateway", FHIR: mapping}},
			DeadLetterTopic: topic + "-dlq", MaxBatchWait: 50 * time.Millisecond,
			KnownOrgs: map[string]bool{"st-martins": true}, SessionTimeout: 6 * time.Second,
			Now:      func() time.Time { return testNow },
			RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, LagInterval: 200 * time.Millisecond,
			Processor: p, Registerer: prometheus.NewRegistry(),
		})
		if err != nil {
			t.Fatal(err)
		}
		runUntil(t, cons, 90*time.Second, func() bool { return committedTotal(t, c, group, topic) == int64(len(lines)) })
		got := slices.Sorted(slices.Values(p.events))
		if !slices.Equal(got, rec.events) {
			t.Errorf("Kafka kept other events than replay:\nkafka  %d %v\nreplay %d %v", len(got), got, len(rec.events), rec.events)
		}
		dead, err := c.ReadAll(ctx, topic+"-dlq", len(replayBad))
		if err != nil {
			t.Fatal(err)
		}
		var kafkaBad []string
		for _, m := range dead {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			kafkaBad = append(kafkaBad, h[HeaderReason]+": "+h[HeaderDetail])
			if path := h[HeaderPath]; path != "" && !strings.HasPrefix(h[HeaderDetail], path+": ") {
				t.Errorf("dead letter path %q is not its detail's %q", path, h[HeaderDetail])
			}
			if entry, ok := h[HeaderEntry]; ok {
				if !strings.HasPrefix(h[HeaderPath], fmt.Sprintf("Bundle.entry[%s]", entry)) || !json.Valid(m.Value) ||
					bytes.HasPrefix(bytes.TrimSpace(m.Value), []byte(`{"resourceType":"Bundle","type"`)) && !strings.Contains(h[HeaderDetail], "inside a Bundle") {
					t.Errorf("dead letter of entry %s (%s) does not hold that entry: %.80s", entry, h[HeaderPath], m.Value)
				}
			}
		}
		slices.Sort(kafkaBad)
		if !slices.Equal(kafkaBad, replayBad) {
			t.Errorf("dead letters differ from replay's bad lines:\nkafka  %q\nreplay %q", kafkaBad, replayBad)
		}
	})
}
