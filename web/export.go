package web

import (
	"archive/zip"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
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

// export checks the form and starts the export as a background job (see
// exportJobs), then sends the DPO to the job's page. Identities only when
// ticked; the request is recorded in the view log and (by evidence.Export)
// in the store's audit trail before anything is read.
func (s *Server) export(w http.ResponseWriter, r *http.Request, ss *session) {
	if !ss.p.canExport() {
		s.notFound(w, r, ss)
		return
	}
	req := exportRequest{DPIA: r.PostFormValue("dpia"), From: r.PostFormValue("from"), To: r.PostFormValue("to"), Identities: r.PostFormValue("identities") == "yes"}
	d := exportData{page: s.pageFor(ss, "Export evidence", "evidence"), DPIAs: s.exportDPIAs(ss.p, req.DPIA), From: req.From, To: req.To, Identities: req.Identities}
	e := s.o.Evidence
	if e == nil || e.Config == nil || e.Source == nil || e.Key == nil {
		s.renderExport(w, r, http.StatusConflict, d)
		return
	}
	if d.Errors = s.exportErrors(d.DPIAs, req); d.Errors != nil {
		s.renderExport(w, r, http.StatusBadRequest, d)
		return
	}
	target := req.DPIA + " " + req.From + ".." + req.To
	if req.Identities {
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
	name := fmt.Sprintf("dpiawatch-evidence-%s-%s-%s.zip", req.DPIA, req.From, req.To)
	user := ss.p.User
	j, err := s.exports.start(user, name, tmp, req, func(ctx context.Context, j *exportJob) (string, error) {
		return s.runExport(ctx, e, user, tmp, req, j.progress)
	})
	if err != nil {
		_ = os.RemoveAll(tmp)
		s.exportBusy(w, r, ss, j, err)
		return
	}
	http.Redirect(w, r, "/evidence/jobs/"+url.PathEscape(j.id), http.StatusSeeOther)
}

// exportErrors is what is wrong with an export form.
func (s *Server) exportErrors(dpias []option, req exportRequest) []formError {
	if !slices.ContainsFunc(dpias, func(o option) bool { return o.Value == req.DPIA }) {
		return []formError{{Field: "dpia", Message: "Choose a DPIA"}}
	}
	f, err1 := time.Parse(time.DateOnly, req.From)
	t, err2 := time.Parse(time.DateOnly, req.To)
	switch {
	case err1 != nil:
		return []formError{{Field: "from", Message: "Enter the first day of the period as YYYY-MM-DD, for example 2026-01-01"}}
	case err2 != nil:
		return []formError{{Field: "to", Message: "Enter the last day of the period as YYYY-MM-DD, for example 2026-03-31"}}
	case t.Before(f):
		return []formError{{Field: "to", Message: "The last day must be the same as or after the first day"}}
	case t.Sub(f) >= evidence.MaxDays*24*time.Hour:
		return []formError{{Field: "to", Message: fmt.Sprintf("The period must be at most %d days", evidence.MaxDays)}}
	}
	return nil
}

// exportBusy answers a form that could not start a job: the user's own
// export is still running (a link to it), or too many are.
func (s *Server) exportBusy(w http.ResponseWriter, r *http.Request, ss *session, running *exportJob, err error) {
	if errors.Is(err, errExportRunning) && running != nil {
		s.errorPage(w, r, ss, http.StatusConflict, errorData{Heading: "Your previous export is still running",
			Message: "One export at a time: wait for it to finish, then start the next.",
			Back:    "/evidence/jobs/" + url.PathEscape(running.id), BackLabel: "See its progress"})
		return
	}
	s.errorPage(w, r, ss, http.StatusServiceUnavailable, errorData{Heading: "Too many exports are running",
		Message: "Other exports are being made. Try again in a minute.", Back: "/evidence", BackLabel: "Back to the export form"})
}

// runExport is a job's work: evidence.Export into dir/pack, then the zip
// beside it. It returns the zip's path.
func (s *Server) runExport(ctx context.Context, e *EvidenceOptions, user, dir string, req exportRequest, progress func(string, int, int)) (string, error) {
	pack := filepath.Join(dir, "pack")
	_, err := evidence.Export(ctx, evidence.ExportOptions{
		Options: evidence.Options{Config: e.Config, DPIA: req.DPIA, From: req.From, To: req.To, Source: e.Source,
			Identities: req.Identities, Pseudonym: e.Pseudonym, Progress: progress},
		Dir: pack, Key: e.Key, Store: e.StoreKind, Generator: e.Generator, RequestedBy: user, Now: s.o.Now,
	})
	if err == nil {
		err = zipFile(filepath.Join(dir, "pack.zip"), pack, s.o.Now())
	}
	outcome := "success"
	if err != nil {
		outcome = "failure"
		s.log.Error("web evidence export failed", "dpia", req.DPIA, "from", req.From, "to", req.To, "err", err)
	} else {
		s.log.Info("web evidence export", "dpia", req.DPIA, "from", req.From, "to", req.To, "identities", req.Identities)
	}
	s.m.exports.WithLabelValues(strconv.FormatBool(req.Identities), outcome).Inc()
	_ = os.RemoveAll(pack) // the zip holds it
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "pack.zip"), nil
}

// zipFile writes the pack in dir as the zip file path.
func zipFile(path, dir string, at time.Time) error {
	zf, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("zip evidence pack: %w", err)
	}
	if err := zipDir(zf, dir, at); err != nil {
		_ = zf.Close()
		return err
	}
	if err := zf.Close(); err != nil {
		return fmt.Errorf("zip evidence pack: %w", err)
	}
	return nil
}

