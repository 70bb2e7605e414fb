// Package evidence builds the DPO's evidence pack for a DPIA review: for
// each risk of a DPIA register, over a period and the one before it, the
// mitigations promised and the checks that evidence them, what the checks
// examined, the alerts they raised, how those were triaged, confirmed
// misuse, routine audits, and an observed-likelihood indicator to weigh
// against the register's residual risk.
//
// Every figure comes from an aggregate query (Source, implemented by
// store/sqlite and store/clickhouse): an export never reads events into
// memory, so a county's quarter costs a few grouped scans.
//
// A pack is a directory: report.html and report.pdf for people;
// evidence.json and CSV files with the same numbers; and manifest.json
// listing each file's SHA-256, with manifest.sig, the Ed25519 signature of
// manifest.json's exact bytes. The data files and the
// reports are byte-identical for the same data and period; only the
// manifest carries the generation time. People appear as keyed pseudonyms
// unless identities are asked for, and that request is recorded in the
// store's audit trail (where it has one) and in the manifest.
package evidence

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dpiawatch/dpiawatch/audit"
)

// ExportOptions configure Export. Dir and Key are required.
type ExportOptions struct {
	Options
	// Dir receives the pack; it is created, and must be empty if it exists.
	Dir string
	// Key signs the manifest.
	Key ed25519.PrivateKey
	// Store names the store kind for the manifest ("embedded", "clickhouse").
	Store string
	// Generator names the program for the manifest ("dpiawatch v1.2.3").
	Generator string
	// RequestedBy is who asked for identities (required with Identities).
	RequestedBy string
	// Now is the clock for the manifest and audit entry; nil: time.Now.
	Now func() time.Time
}

// Export builds the report and writes the pack.
func Export(ctx context.Context, o ExportOptions) (Manifest, error) {
	if o.Key == nil {
		return Manifest{}, errors.New("evidence: a signing key is required (evidence.signing_key; `dpiawatch evidence keygen` makes one)")
	}
	if o.Identities && o.RequestedBy == "" {
		return Manifest{}, errors.New("evidence: an export with identities must name who requested it")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if err := prepareDir(o.Dir); err != nil {
		return Manifest{}, err
	}
	m := Manifest{Format: ManifestFormat, DPIA: o.DPIA, From: o.From, To: o.To, Generator: o.Generator, Store: o.Store,
		Identities: o.Identities, RequestedBy: o.RequestedBy}
	if o.Identities {
		// Recorded before anything is read, so that a failed export that
		// asked for identities is on the record too.
		if rec, ok := o.Source.(AuditRecorder); ok {
			detail, _ := json.Marshal(map[string]any{"from": o.From, "to": o.To, "identities": true})
			if err := rec.EvidenceAudit(ctx, audit.Entry{At: now().UTC(), Actor: o.RequestedBy,
				Action: "evidence.export-identities", Object: o.DPIA, Detail: string(detail)}); err != nil {
				return Manifest{}, fmt.Errorf("evidence: record the identities request: %w", err)
			}
			m.AuditLogged = true
		}
	}

	// Build's steps, then writing and signing: two more.
	total := 0
	progress := func(stage string, done int) {
		if o.Progress != nil {
			o.Progress(stage, done, total)
		}
	}
	bo := o.Options
	if o.Progress != nil {
		bo.Progress = func(stage string, done, n int) {
			total = n + 2
			progress(stage, done)
		}
	}
	r, err := Build(ctx, bo)
	if err != nil {
		return Manifest{}, err
	}
	files, err := DataFiles(r)
	if err != nil {
		return Manifest{}, err
	}
	html, err := HTML(r)
	if err != nil {
		return Manifest{}, err
	}
	pdf, err := PDF(r)
	if err != nil {
		return Manifest{}, err
	}
	files = append([]File{{Name: "report.html", Data: html}, {Name: "report.pdf", Data: pdf}}, files...)
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(o.Dir, f.Name), f.Data, 0o600); err != nil {
			return Manifest{}, fmt.Errorf("evidence: %w", err)
		}
		m.Files = append(m.Files, hashFile(f))
	}
	progress(StageWrite, total-1)
	m.GeneratedAt = now().UTC().Format(time.RFC3339)
	b, sig, err := m.Sign(o.Key)
	if err != nil {
		return Manifest{}, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, ManifestName), b, 0o600); err != nil {
		return Manifest{}, fmt.Errorf("evidence: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.Dir, SignatureName), sig, 0o600); err != nil {
		return Manifest{}, fmt.Errorf("evidence: %w", err)
	}
	progress(StageSign, total)
	return m, nil
}

// prepareDir creates dir, or accepts it when it exists and is empty: a pack
// must hold nothing its manifest does not list.
func prepareDir(dir string) error {
	if dir == "" {
		return errors.New("evidence: an output directory is required")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("evidence: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("evidence: %s is not empty; a pack must hold only its own files", dir)
	}
	return nil
}
