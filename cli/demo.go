package cli

import (
	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/demo"
)

func demoCommand(e *env) *cobra.Command {
	var (
		cfgPath string
		o       demo.Options
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run everything on this machine: in-process broker, simulator, daemon, alerts",
		Long: `demo needs nothing installed. It starts an in-process Kafka-protocol broker, the simulator
publishing both seed organisations' access events (with injected misuse) continuously, and the
daemon consuming them through kafka-go into the embedded store, running the checks and printing
alerts here. /metrics, /healthz and /readyz are served on the URL it prints. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(e, cfgPath)
			if err != nil {
				return err
			}
			o.Config, o.Logger, o.Stdout = cfg, e.logger(), e.stdout
			return demo.Run(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&cfgPath, "config", defaultConfigPath, "configuration file (its orgs, DPIAs, checks and alerting are used)")
	c.Flags().StringVar(&o.DataDir, "data", "", "directory for the store and simulated reference data (default: a temporary one)")
	c.Flags().IntVar(&o.Rate, "rate", 300, "events per second published for each organisation")
	c.Flags().IntVar(&o.Days, "days", 28, "days of simulated activity, ending today")
	c.Flags().StringVar(&o.Listen, "listen", "", "address for /metrics, /healthz and /readyz (default: the configuration's)")
	c.Flags().Int64Var(&o.Seed, "seed", 1, "simulation seed")
	c.Flags().Float64Var(&o.Scale, "scale", 0.25, "size of the county relative to its DPIA")
	c.Flags().IntVar(&o.Events, "events", 0, "stop publishing after this many events per organisation and keep running, so that every alert settles (0: publish until stopped)")
	return c
}
