package web

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/routineaudit"
)

// A manager's review of a routine-audit sample: what each sampled access
// was, in the words a manager judges by, and the one form that records a
// decision per access.

// reviewChoices are the review outcomes in the order the form offers them:
// the question a manager answers is "was this access reasonable?".
var reviewChoices = []string{routineaudit.ReviewReasonable, routineaudit.ReviewRefer, routineaudit.ReviewQuery}

// choiceLabel is the form's answer for outcome o.
func choiceLabel(o string) string {
	switch o {
	case routineaudit.ReviewReasonable:
		return "Reasonable"
	case routineaudit.ReviewRefer:
		return "Not reasonable: refer to the IG team"
	case routineaudit.ReviewQuery:
		return "Cannot tell: I will ask the worker"
	}
	return o
}

// actionVerbs put CONTRACT §1's actions in words.
var actionVerbs = map[string]string{
	"view": "Viewed", "search": "Searched", "create": "Created", "update": "Updated", "delete": "Deleted",
	"export": "Exported", "print": "Printed", "share": "Shared", "login": "Signed in", "login_failed": "Failed to sign in",
	"logout": "Signed out", "lock": "Locked the screen", "unlock": "Unlocked the screen", "timeout": "Session timed out",
}

// words turns an identifier ("care-plan", "key_worker") into words.
func words(id string) string { return strings.NewReplacer("-", " ", "_", " ").Replace(id) }

// accessWords says what an access did: "Viewed care plan".
func accessWords(action, record string) string {
	verb := cmp.Or(actionVerbs[action], words(action))
	if record == "" {
		return verb
	}
	return verb + " " + words(record)
}

// capitalise upper-cases the first letter of s (ASCII reference values).
func capitalise(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] }

// accessContext is what the reference data in force says about one
// sampled access: whom it was about, as the viewer may see them, and the
// worker's relationship to them and shift at the time.
type accessContext struct {
	Person       string
	PersonIsRef  bool   // Person is subjects.csv's display reference
	PersonHint   string // what Person is when it is not plain
	WorkerRole   string
	Relationship string // "" when no reference data is in force
	Shift        string
}

// sampleContext describes item it of team's sample for p. The person is
// shown by their local reference (subjects.csv) only to someone entitled
// to it: the IG team, who investigate, and a manager one of whose teams
// had a relationship with the person when the access was made (a team
// row, or the sampled worker's own — the worker is a member of the
// sampled team, which is the manager's). Everyone else sees what
// Server.subject shows them: the DPO the subject id, a manager a
// pseudonym. The reference is never put anywhere but this page.
func (s *Server) sampleContext(p Principal, x ReferenceIndex, org, team string, it routineaudit.SampleItem) accessContext {
	c := accessContext{Person: s.subject(p, it.SubjectID)}
	if p.Role == RoleManager && it.SubjectID != "" {
		c.PersonHint = "pseudonym"
	}
	if x == nil {
		return c
	}
	workerTeam := team
	if st, ok := x.Staff(org, it.ActorID); ok {
		c.WorkerRole = words(st.Role)
		workerTeam = cmp.Or(st.Team, team)
	}
	if it.SubjectID != "" {
		rel, related := x.RelationshipAt(org, it.ActorID, workerTeam, it.SubjectID, it.Time)
		switch {
		case related && rel.ActorID != "":
			c.Relationship = capitalise(cmp.Or(words(rel.Relation), "allocated")) + " (the worker's own)"
		case related:
			c.Relationship = "Team caseload (" + rel.Team + ")"
			if rel.Relation != "" && rel.Relation != "caseload" && rel.Relation != "case" {
				c.Relationship += ": " + words(rel.Relation)
			}
		case x.HasRelationships(org):
			c.Relationship = "None on record at the time"
		default:
			c.Relationship = "Not known: no relationships are loaded"
		}
		if ref, ok := s.localRef(p, x, org, it.SubjectID, it.Time, related && rel.ActorID != ""); ok {
			c.Person, c.PersonIsRef, c.PersonHint = ref, true, "local reference"
		}
	}
	switch sh, ok := x.ShiftAt(org, it.ActorID, it.Time, 0); {
	case ok:
		c.Shift = "On shift, " + s.span(org, sh.Start, sh.End)
	case x.HasShifts(org, it.ActorID):
		c.Shift = "Outside their rostered shifts"
	default:
		c.Shift = "No shift rostered"
	}
	return c
}

