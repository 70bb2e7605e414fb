package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/reference/kafkaref"
)

// simReferenceKafka is `simulate --reference-kafka BROKERS`: the simulated
// reference rows published as JSON to the compacted reference topics
// (reference/kafkaref), for a daemon configured with reference.kafka.
type simReferenceKafka struct {
	brokers    string
	partitions int
}

func (r *simReferenceKafka) register(c *cobra.Command) {
	c.Flags().StringVar(&r.brokers, "reference-kafka", "",
		"comma-separated Kafka brokers to publish the reference rows to (topics dpiawatch-ref-<kind>, created compacted if missing)")
	c.Flags().IntVar(&r.partitions, "reference-partitions", 3, "partitions of reference topics created by --reference-kafka")
}

// publish writes every row of d to its kind's default topic, keyed by the
// row's identity, creating missing topics compacted. Nothing is done
// without --reference-kafka.
func (r *simReferenceKafka) publish(ctx context.Context, e *env, d *reference.Data) error {
	if r.brokers == "" {
		return nil
	}
	brokers := splitList(r.brokers)
	start := time.Now()
	if err := createReferenceTopics(ctx, brokers, r.partitions); err != nil {
		return err
	}
	byKind := map[kafkaref.Kind][]kafka.Message{}
	err := kafkaref.Messages(d, func(m kafkaref.Message) error {
		byKind[m.Kind] = append(byKind[m.Kind], kafka.Message{Key: m.Key, Value: m.Value})
		return nil
	})
	if err != nil {
		return err
	}
	n := 0
	for _, k := range kafkaref.Kinds() {
		w := &kafka.Writer{
			Addr:         kafka.TCP(brokers...),
			Topic:        kafkaref.DefaultTopic(k),
			Balancer:     &kafka.Murmur2Balancer{}, // the Java client's partitioning: same key, same partition
			RequiredAcks: kafka.RequireAll,
			BatchSize:    1000,
			BatchTimeout: 10 * time.Millisecond,
		}
		err := w.WriteMessages(ctx, byKind[k]...)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("publish %s reference rows: %w", k, err)
		}
		n += len(byKind[k])
	}
	fmt.Fprintf(e.stderr, "simulate: %d reference rows published to %s in %s\n", n, r.brokers, time.Since(start).Round(time.Millisecond))
	return nil
}

func createReferenceTopics(ctx context.Context, brokers []string, partitions int) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	var topics []kafka.TopicConfig
	for _, k := range kafkaref.Kinds() {
		topics = append(topics, kafka.TopicConfig{
			Topic: kafkaref.DefaultTopic(k), NumPartitions: max(partitions, 1), ReplicationFactor: -1, // the broker's default
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
		})
	}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("create reference topics: %w", err)
	}
	for t, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create reference topic %s: %w", t, err)
		}
	}
	// Kafka creates topics asynchronously: wait for leaders before writing.
	for _, k := range kafkaref.Kinds() {
		for {
			md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{kafkaref.DefaultTopic(k)}})
			if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && leaders(md.Topics[0].Partitions) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("reference topic %s not ready: %w", kafkaref.DefaultTopic(k), ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func leaders(ps []kafka.Partition) bool {
	for _, p := range ps {
		if p.Error != nil || p.Leader.Host == "" {
			return false
		}
	}
	return len(ps) > 0
}
