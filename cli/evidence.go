package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/daemon"
	"github.com/dpiawatch/dpiawatch/demo"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/clickhouse"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/version"
)

// evidenceCommand is `dpiawatch evidence`: export, verify and keygen.
func evidenceCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "evidence",
		Short: "Export and verify the DPO's signed evidence pack for a DPIA review",
	}
	c.AddCommand(evidenceExportCommand(e), evidenceVerifyCommand(e), evidenceKeygenCommand(e))
	return c
}

func evidenceExportCommand(e *env) *cobra.Command {
	var (
		configPath, dpiaID, from, to, out, requestedBy, demoDir string
		identities                                              bool
	)
	c := &cobra.Command{
		Use:   "export",
		Short: "Write the evidence pack of one DPIA and period to a directory",
		Long: `export writes, for each risk of the DPIA, the mitigations promised and the checks that
evidence them, what was examined, the alerts raised, triage outcomes, confirmed misuse,
routine audits, a comparison with the previous period of the same length, and an
observed-likelihood indicator beside the register's residual risk score.

--from and --to are the first and last day of the period (YYYY-MM-DD, both included) in
the DPIA's timezone; without them, the last complete review cycle: a calendar quarter, or
the month, half-year or year the register's review frequency states. OUT must be new or
empty. --demo-dir reads a demo's data directory (its store and keys, as ` + "`dpiawatch demo --data`" + `
wrote them) with --config's orgs and checks, so no configuration need be written. It receives report.html and report.pdf,
evidence.json and CSV files with the same numbers, and manifest.json with every file's
SHA-256, signed with evidence.signing_key. Every figure is an aggregate query: no event
is read into memory.

People are pseudonymised. --identities shows account and client ids of confirmed
misuse; the request is recorded in the store's audit trail and in the manifest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dpiaID == "" || out == "" {
				return usagef("--dpia and --out are required")
			}
			if (from == "") != (to == "") {
				return usagef("give both --from and --to, or neither for the last complete review cycle")
			}
			cfg, err := loadConfig(e, configPath)
			if err != nil {
				return err
			}
			if demoDir != "" {
				if err := demo.UseDataDir(cfg, demoDir, false); err != nil {
					return usagef("--demo-dir: %v", err)
				}
			}
			if from == "" {
				if from, to, err = evidence.DefaultPeriod(cfg, dpiaID, time.Now()); err != nil {
					return usagef("%v", err)
				}
			}
			keyText, err := cfg.Evidence.SigningKey.Resolve()
			if err != nil {
				return usagef("evidence.signing_key: %v (make a key with `dpiawatch evidence keygen`)", err)
			}
			key, err := evidence.ParsePrivateKey(keyText)
			if err != nil {
				return usagef("evidence.signing_key (%s): %v", cfg.Evidence.SigningKey, err)
			}
			if identities && requestedBy == "" {
				if u, err := user.Current(); err == nil {
					requestedBy = u.Username
				}
			}
			pseudo, err := daemon.EvidencePseudonyms(cfg)
			if err != nil {
				return err
			}
			src, kind, closeSrc, err := openEvidenceSource(cmd.Context(), cfg, e)
			if err != nil {
				return err
			}
			defer closeSrc()

			bar := newProgress(e.stderr)
			m, err := evidence.Export(cmd.Context(), evidence.ExportOptions{
				Options: evidence.Options{Config: cfg, DPIA: dpiaID, From: from, To: to, Source: src,
					Identities: identities, Pseudonym: pseudo, Progress: bar.update},
				Dir: out, Key: key, Store: kind, Generator: "dpiawatch " + version.Version, RequestedBy: requestedBy,
			})
			bar.finish()
			if err != nil {
				return err
			}
			if _, err = fmt.Fprintf(e.stdout, "evidence pack for %s, %s to %s, written to %s (%d files, signed by key %s)\n",
				dpiaID, from, to, out, len(m.Files)+1, m.KeyID); err != nil {
				return err
			}
			return printUncovered(e.stdout, out)
		},
	}
	c.Flags().StringVar(&configPath, "config", defaultConfigPath, "configuration file")
	c.Flags().StringVar(&dpiaID, "dpia", "", "DPIA register id, e.g. wiltshire-childrens-cms")
	c.Flags().StringVar(&from, "from", "", "first day of the period, YYYY-MM-DD (default: the last complete review cycle)")
	c.Flags().StringVar(&to, "to", "", "last day of the period (included), YYYY-MM-DD")
	c.Flags().StringVar(&demoDir, "demo-dir", "", "a demo's data directory (dpiawatch demo --data): its store and keys replace the configuration's")
	c.Flags().StringVar(&out, "out", "", "directory to write the pack to (new or empty)")
	c.Flags().BoolVar(&identities, "identities", false, "show account and client ids of confirmed misuse (recorded in the audit trail)")
	c.Flags().StringVar(&requestedBy, "requested-by", "", "who asks for identities (default: the current user)")
	return c
}

// maxUncoveredShown is how many uncovered ranges per org the export
// prints; the pack lists them all.
const maxUncoveredShown = 10

// printUncovered tells the DPO at once, per org, the ranges of days the
// pack's data does not cover (from the pack's own evidence.json, so the
// terminal says what the pack says): a pack made while a feed is behind
// must not pass for a complete one.
func printUncovered(w io.Writer, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "evidence.json"))
	if err != nil {
		return fmt.Errorf("read the pack back: %w", err)
	}
	var r evidence.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("read the pack back: %w", err)
	}
	for _, o := range r.Coverage.Orgs {
		if len(o.Uncovered) == 0 {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s: the data does not cover\n", o.Org); err != nil {
			return err
		}
		for i, u := range o.Uncovered {
			line := fmt.Sprintf("  %s – %s (%d days): %s\n", u.From, u.To, u.Days, u.Detail)
			if u.From == u.To {
				line = fmt.Sprintf("  %s (1 day): %s\n", u.From, u.Detail)
			}
			if i == maxUncoveredShown {
				line = fmt.Sprintf("  … and %d more ranges (report.html, coverage_ranges.csv)\n", len(o.Uncovered)-i)
			}
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
			if i == maxUncoveredShown {
				break
			}
		}
	}
	return nil
}

// openEvidenceSource opens the configured store for reading aggregates.
func openEvidenceSource(ctx context.Context, cfg *config.Config, e *env) (evidence.Source, string, func(), error) {
	return openReadStore(ctx, cfg, e)
}

// readStore is what the read-only commands (evidence, backtest) read from
// either kind of store.
type readStore interface {
	store.Reader
	evidence.Source
}

// openReadStore opens the configured store for reading, never changing its
// schema; it names the kind of store ("clickhouse", "embedded").
func openReadStore(ctx context.Context, cfg *config.Config, e *env) (readStore, string, func(), error) {
	if cfg.Store.ClickHouse != nil {
		o, err := daemon.ClickHouseOptions(cfg.Store.ClickHouse)
		if err != nil {
			return nil, "", nil, err
		}
		o.Logger, o.SkipMigrate = e.logger(), true // an export never changes the schema
		s, err := clickhouse.Open(ctx, o)
		if err != nil {
			return nil, "", nil, err
		}
		return s, "clickhouse", func() { _ = s.Close() }, nil
	}
	path := cfg.Store.Embedded.Path
	if _, err := os.Stat(path); err != nil {
		return nil, "", nil, fmt.Errorf("embedded store %s: %w", path, err)
	}
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: e.logger()})
	if err != nil {
		return nil, "", nil, err
	}
	return s, "embedded", func() { _ = s.Close() }, nil
}

// progress draws a bar on a terminal and nothing elsewhere.
type progress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

// isTerminal says whether w is a terminal; tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns a bar drawn on w when w is a terminal: redirected to
// a file or a pipe (cron, CI), the export stays quiet.
func newProgress(w io.Writer) *progress {
	if !isTerminal(w) {
		return &progress{}
	}
	return &progress{w: w}
}

func (p *progress) update(_ string, done, total int) {
	if p.w == nil {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription("evidence queries"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	_ = p.bar.Set(done)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// errNoTrustedKey is verify's answer without a trusted public key: the
// key a manifest carries proves nothing, since whoever alters a pack can
// sign it again with a key of their own.
var errNoTrustedKey = errors.New("no trusted public key given, so the pack's authenticity cannot be checked " +
	"(a pack altered and signed again with another key carries that key): give the signer's public key " +
	"with --public-key FILE (the .pub file `dpiawatch evidence keygen` wrote), or --config FILE whose evidence.public_key names it")

func evidenceVerifyCommand(e *env) *cobra.Command {
	var pubFile, configPath string
	c := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check an evidence pack's signature and every file's SHA-256",
		Long: `verify checks DIR/manifest.sig, the Ed25519 signature of the exact bytes of
DIR/manifest.json, against a trusted public key, then the SHA-256 of every file the
manifest lists, and names each file that was altered, is missing, or was added. It
exits 1 on any problem.

The trusted key is --public-key FILE (PEM, as ` + "`evidence keygen`" + ` writes it to OUT.pub), else
the evidence.public_key of --config. Without either, verify exits 1 and checks nothing:
the key a manifest carries shows no more than that someone signed it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pubFile == "" && configPath != "" {
				cfg, err := loadConfig(e, configPath)
				if err != nil {
					return err
				}
				pubFile = cfg.Evidence.PublicKey
			}
			if pubFile == "" {
				return errNoTrustedKey
			}
			b, err := os.ReadFile(pubFile)
			if err != nil {
				return usagef("public key: %v", err)
			}
			trusted, err := evidence.ParsePublicKey(string(b))
			if err != nil {
				return usagef("%s: %v", pubFile, err)
			}
			res, err := evidence.Verify(args[0], trusted)
			if err != nil {
				return err
			}
			for _, p := range res.Problems {
				fmt.Fprintln(e.stdout, p)
			}
			if !res.OK() || !res.Trusted {
				return fmt.Errorf("evidence pack %s failed verification: %d problem(s)", args[0], len(res.Problems))
			}
			m := res.Manifest
			_, err = fmt.Fprintf(e.stdout, "ok: %d files intact; %s, %s to %s, generated %s, signed by the trusted key %s\n",
				len(m.Files), m.DPIA, m.From, m.To, m.GeneratedAt, m.KeyID)
			return err
		},
	}
	c.Flags().StringVar(&pubFile, "public-key", "", "trusted Ed25519 public key (PEM); required unless --config names one")
	c.Flags().StringVar(&configPath, "config", "", "configuration file whose evidence.public_key to trust")
	return c
}

func evidenceKeygenCommand(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keygen",
		Short: "Make an Ed25519 key pair for signing evidence packs",
		Long: `keygen writes OUT (the private key, PEM PKCS#8, mode 0600) and OUT.pub (the public key,
PEM). Point evidence.signing_key at the private key ({file: OUT}) and give the public key
to whoever verifies packs (evidence.public_key, or verify --public-key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			priv, pub, err := evidence.GenerateKey()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				return usagef("%s exists; not overwriting a key", out)
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(priv); err != nil {
				_ = f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.WriteFile(out+".pub", pub, 0o644); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "wrote %s (private, keep secret) and %s.pub\n", out, out)
			return err
		},
	}
	c.Flags().StringVar(&out, "out", "", "file for the private key; the public key goes to FILE.pub")
	return c
}