// localRef is how p is shown the person subjectID by their local reference
// (subjects.csv) for an access at time at: the reference, with the subject
// id beside it for a role that sees ids. false when there is no reference
// data, the person has no reference in org, or p is not entitled to it
// (entitledToRef). ownRow is whether the worker who made the access had
// their own relationship with the person at the time.
func (s *Server) localRef(p Principal, x ReferenceIndex, org, subjectID string, at time.Time, ownRow bool) (string, bool) {
	if x == nil || subjectID == "" {
		return "", false
	}
	ref, ok := x.SubjectRef(org, subjectID)
	if !ok || !s.entitledToRef(p, x, org, subjectID, at, ownRow) {
		return "", false
	}
	if p.seesSubjects() {
		ref += " (" + subjectID + ")"
	}
	return ref, true
}

// entitledToRef: who may see a person's local reference (sampleContext,
// and the alert page's person and timeline). The IG team always; a manager
// when the worker who made the access at time at had their own
// relationship with the person then (ownRow; the worker is in a team the
// manager's page is scoped to) or one of the manager's teams had one;
// nobody else.
func (s *Server) entitledToRef(p Principal, x ReferenceIndex, org, subjectID string, at time.Time, ownRow bool) bool {
	switch p.Role {
	case RoleIGTeam:
		return true
	case RoleManager:
		if ownRow {
			return true
		}
		return slices.ContainsFunc(p.Teams, func(team string) bool {
			_, ok := x.RelationshipAt(org, "", team, subjectID, at)
			return ok
		})
	}
	return false
}

// span is a shift's start and end in the org's zone: "07:00–15:00", or
// with the days when it crosses midnight.
func (s *Server) span(org string, from, to time.Time) string {
	loc := s.loc(org)
	from, to = from.In(loc), to.In(loc)
	if from.YearDay() == to.YearDay() && from.Year() == to.Year() {
		return from.Format("15:04") + "–" + to.Format("15:04")
	}
	return from.Format("Mon 15:04") + " to " + to.Format("Mon 15:04")
}

// itemForm is what the review form held for one access.
type itemForm struct{ Outcome, Note string }

// reviewForm is a submitted review form, by item, and what was wrong
// with it; nil Items: the form as stored.
type reviewForm struct {
	Items  map[int]itemForm
	Errors []formError
}

// reviewField is the id of the first outcome radio of item n.
func reviewField(n int) string { return "review-" + strconv.Itoa(n) + "-0" }

// readReviewForm reads one decision per sampled access from r and returns
// the reviews that change something (a first decision, or a different
// outcome or note), and the form with its errors. An access left without
// a decision is skipped: partial saves are allowed.
func readReviewForm(r *http.Request, items []routineaudit.SampleItem, latest map[int]routineaudit.Review) ([]itemForm, []int, reviewForm) {
	form := reviewForm{Items: map[int]itemForm{}}
	var changed []itemForm
	var ns []int
	decided := false
	for _, it := range items {
		n := strconv.Itoa(it.N)
		f := itemForm{Outcome: r.PostFormValue("outcome-" + n), Note: strings.TrimSpace(r.PostFormValue("note-" + n))}
		errs := noteErrors("note-"+n, f.Note, nil)
		f.Note = strings.ToValidUTF8(f.Note, "\uFFFD")
		form.Items[it.N] = f
		switch {
		case f.Outcome == "" && f.Note != "":
			errs = append([]formError{{Field: reviewField(it.N), Message: fmt.Sprintf("Choose a decision for access %d, or clear its note", it.N+1)}}, errs...)
		case f.Outcome != "" && !slices.Contains(routineaudit.ReviewOutcomes, f.Outcome):
			errs = append([]formError{{Field: reviewField(it.N), Message: fmt.Sprintf("Choose reasonable, not reasonable or cannot tell for access %d", it.N+1)}}, errs...)
		}
		form.Errors = append(form.Errors, errs...)
		if f.Outcome == "" {
			continue
		}
		decided = true
		if rv, ok := latest[it.N]; !ok || rv.Outcome != f.Outcome || rv.Note != f.Note {
			changed, ns = append(changed, f), append(ns, it.N)
		}
	}
	if !decided && len(form.Errors) == 0 && len(items) > 0 {
		form.Errors = []formError{{Field: reviewField(items[0].N), Message: "Choose a decision for at least one access"}}
	}
	return changed, ns, form
}
