package cli

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
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
	c.AddCommand(userAddCommand(e), userRemoveCommand(e),
		userChangeCommand(e, "disable", "Disable a local account: its logins are refused and its sessions end; it stays in the file",
			func(a *web.Accounts, name string) error { return a.SetDisabled(name, true) }),
		userChangeCommand(e, "enable", "Enable a disabled local account again",
			func(a *web.Accounts, name string) error { return a.SetDisabled(name, false) }))
	return c
}

// accountsPath is the accounts file: --accounts, or --config's
// web.accounts_file.
func accountsPath(e *env, accounts, cfgPath string) (string, error) {
	if accounts != "" {
		return accounts, nil
	}
	if cfgPath == "" {
		return "", usagef("give --accounts FILE or --config FILE (with web.accounts_file)")
	}
	cfg, err := loadConfig(e, cfgPath)
	if err != nil {
		return "", err
	}
	if cfg.Web.AccountsFile == "" {
		return "", usagef("%s sets no web.accounts_file", cfgPath)
	}
	return cfg.Web.AccountsFile, nil
}

func accountsFlags(c *cobra.Command, accounts, cfgPath *string) {
	c.Flags().StringVar(accounts, "accounts", "", "accounts file (default: web.accounts_file of --config)")
	c.Flags().StringVar(cfgPath, "config", "", "configuration file naming the accounts file")
}

// editAccount applies change to USERNAME in the accounts file and saves it;
// a running daemon picks the change up within seconds.
func editAccount(e *env, accounts, cfgPath, name, done string, change func(*web.Accounts, string) error) error {
	path, err := accountsPath(e, accounts, cfgPath)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return usagef("accounts file %s: %v", path, err)
	}
	set, err := web.LoadAccounts(path)
	if err != nil {
		return err
	}
	if err := change(set, name); err != nil {
		if errors.Is(err, web.ErrNoAccount) {
			return usagef("no account %q in %s", name, path)
		}
		return err
	}
	if err := set.Save(path); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s %s in %s\n", done, name, path)
	return nil
}

func userRemoveCommand(e *env) *cobra.Command {
	var accounts, cfgPath string
	c := &cobra.Command{
		Use:   "remove USERNAME",
		Short: "Remove a local account: its logins are refused and its sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editAccount(e, accounts, cfgPath, args[0], "removed", (*web.Accounts).Remove)
		},
	}
	accountsFlags(c, &accounts, &cfgPath)
	return c
}

func userChangeCommand(e *env, verb, short string, change func(*web.Accounts, string) error) *cobra.Command {
	var accounts, cfgPath string
	c := &cobra.Command{
		Use:   verb + " USERNAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editAccount(e, accounts, cfgPath, args[0], verb+"d", change)
		},
	}
	accountsFlags(c, &accounts, &cfgPath)
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
Roles: ig-team, manager (needs --team), dpo, admin. --org limits the account to orgs.
Replacing an account keeps it enabled or disabled as it was. A running daemon reloads the
file within seconds; sessions of an account whose password, role, orgs or teams changed end.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			accounts, err := accountsPath(e, accounts, cfgPath)
			if err != nil {
				return err
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
			if old, ok := set.Lookup(a.Username); ok {
				a.Disabled = old.Disabled // a new password does not enable a disabled account
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
	accountsFlags(c, &accounts, &cfgPath)
	f := c.Flags()
	f.StringVar(&role, "role", "", "ig-team, manager, dpo or admin")
	f.StringSliceVar(&teams, "team", nil, "a manager's team (repeat for several)")
	f.StringSliceVar(&orgs, "org", nil, "limit the account to this org (repeat; default: every org)")
	f.BoolVar(&generate, "generate", false, "generate a random password and print it once")
	_ = c.MarkFlagRequired("role")
	return c
}
