package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/bench"
)

func benchCommand(e *env) *cobra.Command {
	var (
		cfgPath, brokers, cpuProfile string
		asJSON                       bool
		o                            bench.Options
	)
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure end-to-end throughput and produce-to-alert latency",
		Long: `bench pushes simulated county events through a Kafka broker (in-process, or --kafka),
the kafka-go consumer, the embedded store and the checks. Phase 1 produces --events events,
then times the daemon consuming, storing (durably) and checking all of them: sustained events/s.
Phase 2 publishes at --rate events/s for --for and reports p50/p99 latency from produce to the
batch committed with its alerts stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(e, cfgPath)
			if err != nil {
				return err
			}
			o.Config, o.Logger, o.Progress = cfg, e.logger(), e.stderr
			o.Brokers = splitList(brokers)
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			res, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(e.stdout).Encode(res)
			}
			_, err = fmt.Fprintln(e.stdout, res)
			return err
		},
	}
	c.Flags().StringVar(&cfgPath, "config", defaultConfigPath, "configuration file (orgs, DPIAs and checks)")
	c.Flags().IntVar(&o.Events, "events", 300_000, "events in the throughput phase")
	c.Flags().IntVar(&o.Rate, "rate", 20_000, "events per second in the latency phase")
	c.Flags().DurationVar(&o.LatencyFor, "for", 15*time.Second, "length of the latency phase")
	c.Flags().StringVar(&brokers, "kafka", "", "external Kafka brokers (default: an in-process broker)")
	c.Flags().IntVar(&o.BatchEvents, "batch", 20000, "events per consumer batch (one durable transaction each)")
	c.Flags().IntVar(&o.Partitions, "partitions", 3, "partitions of the in-process broker's topic")
	c.Flags().BoolVar(&o.Repartition, "repartition", false, "run the device- and team-keyed checks on repartition topics (ingest.kafka.repartition)")
	c.Flags().StringVar(&o.DataDir, "data", "", "directory for the store (default: a temporary one)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	c.AddCommand(benchHistoryCommand(e), benchStoreCommand(e))
	return c
}
