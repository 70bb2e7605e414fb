package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dpiawatch/dpiawatch/store/sqlite"
)

var progressStep = regexp.MustCompile(`\((\d+)/(\d+)\)`)

// TestEvidenceProgress: an export draws its bar on stderr when stderr is a
// terminal, and writes nothing there when it is not.
func TestEvidenceProgress(t *testing.T) {
	dir := t.TempDir()
	if _, err := runEvidence(t, "keygen", "--out", filepath.Join(dir, "evidence.key")); err != nil {
		t.Fatal(err)
	}
	dpia, err := filepath.Abs("../configs/dpia/wiltshire-childrens-cms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "dpiawatch.yaml")
	cfg := `dpias: [{file: ` + dpia + `}]
orgs: [{id: wiltshire-council, dpia: wiltshire-childrens-cms}]
store: {embedded: {path: store.db}}
checks:
  out-of-hours:
    evidences: {wiltshire-childrens-cms: [R1, R2, R3, R4]}
evidence:
  signing_key: {file: evidence.key}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, "store.db")})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	real := isTerminal
	t.Cleanup(func() { isTerminal = real })
	for _, c := range []struct {
		name     string
		terminal bool
	}{{"terminal", true}, {"redirected", false}} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			isTerminal = func(w io.Writer) bool { return w == &stderr && c.terminal }
			e := &env{stdout: io.Discard, stderr: &stderr, logLevel: "error"}
			cmd := evidenceCommand(e)
			cmd.SetArgs([]string{"export", "--config", cfgPath, "--dpia", "wiltshire-childrens-cms",
				"--from", "2026-01-01", "--to", "2026-03-31", "--out", filepath.Join(t.TempDir(), "pack")})
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			if err := cmd.ExecuteContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := stderr.String()
			if !c.terminal {
				if got != "" {
					t.Errorf("redirected stderr got %q, want nothing", got)
				}
				return
			}
			// The bar counts the export's queries up, one redraw each, and
			// is cleared at the end so that the summary line stands alone.
			steps := progressStep.FindAllStringSubmatch(got, -1)
			if !strings.Contains(got, "evidence queries") || len(steps) < 4 {
				t.Fatalf("no progress bar on a terminal; stderr %q", got)
			}
			for i, m := range steps {
				if m[1] != strconv.Itoa(i+1) || m[2] != steps[0][2] {
					t.Errorf("redraw %d shows %s/%s", i+1, m[1], m[2])
				}
			}
			if !strings.HasSuffix(got, "\r") {
				t.Errorf("the bar is not cleared at the end: %q", got[max(0, len(got)-100):])
			}
		})
	}
}

// TestIsTerminal: the real switch says no for a pipe and a file, and yes
// for a terminal (a pseudo-terminal, where the system has them).
func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, x := range []io.Writer{w, f, &bytes.Buffer{}} {
		if isTerminal(x) {
			t.Errorf("%T taken for a terminal", x)
		}
		if p := newProgress(x); p.w != nil {
			t.Errorf("progress drawn on %T", x)
		}
	}
	if pts := openPTY(t); pts != nil && !isTerminal(pts) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}
