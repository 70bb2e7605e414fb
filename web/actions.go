package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/triage"
)

// actionView is a triage action as the alert page and the queue show it.
type actionView struct {
	Owner, Due, Status string
	Overdue            bool
}

// actionView formats a, judged against today in org's timezone; nil for
// no action.
func (s *Server) actionView(org string, a *triage.Action) *actionView {
	if a.IsZero() {
		return nil
	}
	v := &actionView{Owner: a.Owner, Status: triage.ActionLabel(a.Status)}
	if d, err := time.Parse(time.DateOnly, a.Due); err == nil {
		v.Due = d.Format("2 Jan 2006")
	}
	v.Overdue = a.Overdue(s.o.Now().In(s.loc(org)).Format(time.DateOnly))
	return v
}

// actionForm is the action part of the triage form, as typed.
type actionForm struct {
	Owner, Day, Month, Year, Status string
}

// actionFormOf fills the form from the alert's current action.
func actionFormOf(a *triage.Action) actionForm {
	if a.IsZero() {
		return actionForm{Status: triage.ActionOpen}
	}
	f := actionForm{Owner: a.Owner, Status: cmp.Or(a.Status, triage.ActionOpen)}
	if d, err := time.Parse(time.DateOnly, a.Due); err == nil {
		f.Day, f.Month, f.Year = strconv.Itoa(d.Day()), strconv.Itoa(int(d.Month())), strconv.Itoa(d.Year())
	}
	return f
}

// readActionForm reads the action fields of a triage submit.
func readActionForm(r *http.Request) actionForm {
	v := func(k string) string { return strings.ToValidUTF8(strings.TrimSpace(r.PostFormValue(k)), "\uFFFD") }
	return actionForm{Owner: v("owner"), Day: v("due-day"), Month: v("due-month"), Year: v("due-year"), Status: v("action_status")}
}

// Bounds of a due date: a typo of a year is caught, a long follow-up is not.
const (
	minDueYear = 2000
	maxDueYear = 2100
)

// action returns the action f records (zero: none, which clears the
// alert's) and adds to errs what is wrong with it.
func (f actionForm) action(errs []formError) (triage.Action, []formError) {
	var a triage.Action
	switch {
	case utf8.RuneCountInString(f.Owner) > triage.MaxOwnerRunes:
		errs = append(errs, formError{Field: "owner", Message: fmt.Sprintf("The action owner must be %d characters or fewer", triage.MaxOwnerRunes)})
	case strings.ContainsFunc(f.Owner, unicode.IsControl):
		errs = append(errs, formError{Field: "owner", Message: "The action owner must be a name or a role on one line"})
	default:
		a.Owner = f.Owner
	}
	if f.Day != "" || f.Month != "" || f.Year != "" {
		due, ok := parseDay(f.Day, f.Month, f.Year)
		if !ok {
			errs = append(errs, formError{Field: "due-day", Message: "The due date must be a real date, for example 27 3 2026"})
		}
		a.Due = due
	}
	if a.IsZero() {
		return triage.Action{}, errs
	}
	a.Status = cmp.Or(f.Status, triage.ActionOpen)
	if a.Status != triage.ActionOpen && a.Status != triage.ActionDone {
		errs = append(errs, formError{Field: "action-status-0", Message: "Choose whether the action is open or done"})
	}
	return a, errs
}

// parseDay reads a GOV.UK date input's three fields as "YYYY-MM-DD".
func parseDay(day, month, year string) (string, bool) {
	d, err1 := strconv.Atoi(day)
	m, err2 := strconv.Atoi(month)
	y, err3 := strconv.Atoi(year)
	if err1 != nil || err2 != nil || err3 != nil || y < minDueYear || y > maxDueYear {
		return "", false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d || int(t.Month()) != m { // 31 4 2026 is no day
		return "", false
	}
	return t.Format(time.DateOnly), true
}

// historyRow is one decision or note in an alert's history.
type historyRow struct {
	at              time.Time
	When, Who, What string
	Text            string
	Action          *actionView
	Note            bool // a manager's note, not a decision
}

// history is the alert's decisions and managers' notes, newest first.
func (s *Server) history(r *http.Request, a alertview.AlertRow) ([]historyRow, error) {
	ts, err := s.o.Store.Triages(r.Context(), a.ID)
	if err != nil {
		return nil, err
	}
	ns, err := s.o.Store.AlertNotes(r.Context(), a.ID)
	if err != nil {
		return nil, err
	}
	var out []historyRow
	for _, t := range ts {
		out = append(out, historyRow{at: t.At, When: s.fmtTime(a.Org, t.At),
			Who:  triageBy(&alertview.Triage{By: t.Actor, Source: t.Source}),
			What: outcomeLabel(t.Outcome), Text: t.Note, Action: s.actionView(a.Org, t.Action)})
	}
	for _, n := range ns {
		out = append(out, historyRow{at: n.At, When: s.fmtTime(a.Org, n.At), Who: "manager " + n.Actor, What: "Note", Text: n.Text, Note: true})
	}
	slices.SortStableFunc(out, func(x, y historyRow) int { return y.at.Compare(x.at) })
	return out, nil
}

// noteForm is what a manager's note submit held, and what was wrong with it.
type noteForm struct {
	Text   string
	Errors []formError
}

// addNote records a manager's note on an alert about their own team:
// context for the IG team, not a decision. Out of scope: not found; any
// other role: 403 (the IG team notes with its decisions).
func (s *Server) addNote(w http.ResponseWriter, r *http.Request, ss *session) {
	a, ok, err := s.scopedAlert(r.Context(), ss, r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	if !ok {
		s.notFound(w, r, ss)
		return
	}
	if !ss.p.canNote() {
		s.errorPage(w, r, ss, http.StatusForbidden, errorData{Heading: "You cannot add notes to alerts",
			Message: "Managers add notes to their teams' alerts; the IG team records a note with each decision. Nothing was changed.",
			Back:    "/alerts/" + url.PathEscape(a.ID), BackLabel: "Back to the alert"})
		return
	}
	text := strings.TrimSpace(r.PostFormValue("context-note"))
	var errs []formError
	switch {
	case !utf8.ValidString(text):
		errs = append(errs, formError{Field: "context-note", Message: "The note holds bytes that are not text: type it again"})
	case text == "":
		errs = append(errs, formError{Field: "context-note", Message: "Enter a note"})
	case utf8.RuneCountInString(text) > triage.MaxNoteRunes:
		errs = append(errs, formError{Field: "context-note", Message: fmt.Sprintf("The note must be %d characters or fewer (it has %d)",
			triage.MaxNoteRunes, utf8.RuneCountInString(text))})
	}
	if errs != nil {
		s.showAlert(w, r, ss, a, http.StatusBadRequest, alertForm{note: noteForm{Text: strings.ToValidUTF8(text, "\uFFFD"), Errors: errs}})
		return
	}
	n := triage.Note{AlertID: a.ID, Actor: ss.p.User, At: s.o.Now().UTC(), Text: text}
	if _, err := s.o.Store.AddAlertNote(r.Context(), n); err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("web alert note", "alert", a.ID) // never the text: it may name people
	http.Redirect(w, r, "/alerts/"+url.PathEscape(a.ID)+"#history", http.StatusSeeOther)
}
