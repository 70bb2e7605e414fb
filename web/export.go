package web

import (
	"archive/zip"
	"crypto/ed25519"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/evidence"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// EvidenceOptions let the DPO export a DPIA's evidence pack from the UI:
// the same evidence.Export as `dpiawatch evidence export`, served as a zip.
type EvidenceOptions struct {
	Config    *config.Config
	Source    evidence.Source
	Key       ed25519.PrivateKey // nil: the form says a signing key is needed
	StoreKind string             // "embedded" or "clickhouse", for the manifest
	Generator string             // e.g. "dpiawatch v1.2.3"
	// Pseudonym replaces actor and subject ids unless identities are
	// asked for (as the CLI's).
	Pseudonym func(kind, id string) string
	TempDir   string // where packs are built; default os.TempDir()
}

type exportData struct {
	page
	DPIAs       []option
	From, To    string
	Identities  bool
	Unavailable string
}

// exportDPIAs are the DPIAs of the orgs in p's scope.
func (s *Server) exportDPIAs(p Principal, selected string) []option {
	var out []option
	for _, o := range s.routineOrgs(p) {
		if o.DPIA == "" || slices.ContainsFunc(out, func(x option) bool { return x.Value == o.DPIA }) {
			continue
		}
		label := o.DPIA
		if reg := s.register(o.DPIA); reg != nil && reg.Title != "" {
			label += ": " + reg.Title
		}
		out = append(out, option{Value: o.DPIA, Label: label, Selected: o.DPIA == selected})
	}
	return out
}

func (s *Server) exportForm(w http.ResponseWriter, r *http.Request, ss *session) {
	if !ss.p.canExport() {
		s.notFound(w, r, ss)
		return
	}
	d := exportData{page: s.pageFor(ss, "Export evidence", "evidence"), DPIAs: s.exportDPIAs(ss.p, "")}
	// The last complete review cycle of the first DPIA (a calendar
	// quarter unless its register states another), as the CLI defaults.
	if e := s.o.Evidence; e != nil && e.Config != nil && len(d.DPIAs) > 0 {
		d.From, d.To, _ = evidence.DefaultPeriod(e.Config, d.DPIAs[0].Value, s.o.Now())
	}
	s.renderExport(w, r, http.StatusOK, d)
}

func (s *Server) renderExport(w http.ResponseWriter, r *http.Request, code int, d exportData) {
	switch e := s.o.Evidence; {
	case e == nil || e.Config == nil || e.Source == nil:
		d.Unavailable = "Evidence export is not set up for this service."
	case e.Key == nil:
		d.Unavailable = "Evidence packs are signed: set evidence.signing_key in the configuration (`dpiawatch evidence keygen` makes one)."
	}
	s.render(w, r, code, "export", d)
}

// export runs evidence.Export into a temporary directory and serves the
// pack as a zip. Identities only when ticked; the request is recorded in
// the view log and (by evidence.Export) in the store's audit trail before
// anything is read.
func (s *Server) export(w http.ResponseWriter, r *http.Request, ss *session) {
	if !ss.p.canExport() {
		s.notFound(w, r, ss)
		return
	}
	dpiaID, from, to := r.PostFormValue("dpia"), r.PostFormValue("from"), r.PostFormValue("to")
	identities := r.PostFormValue("identities") == "yes"
	d := exportData{page: s.pageFor(ss, "Export evidence", "evidence"), DPIAs: s.exportDPIAs(ss.p, dpiaID), From: from, To: to, Identities: identities}
	e := s.o.Evidence
	if e == nil || e.Config == nil || e.Source == nil || e.Key == nil {
		s.renderExport(w, r, http.StatusConflict, d)
		return
	}
	if !slices.ContainsFunc(d.DPIAs, func(o option) bool { return o.Value == dpiaID }) {
		d.Errors = []formError{{Field: "dpia", Message: "Choose a DPIA"}}
		s.renderExport(w, r, http.StatusBadRequest, d)
		return
	}
	f, err1 := time.Parse(time.DateOnly, from)
	t, err2 := time.Parse(time.DateOnly, to)
	switch {
	case err1 != nil:
		d.Errors = append(d.Errors, formError{Field: "from", Message: "Enter the first day of the period as YYYY-MM-DD, for example 2026-01-01"})
	case err2 != nil:
		d.Errors = append(d.Errors, formError{Field: "to", Message: "Enter the last day of the period as YYYY-MM-DD, for example 2026-03-31"})
	case t.Before(f):
		d.Errors = append(d.Errors, formError{Field: "to", Message: "The last day must be the same as or after the first day"})
	case t.Sub(f) >= evidence.MaxDays*24*time.Hour:
		d.Errors = append(d.Errors, formError{Field: "to", Message: fmt.Sprintf("The period must be at most %d days", evidence.MaxDays)})
	}
	if d.Errors != nil {
		s.renderExport(w, r, http.StatusBadRequest, d)
		return
	}
	target := dpiaID + " " + from + ".." + to
	if identities {
		target += " with identities"
	}
	if !s.recordView(w, r, ss, viewlog.KindEvidence, "", target, 0) {
		return
	}
	tmp, err := os.MkdirTemp(e.TempDir, "dpiawatch-evidence-")
	if err != nil {
		s.fail(w, err)
		return
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "pack")
	_, err = evidence.Export(r.Context(), evidence.ExportOptions{
		Options: evidence.Options{Config: e.Config, DPIA: dpiaID, From: from, To: to, Source: e.Source, Identities: identities, Pseudonym: e.Pseudonym},
		Dir:     dir, Key: e.Key, Store: e.StoreKind, Generator: e.Generator, RequestedBy: ss.p.User, Now: s.o.Now,
	})
	if err != nil {
		s.m.exports.WithLabelValues(strconv.FormatBool(identities), "failure").Inc()
		s.fail(w, err)
		return
	}
	zf, err := os.Create(filepath.Join(tmp, "pack.zip"))
	if err != nil {
		s.fail(w, err)
		return
	}
	defer zf.Close()
	if err := zipDir(zf, dir, s.o.Now()); err != nil {
		s.fail(w, err)
		return
	}
	if _, err := zf.Seek(0, io.SeekStart); err != nil {
		s.fail(w, err)
		return
	}
	s.m.exports.WithLabelValues(strconv.FormatBool(identities), "success").Inc()
	s.log.Info("web evidence export", "dpia", dpiaID, "from", from, "to", to, "identities", identities)
	name := fmt.Sprintf("dpiawatch-evidence-%s-%s-%s.zip", dpiaID, from, to)
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	http.ServeContent(w, r, "", time.Time{}, zf)
}

// zipDir writes every file under dir into a zip, with paths relative to it,
// each dated at (the export's time: a header without a date shows as 1979).
func zipDir(w io.Writer, dir string, at time.Time) error {
	zw := zip.NewWriter(w)
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: p, Method: zip.Deflate, Modified: at})
		if err != nil {
			return err
		}
		_, err = fw.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("zip evidence pack: %w", err)
	}
	return zw.Close()
}
