package cli

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dpiawatch/dpiawatch/web"
)

// userCommand manages the web UI's local accounts file.
func userCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "user",
		Short: "Manage the web UI's local accounts (argon2id password hashes)",
	}
	c.AddCommand(userAddCommand(e))
	return c
}

func userAddCommand(e *env) *cobra.Command {
	var (
		accounts, cfgPath, role string
		teams, orgs             []string
		generate                bool
	)
	c := &cobra.Command{
		Use:   "add USERNAME",
		Short: "Add or replace a local account; the password is read from standard input",
		Long: `Adds USERNAME to the accounts file (or replaces it), storing only an argon2id hash.
The password is the first line of standard input (at least 12 characters), so that it
never appears in the process list or shell history:

  printf '%s\n' "$PASSWORD" | dpiawatch user add --config configs/dpiawatch.yaml --role ig-team alice

or, with --generate, a random password is made and printed once.
Roles: ig-team, manager (needs --team), dpo, admin. --org limits the account to orgs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if accounts == "" {
				if cfgPath == "" {
					return usagef("give --accounts FILE or --config FILE (with web.accounts_file)")
				}
				cfg, err := loadConfig(e, cfgPath)
				if err != nil {
					return err
				}
				if accounts = cfg.Web.AccountsFile; accounts == "" {
					return usagef("%s sets no web.accounts_file", cfgPath)
				}
			}
			var password string
			if generate {
				password = rand.Text() // 26 base32 characters: 130 bits
			} else {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return usagef("no password on standard input (or use --generate)")
				}
				password = strings.TrimRight(line, "\r\n")
			}
			hash, err := web.HashPassword(password, web.DefaultPasswordParams)
			if err != nil {
				return usagef("%v", err)
			}
			a := web.Account{Username: args[0], Role: role, Teams: teams, Orgs: orgs, Password: hash}
			if err := a.Validate(); err != nil {
				return usagef("%v", err)
			}
			set, err := web.LoadAccounts(accounts)
			if err != nil {
				return err
			}
			if err := set.Put(a); err != nil {
				return usagef("%v", err)
			}
			if err := set.Save(accounts); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "saved %s (%s) in %s\n", a.Username, a.Role, accounts)
			if generate {
				fmt.Fprintf(e.stdout, "password: %s\n", password)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&accounts, "accounts", "", "accounts file (default: web.accounts_file of --config)")
	f.StringVar(&cfgPath, "config", "", "configuration file naming the accounts file")
	f.StringVar(&role, "role", "", "ig-team, manager, dpo or admin")
	f.StringSliceVar(&teams, "team", nil, "a manager's team (repeat for several)")
	f.StringSliceVar(&orgs, "org", nil, "limit the account to this org (repeat; default: every org)")
	f.BoolVar(&generate, "generate", false, "generate a random password and print it once")
	_ = c.MarkFlagRequired("role")
	return c
}
