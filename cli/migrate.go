package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
)

func migrateCommand(e *env) *cobra.Command {
	var (
		configPath string
		print      bool
	)
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the ClickHouse schema up to date (versioned migrations)",
		Long: `migrate applies the ClickHouse schema migrations this dpiawatch knows and has not yet
recorded in the database (table schema_migrations), then replaces the row policies of the
configured reader accounts. Every statement is idempotent: an interrupted run is simply run
again. A database migrated by a newer dpiawatch is refused.

With store.clickhouse.migrate: auto (the default) the daemon does this itself at start;
with manual, run this command before starting a new version. The embedded store migrates
itself and needs no command.

--print shows the DDL without connecting (cluster and row policies included).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(e, configPath)
			if err != nil {
				return err
			}
			if cfg.Store.ClickHouse == nil {
				return usagef("%s configures no store.clickhouse; the embedded store migrates itself at start", configPath)
			}
			o, err := daemon.ClickHouseOptions(cfg.Store.ClickHouse)
			if err != nil {
				return err
			}
			if print {
				_, err := fmt.Fprintln(e.stdout, strings.Join(o.Schema.Statements(), ";\n\n")+";")
				return err
			}
			o.Logger = e.logger()
			o.SkipMigrate = false                       // this command is the manual migration
			s, err := clickhouse.Open(cmd.Context(), o) // migrates on open
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = fmt.Fprintf(e.stdout, "clickhouse schema of database %s at version %d\n", o.Schema.Database, clickhouse.LatestVersion())
			return err
		},
	}
	c.Flags().StringVar(&configPath, "config", defaultConfigPath, "configuration file")
	c.Flags().BoolVar(&print, "print", false, "print the DDL instead of running it")
	return c
}