type exportJobData struct {
	page
	exportJobView
	Req         exportRequest
	URL         string
	DownloadURL string
	FileName    string
	Expires     string
}

// exportJob shows a job's progress (the page refreshes itself while it
// runs), then the download. Only the user who started it sees it.
func (s *Server) exportJob(w http.ResponseWriter, r *http.Request, ss *session) {
	j, ok := s.userJob(ss, r.PathValue("id"))
	if !ok {
		s.notFound(w, r, ss)
		return
	}
	v := j.view()
	d := exportJobData{page: s.pageFor(ss, "Export evidence", "evidence"), exportJobView: v, Req: j.desc,
		URL: "/evidence/jobs/" + url.PathEscape(j.id), FileName: j.name}
	d.DownloadURL = d.URL + "/download"
	if v.Running {
		d.Refresh = 2
	} else {
		j.mu.Lock()
		d.Expires = j.finished.Add(exportJobTTL).In(s.dpiaLoc(j.desc.DPIA)).Format("15:04")
		j.mu.Unlock()
	}
	s.render(w, r, http.StatusOK, "export_job", d)
}

// exportDownload serves a finished job's zip to the user who started it.
func (s *Server) exportDownload(w http.ResponseWriter, r *http.Request, ss *session) {
	j, ok := s.userJob(ss, r.PathValue("id"))
	if !ok {
		s.notFound(w, r, ss)
		return
	}
	v := j.view()
	if v.Zip == "" {
		http.Redirect(w, r, "/evidence/jobs/"+url.PathEscape(j.id), http.StatusSeeOther)
		return
	}
	f, err := os.Open(v.Zip)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+j.name+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// dpiaLoc is the timezone of the DPIA's first org (evidence.Build requires
// its orgs to share one).
func (s *Server) dpiaLoc(dpiaID string) *time.Location {
	for _, o := range s.o.Orgs {
		if o.DPIA == dpiaID {
			return s.loc(o.ID)
		}
	}
	return s.loc("")
}

// userJob is the job id when it is the session user's, who may export.
func (s *Server) userJob(ss *session, id string) (*exportJob, bool) {
	if !ss.p.canExport() {
		return nil, false
	}
	return s.exports.get(ss.p.User, id)
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
