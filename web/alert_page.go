package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/checkname"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

type timelineRow struct {
	Time, Action, Subject, Record, Session, Device, IP, Outcome string
	Evidence                                                    bool
	// SubjectIsRef: Subject is the person's local reference (accessRef).
	SubjectIsRef bool
}

type alertData struct {
	page
	A           alertview.AlertRow
	Subject     string
	RiskTitles  []string
	OrgName     string
	CheckName   string
	PatternName string
	FirstSeen   string
	LastSeen    string
	ActorURL    string
	Timeline    []timelineRow
	TimelineCap bool
	CanTriage   bool
	Outcomes    []option
	// Note is the triage form's note: what was typed, when the form comes
	// back with errors.
	Note string
	// Action is the follow-up the latest decision records (nil: none);
	// ActionForm and ActionStatuses fill the triage form's action fields.
	Action         *actionView
	ActionForm     actionForm
	ActionStatuses []option
	// CanNote: a manager may add a note; ContextNote is what they typed,
	// when the form comes back with errors.
	CanNote     bool
	ContextNote string
	// History is every decision and note, newest first.
	History      []historyRow
	TriagedAt    string
	TriageLabel  string
	Pseudonymous bool
	// SubjectIsRef: Subject is the person's local reference (accessRef),
	// not the id or pseudonym Server.subject shows.
	SubjectIsRef bool
	// Failures are the receivers that refused this alert for good (Slack's
	// msg_too_long …), each with a Re-send action for the IG team.
	Failures []failureRow
	// Reference is what the reference data in force said about the worker
	// and the person ("no relationship; nearest: …" made visible).
	Reference *referenceView
}

type failureRow struct {
	Receiver, Reason, At string
	Version              int64
}

type referenceView struct {
	LoadedAt string
	// Judged: the snapshot is the data the check judged against (the
	// alert's ReferenceID); otherwise the one in force at the episode's
	// start, for alerts stored before alerts named their data.
	Judged        bool
	Worker        string
	Relationships []relationRow
	// Shifts and Absences are the worker's rows in force when the episode
	// began.
	Shifts   []string
	Absences []string
}

type relationRow struct {
	Who, Relation, From, To string
	InForce                 bool
}

// timelineWindow is how much context around the episode the timeline shows:
// the session that led to it, and what followed.
const (
	timelineWindow = 30 * time.Minute
	timelineMax    = 400
)

func (s *Server) scopedAlert(ctx context.Context, ss *session, id string) (alertview.AlertRow, bool, error) {
	a, err := s.o.Store.WebAlert(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return alertview.AlertRow{}, false, nil
	}
	if err != nil {
		return alertview.AlertRow{}, false, err
	}
	return a, ss.p.inScope(a.Org, a.Team), nil
}

