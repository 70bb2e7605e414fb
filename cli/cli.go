// Package cli is dpiawatch's command line: one binary, with the subcommands
// run, demo, replay, simulate, check-config, bench and version. Each command
// parses flags and hands over to the package that does the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the work failed
	exitUsage   = 2 // bad flags or a bad configuration
)

// usageError marks an error the user made on the command line or in the
// configuration; it exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env is what every command gets from the process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
}

func (e *env) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if e.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "dpiawatch",
		Short: "Turn a DPIA's promised mitigations into running checks over care-record access logs",
		Long: `dpiawatch reads every access to care records (from Kafka, or a file), checks it against
what the organisation's Data Protection Impact Assessment promised — access with a business
need, no shared credentials, locked sessions, work within rostered hours — and raises alerts
that name the DPIA risk they evidence.

Start with:  dpiawatch demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&e.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(
		runCommand(e), demoCommand(e), replayCommand(e), backtestCommand(e), simulateCommand(e),
		checkConfigCommand(e), benchCommand(e), migrateCommand(e), userCommand(e), evidenceCommand(e), versionCommand(e),
	)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "dpiawatch: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown ") || strings.Contains(err.Error(), "flag") {
		return exitUsage
	}
	return exitFailure
}

// loadConfig loads and validates the configuration, printing warnings; any
// error makes it a usage error with every problem listed.
func loadConfig(e *env, path string) (*config.Config, error) {
	return loadConfigWith(e, path, config.LoadOptions{})
}

// loadConfigWith is loadConfig with options (run resolves every secret).
func loadConfigWith(e *env, path string, o config.LoadOptions) (*config.Config, error) {
	cfg, diags := config.LoadWith(path, o)
	for _, d := range diags.Warnings() {
		fmt.Fprintln(e.stderr, d)
	}
	if diags.HasErrors() {
		return nil, usageError{fmt.Errorf("configuration has errors:\n%s", diags.Errors())}
	}
	return cfg, nil
}

const defaultConfigPath = "configs/dpiawatch.yaml"

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
