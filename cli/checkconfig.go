package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/config"
)

func checkConfigCommand(e *env) *cobra.Command {
	var resolve bool
	c := &cobra.Command{
		Use:   "check-config FILE",
		Short: "Validate a configuration file and the DPIA registers it names",
		Long: `check-config loads FILE strictly and reports every problem at once — unknown keys,
bad values, unknown DPIA risks — each with file, line, column and key. DPIA risks that no
enabled check evidences are reported as warnings. Every secret is read as ` + "`run`" + ` reads it: an
unset or empty environment variable, a missing, unreadable or empty file is an error at its
key (the value is never printed); a secret file that users other than its owner may read is
a warning. Run it where the daemon runs, or pass --resolve-secrets=false to check the file
alone (e.g. in CI). Exits 0 when there are no errors, 2 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, diags := config.LoadWith(args[0], config.LoadOptions{ResolveSecrets: resolve})
			for _, d := range diags {
				fmt.Fprintln(e.stdout, d)
			}
			errs, warns := len(diags.Errors()), len(diags.Warnings())
			if errs > 0 {
				return usagef("%s: %d error(s), %d warning(s)", args[0], errs, warns)
			}
			fmt.Fprintf(e.stdout, "%s: OK (%d warning(s))\n", args[0], warns)
			return nil
		},
	}
	c.Flags().BoolVar(&resolve, "resolve-secrets", true, "read every secret as run does (false: check the file alone)")
	return c
}
