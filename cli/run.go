package cli

import (
	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
)

func runCommand(e *env) *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: consume access events from Kafka, store, check and alert",
		Long: `run starts the daemon with the given configuration: it joins the Kafka consumer group,
stores every event in the configured store exactly once, runs the checks, delivers alerts,
and serves /metrics, /healthz and /readyz. SIGTERM or Ctrl-C stops it cleanly: what was
fetched is stored and committed first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every secret is read before anything starts, so that a missing
			// one is reported at its key, as check-config does.
			cfg, err := loadConfigWith(e, cfgPath, config.LoadOptions{ResolveSecrets: true})
			if err != nil {
				return err
			}
			if cfg.Ingest.Kafka == nil {
				return usagef("%s: ingest.kafka is not configured; use `dpiawatch demo` for the in-process broker or `dpiawatch replay` for files", cfgPath)
			}
			d, err := daemon.New(cmd.Context(), daemon.Options{Config: cfg, Logger: e.logger(), Stdout: e.stdout})
			if err != nil {
				return err
			}
			return d.Run(cmd.Context())
		},
	}
	c.Flags().StringVar(&cfgPath, "config", defaultConfigPath, "configuration file")
	return c
}
