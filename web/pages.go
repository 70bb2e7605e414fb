package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/visible"
)

// page is what every template gets.
type page struct {
	Title string
	CSRF  string
	User  *Principal
	Nav   string
	// CanViewLog and CanExport decide which links the header shows.
	CanViewLog bool
	CanExport  bool
	// Errors are the form's errors: the layout shows them as a GOV.UK
	// error summary, each linked to its field, and the title says Error.
	Errors []formError
	// Refresh, when above 0, reloads the page every Refresh seconds
	// without JavaScript (app.js polls instead where it runs).
	Refresh int
}

// formError is one entry of an error summary: what is wrong, and the id of
// the field it is about (the summary links there).
type formError struct {
	Field, Message string
}

// fieldError is the message about field, "" when none.
func (p page) FieldError(field string) string {
	for _, e := range p.Errors {
		if e.Field == field {
			return e.Message
		}
	}
	return ""
}

type errorData struct {
	page
	Heading, Message string
	// Back is where to go from here, with its words.
	Back, BackLabel string
}

func (s *Server) pageFor(ss *session, title, nav string) page {
	p := ss.p
	return page{Title: title, CSRF: ss.csrf, User: &p, Nav: nav, CanViewLog: p.seesViewLog(), CanExport: p.canExport()}
}

var funcs = template.FuncMap{
	"join":   strings.Join,
	"lower":  strings.ToLower,
	"title":  func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"pct":    func(a, b int) int { return a * 100 / max(b, 1) },
	"add":    func(a, b int) int { return a + b },
	"sevTag": sevTag,
	"statusTag": func(st string) string {
		switch st {
		case alertview.StatusOpen:
			return "govuk-tag--blue"
		case OutcomeConfirmed:
			return "govuk-tag--red"
		case OutcomeFalsePositive, OutcomeExplained:
			return "govuk-tag--grey"
		}
		return "govuk-tag--yellow"
	},
	"outcomeLabel": outcomeLabel,
	"triageBy":     triageBy,
	"navItem": func(cur, name, href, label string) navLink {
		return navLink{Active: cur == name, Href: href, Label: label}
	},
}

type navLink struct {
	Active      bool
	Href, Label string
}

func sevTag(s alert.Severity) string {
	switch s {
	case alert.SeverityCritical:
		return "govuk-tag--red"
	case alert.SeverityHigh:
		return "govuk-tag--orange"
	case alert.SeverityMedium:
		return "govuk-tag--yellow"
	}
	return "govuk-tag--grey"
}

// triageBy says who recorded t and through what, so that an API client or
// a Slack user is never taken for a web user. Before API clients had names
// (issue 16), an API decision's actor was whatever the request said: it is
// shown as the shared token's statement, not as a person.
func triageBy(t *alertview.Triage) string {
	switch t.Source {
	case "api":
		if name, ok := strings.CutPrefix(t.By, "api:"); ok {
			return "API client " + name
		}
		return fmt.Sprintf("the API (shared token) stating %q", t.By)
	case "slack":
		return "Slack user " + strings.TrimPrefix(t.By, "slack:")
	case alertview.TriageSource, "":
		return "web user " + t.By
	}
	return t.By + " (" + t.Source + ")"
}

// outcomeLabel is triage.Label: the evidence pack uses the same words.
func outcomeLabel(o string) string {
	if o == alertview.StatusOpen {
		o = triage.Open
	}
	return triage.Label(o)
}

func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// render executes into a buffer first so that a template error becomes a
// clean 500 rather than half a page. The page then goes through
// visible.Text as a whole: the templates hold no hidden character, so every
// one left is data (an id stored before the boundaries refused it, a triage
// note) and is shown as [U+202E] rather than reordering the page around it
// — one place, so that no template field can forget it.
func (s *Server) render(w http.ResponseWriter, _ *http.Request, code int, name string, data any) {
	var buf bytes.Buffer
	if err := s.tmpl[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		// The one plain-text page left: the templates themselves failed.
		s.log.Error("web template failed", "template", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, visible.Text(buf.String()))
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	s.log.Error("web request failed", "err", err)
	s.errorPage(w, nil, nil, http.StatusInternalServerError, errorData{Heading: "Sorry, there is a problem with the service",
		Message: "Try again later. What you asked for was not done; the error is in the service's log."})
}

// errorPage answers a request that cannot be served with a page in the
// service's layout that says why and where to go, never plain text. ss is
// nil when nobody is signed in (or it is not known); without d.Back the
// page links to the overview, or the sign-in page.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, ss *session, code int, d errorData) {
	d.page = page{Title: d.Heading}
	if ss != nil {
		d.page = s.pageFor(ss, d.Heading, "")
	}
	switch {
	case d.Back != "":
	case ss != nil:
		d.Back, d.BackLabel = "/overview", "Go to the overview"
	default:
		d.Back, d.BackLabel = "/login", "Go to the sign-in page"
	}
	s.render(w, r, code, "error", d)
}

// notFound is also what an out-of-scope alert or actor gets: a manager
// learns nothing about other teams, not even that an alert exists.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, ss *session) {
	p := page{Title: "Page not found"}
	if ss != nil {
		p = s.pageFor(ss, "Page not found", "")
	}
	s.render(w, r, http.StatusNotFound, "notfound", p)
}

func (s *Server) loc(org string) *time.Location {
	if o, ok := s.orgs[org]; ok && o.Location != nil {
		return o.Location
	}
	return time.UTC
}

func (s *Server) fmtTime(org string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(s.loc(org)).Format("Mon 2 Jan 2006 15:04")
}

// fmtShort is fmtTime without the weekday, for the queue's ten columns.
func (s *Server) fmtShort(org string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(s.loc(org)).Format("2 Jan 2006 15:04")
}

// subject is how p may see a subject id: as is, as a pseudonym, or hidden.
func (s *Server) subject(p Principal, id string) string {
	if id == "" {
		return ""
	}
	if p.seesSubjects() {
		return id
	}
	if s.o.Pseudonym != nil {
		if ps := s.o.Pseudonym(id); ps != "" {
			return ps
		}
	}
	return "(hidden)"
}

// triageOutcomeError is the error of a form whose outcome (a radio group
// whose first radio is field) is not one of outcomes, or nil.
func triageOutcomeError(field, outcome string, outcomes []string) []formError {
	if slices.Contains(outcomes, outcome) {
		return nil
	}
	return []formError{{Field: field, Message: "Choose an outcome"}}
}

// noteErrors adds to errs what is wrong with a note typed in field.
func noteErrors(field, note string, errs []formError) []formError {
	switch {
	case !utf8.ValidString(note):
		errs = append(errs, formError{Field: field, Message: "The note holds bytes that are not text: type it again"})
	case utf8.RuneCountInString(note) > maxTriageNoteRunes:
		errs = append(errs, formError{Field: field, Message: fmt.Sprintf("The note must be %d characters or fewer (it has %d)",
			maxTriageNoteRunes, utf8.RuneCountInString(note))})
	}
	return errs
}