func (s *Server) alertPage(w http.ResponseWriter, r *http.Request, ss *session) {
	a, ok, err := s.scopedAlert(r.Context(), ss, r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	if !ok {
		s.notFound(w, r, ss)
		return
	}
	s.showAlert(w, r, ss, a, http.StatusOK, alertForm{})
}

// triageForm is what a triage submit held, and what was wrong with it.
type triageForm struct {
	Outcome, Note string
	Action        actionForm
	Errors        []formError
}

// alertForm is the form of the alert page that came back with errors, if
// any: the IG team's triage or a manager's note.
type alertForm struct {
	triage triageForm
	note   noteForm
}

// showAlert renders the alert page; with a form that has errors, that
// form comes back as it was sent, with an error summary.
func (s *Server) showAlert(w http.ResponseWriter, r *http.Request, ss *session, a alertview.AlertRow, code int, af alertForm) {
	var err error
	d := alertData{page: s.pageFor(ss, "Alert", "alerts"), A: a, Subject: s.subject(ss.p, a.SubjectID),
		FirstSeen: s.fmtTime(a.Org, a.FirstSeen), LastSeen: s.fmtTime(a.Org, a.LastSeen),
		ActorURL: s.actorURL(ss.p, a.Org, a.ActorID), CanTriage: ss.p.canTriage(), Pseudonymous: !ss.p.seesSubjects()}
	var x ReferenceIndex
	if s.o.InForce != nil {
		x = s.o.InForce()
	}
	if ref, ok := s.accessRef(ss.p, x, a.Org, a.ActorID, a.SubjectID, a.FirstSeen); ok {
		d.Subject, d.SubjectIsRef = ref, true
	}
	d.RiskTitles = s.riskTitles(a.Alert)
	d.OrgName, d.CheckName, d.PatternName = cmp.Or(s.orgs[a.Org].Name, a.Org), checkname.Check(a.Check), checkname.Pattern(a.Pattern)
	s.fillTriage(&d, a, af.triage)
	d.CanNote, d.ContextNote = ss.p.canNote(), af.note.Text
	if af.note.Errors != nil {
		d.Errors = af.note.Errors
	}
	if d.History, err = s.history(r, a); err != nil {
		s.fail(w, err)
		return
	}
	fs, err := s.o.Store.DeliveryFailures(r.Context(), a.ID)
	if err != nil {
		s.fail(w, err)
		return
	}
	for _, f := range fs {
		d.Failures = append(d.Failures, failureRow{Receiver: f.Receiver, Reason: f.Reason, At: s.fmtTime(a.Org, f.At), Version: f.Version})
	}
	if d.Reference, err = s.referenceView(r.Context(), a.Alert); err != nil {
		s.fail(w, err)
		return
	}
	evidence := map[string]bool{}
	for _, id := range a.EventIDs {
		evidence[id] = true
	}
	err = s.o.Store.ScanEvents(r.Context(), store.EventFilter{Org: a.Org, ActorID: a.ActorID,
		From: a.FirstSeen.Add(-timelineWindow), To: a.LastSeen.Add(timelineWindow + time.Nanosecond)}, func(e event.Event) error {
		if len(d.Timeline) >= timelineMax {
			d.TimelineCap = true
			return errStop
		}
		d.Timeline = append(d.Timeline, s.timelineRow(ss.p, x, e, evidence[e.ID]))
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		s.fail(w, err)
		return
	}
	if !s.recordView(w, r, ss, viewlog.KindAlert, a.Org, a.ID, len(d.Timeline)) {
		return
	}
	s.render(w, r, code, "alert", d)
}

// fillTriage fills the alert's status and action, and the triage form:
// the alert's current decision and action, or what was sent when form
// came back with errors.
func (s *Server) fillTriage(d *alertData, a alertview.AlertRow, form triageForm) {
	chosen, act := form.Outcome, form.Action
	if a.Triage != nil {
		d.TriagedAt = s.fmtTime(a.Org, a.Triage.At)
		d.TriageLabel = outcomeLabel(a.Triage.Outcome)
		d.Action = s.actionView(a.Org, a.Triage.Action)
	}
	if form.Errors == nil {
		chosen, act = "", actionFormOf(nil)
		if a.Triage != nil {
			chosen, act = a.Triage.Outcome, actionFormOf(a.Triage.Action)
		}
	}
	for _, o := range TriageOutcomes {
		d.Outcomes = append(d.Outcomes, option{Value: o, Label: outcomeLabel(o), Selected: chosen == o})
	}
	d.ActionForm = act
	for _, st := range []string{triage.ActionOpen, triage.ActionDone} {
		d.ActionStatuses = append(d.ActionStatuses, option{Value: st, Label: triage.ActionLabel(st), Selected: act.Status == st})
	}
	d.Note, d.Errors = form.Note, form.Errors
}

var errStop = errors.New("stop")

// maxRelations bounds the relationships the alert page lists.
const maxRelations = 8

// referenceView looks up, in the reference data the alert was judged
// against, the worker's staff record, every relationship to the person (in
// force or not, nearest first) and the worker's shifts and absences in
// force when the episode began. The snapshot is the one the alert names;
// for an alert that names none (stored before alerts did), or one the store
// no longer has, the one loaded at or before the episode's start. nil when
// there is no lookup, no snapshot, or nothing to say.
func (s *Server) referenceView(ctx context.Context, a alert.Alert) (*referenceView, error) {
	if s.o.Reference == nil || a.ActorID == "" {
		return nil, nil
	}
	// Events are judged after they happen (in a catch-up or the demo, long
	// after): the snapshot loaded at the event's time is often none at all,
	// or not the data the check used.
	judged := a.ReferenceID != ""
	var snap store.ReferenceSnapshot
	err := store.ErrNotFound
	if judged {
		snap, err = s.o.Reference.ReferenceByID(ctx, a.ReferenceID)
	}
	if errors.Is(err, store.ErrNotFound) {
		judged = false
		snap, err = s.o.Reference.ReferenceAt(ctx, a.FirstSeen)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if snap.Data == nil {
		return nil, nil
	}
	loc := s.loc(a.Org)
	day := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format("2 Jan 2006")
	}
	v := &referenceView{LoadedAt: s.fmtTime(a.Org, snap.LoadedAt), Judged: judged}
	for _, st := range snap.Data.Staff {
		if st.ActorID != a.ActorID || (st.Org != "" && st.Org != a.Org) {
			continue
		}
		v.Worker = cmp.Or(st.Role, "worker")
		if st.Team != "" {
			v.Worker += " in team " + st.Team
		}
		if st.External {
			v.Worker += " (external" + map[bool]string{true: ", " + st.Org, false: ""}[st.Org != ""] + ")"
		}
		if !st.ActiveTo.IsZero() {
			v.Worker += ", active until " + day(st.ActiveTo)
		}
	}
	if a.SubjectID != "" {
		rels := slices.Clone(snap.Data.Relationships)
		rels = slices.DeleteFunc(rels, func(r reference.Relationship) bool { return r.SubjectID != a.SubjectID })
		// Nearest first: in force, then by distance from the alert.
		dist := func(r reference.Relationship) time.Duration {
			switch {
			case a.FirstSeen.Before(r.ValidFrom):
				return r.ValidFrom.Sub(a.FirstSeen)
			case !r.ValidTo.IsZero() && !a.FirstSeen.Before(r.ValidTo):
				return a.FirstSeen.Sub(r.ValidTo)
			}
			return 0
		}
		slices.SortStableFunc(rels, func(x, y reference.Relationship) int { return cmp.Compare(dist(x), dist(y)) })
		for _, r := range rels[:min(len(rels), maxRelations)] {
			who := "team " + r.Team
			if r.ActorID != "" {
				who = "worker " + r.ActorID
				if r.ActorID == a.ActorID {
					who = "this worker"
				}
			}
			v.Relationships = append(v.Relationships, relationRow{Who: who, Relation: cmp.Or(r.Relation, "relationship"),
				From: day(r.ValidFrom), To: day(r.ValidTo), InForce: dist(r) == 0})
		}
	}
	// The worker's rota and absences at the episode's start: what the
	// out-of-hours and used-while-absent checks weighed.
	at := a.FirstSeen
	for _, sh := range snap.Data.Shifts {
		if sh.ActorID == a.ActorID && !at.Before(sh.Start) && at.Before(sh.End) && len(v.Shifts) < maxRelations {
			v.Shifts = append(v.Shifts, s.fmtTime(a.Org, sh.Start)+" to "+s.fmtTime(a.Org, sh.End))
		}
	}
	for _, ab := range snap.Data.Absences {
		if ab.ActorID == a.ActorID && !at.Before(ab.Start) && (ab.End.IsZero() || at.Before(ab.End)) && len(v.Absences) < maxRelations {
			r := cmp.Or(ab.Kind, "absence") + " from " + day(ab.Start)
			if !ab.End.IsZero() {
				r += " until " + day(ab.End)
			}
			v.Absences = append(v.Absences, r)
		}
	}
	if v.Worker == "" && len(v.Relationships) == 0 && len(v.Shifts) == 0 && len(v.Absences) == 0 && a.SubjectID == "" {
		return nil, nil
	}
	return v, nil
}

// accessRef is localRef for an access by actorID at time at: the person's
// local reference for a viewer entitled to it by the rule samples follow
// (entitledToRef), the worker's own relationship with the person at the
// time counting as a sampled worker's does. The alert page shows it for
// the alert's person at the episode's start and for each timeline row's at
// the row's time; it is never put anywhere but the page.
func (s *Server) accessRef(p Principal, x ReferenceIndex, org, actorID, subjectID string, at time.Time) (string, bool) {
	if x == nil || subjectID == "" {
		return "", false
	}
	own := false
	if actorID != "" {
		_, own = x.RelationshipAt(org, actorID, "", subjectID, at)
	}
	return s.localRef(p, x, org, subjectID, at, own)
}

// timelineRow is event e as a row of the alert page's timeline for p; x
// is the reference data in force (nil: none).
func (s *Server) timelineRow(p Principal, x ReferenceIndex, e event.Event, evidence bool) timelineRow {
	t := timelineRow{Time: e.Time.In(s.loc(e.Org)).Format("Mon 2 Jan 15:04:05"), Action: string(e.Action),
		Subject: s.subject(p, e.Subject.ID), Device: e.Session.Device, Outcome: string(e.Outcome), Evidence: evidence}
	if ref, ok := s.accessRef(p, x, e.Org, e.Actor.ID, e.Subject.ID, e.Time); ok {
		t.Subject, t.SubjectIsRef = ref, true
	}
	t.Record = e.Record.Type
	if p.seesSubjects() && e.Record.ID != "" {
		t.Record += " " + e.Record.ID
	}
	if p.seesSubjects() {
		t.Session, t.IP = e.Session.ID, e.Session.IP
	}
	return t
}

// recordView writes the view log before the page or export is sent: a
// view that cannot be recorded is not shown. rows is viewlog.View.Rows.
func (s *Server) recordView(w http.ResponseWriter, r *http.Request, ss *session, kind, org, target string, rows int) bool {
	err := s.o.Store.WebRecordView(r.Context(), viewlog.View{At: s.o.Now().UTC(), User: ss.p.User, Role: ss.p.Role, Kind: kind, Org: org, Target: target, Rows: rows})
	if err != nil {
		s.fail(w, err)
		return false
	}
	s.m.views.WithLabelValues(kind).Inc()
	return true
}

// alertForTriager returns the alert the request names when it is in the
// session's scope and the session may triage; otherwise it has answered
// (404 out of scope, 403 for a role that cannot do what).
func (s *Server) alertForTriager(w http.ResponseWriter, r *http.Request, ss *session, what string) (alertview.AlertRow, bool) {
	a, ok, err := s.scopedAlert(r.Context(), ss, r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return a, false
	}
	if !ok {
		s.notFound(w, r, ss)
		return a, false
	}
	if !ss.p.canTriage() {
		s.errorPage(w, r, ss, http.StatusForbidden, errorData{Heading: "You cannot " + what,
			Message: "Only the IG team can " + what + ". Nothing was changed.", Back: "/alerts/" + url.PathEscape(a.ID), BackLabel: "Back to the alert"})
		return a, false
	}
	return a, true
}

func (s *Server) triage(w http.ResponseWriter, r *http.Request, ss *session) {
	a, ok := s.alertForTriager(w, r, ss, "triage alerts")
	if !ok {
		return
	}
	outcome, note := r.PostFormValue("outcome"), strings.TrimSpace(r.PostFormValue("note"))
	af := readActionForm(r)
	errs := noteErrors("note", note, triageOutcomeError("outcome-0", outcome, TriageOutcomes))
	act, errs := af.action(errs)
	if errs != nil {
		// The page again, with what was typed and what to fix.
		s.showAlert(w, r, ss, a, http.StatusBadRequest, alertForm{triage: triageForm{Outcome: outcome, Note: strings.ToValidUTF8(note, "\uFFFD"), Action: af, Errors: errs}})
		return
	}
	// The form shows the alert's action, so what it sends is the action
	// now: empty fields clear it.
	t := triage.Decision{AlertID: a.ID, Outcome: outcome, Actor: ss.p.User, At: s.o.Now().UTC(), Note: note, Source: alertview.TriageSource, Action: &act}
	if _, err := s.o.Store.AddTriage(r.Context(), t); err != nil {
		s.fail(w, err)
		return
	}
	if f := s.onTriage.Load(); f != nil && *f != nil {
		(*f)() // Slack threads show the decision now, not at the next poll
	}
	s.log.Info("web triage", "alert", a.ID, "outcome", outcome)
	http.Redirect(w, r, "/alerts/"+url.PathEscape(a.ID), http.StatusSeeOther)
}

// resend puts an alert a receiver refused back in that receiver's queue
// (IG team only; audited in the store with the change).
func (s *Server) resend(w http.ResponseWriter, r *http.Request, ss *session) {
	a, ok := s.alertForTriager(w, r, ss, "re-send alerts")
	if !ok {
		return
	}
	receiver := r.PostFormValue("receiver")
	detail, _ := json.Marshal(map[string]any{"receiver": receiver, "version": a.Version})
	audit := audit.Entry{At: s.o.Now().UTC(), Actor: ss.p.User, Action: "alert.resend", Object: a.ID, Detail: string(detail)}
	err := s.o.Store.Resend(r.Context(), receiver, a.ID, audit)
	if errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, ss, http.StatusBadRequest, errorData{Heading: "Nothing to re-send",
			Message: "That receiver has no failed delivery of this alert to re-send: it may have been re-sent already.",
			Back:    "/alerts/" + url.PathEscape(a.ID), BackLabel: "Back to the alert"})
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if f := s.onTriage.Load(); f != nil && *f != nil {
		(*f)() // deliver now, not at the next poll
	}
	s.log.Info("web alert re-sent", "alert", a.ID, "receiver", receiver)
	http.Redirect(w, r, "/alerts/"+url.PathEscape(a.ID), http.StatusSeeOther)
}
