// Package triage is what the IG team decides about an alert: the decision
// (acknowledged, explained, confirmed misuse, false positive), who made it,
// when and where (Slack, the web UI, the alerting API), and the follow-up
// action it calls for (owner, due date, open or done). The newest decision
// is the alert's status. Stores keep decisions (store.Triages) and the
// notes managers add about their own teams' alerts (store.AlertNotes);
// alerting, the web UI and the evidence export read them.
package triage

import "time"

// Triage outcomes: what the IG team decided about an alert.
const (
	Acknowledged    = "acknowledged"     // seen, being looked at
	Explained       = "explained"        // a legitimate reason exists
	ConfirmedMisuse = "confirmed-misuse" // inappropriate access
	FalsePositive   = "false-positive"   // the check was wrong
)

// Outcomes lists the outcomes (also the fixed metric label set).
var Outcomes = []string{Acknowledged, Explained, ConfirmedMisuse, FalsePositive}

// Open is the status of an alert no decision has been recorded for.
const Open = "open"

// labels are the words people read for each status: the web UI and the
// evidence pack both take them from here, so that the board reads the
// same word the IG team clicked.
var labels = map[string]string{
	Open:            "Open",
	Acknowledged:    "Acknowledged",
	Explained:       "Explained (legitimate reason)",
	ConfirmedMisuse: "Confirmed misuse",
	FalsePositive:   "False positive",
}

// Label is an outcome, or Open, in the words the UI shows; an unknown
// outcome is shown as it is.
func Label(outcome string) string {
	if l, ok := labels[outcome]; ok {
		return l
	}
	return outcome
}

// Decision is one triage decision about an alert. Seq orders triages (assigned by
// the store); the newest one is the alert's status.
type Decision struct {
	Seq     int64     `json:"seq"`
	AlertID string    `json:"alert_id"`
	Outcome string    `json:"outcome"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Note    string    `json:"note,omitempty"`
	Source  string    `json:"source"` // "slack" or "api"
	// Action is the follow-up the decision calls for. Writing, nil leaves
	// the alert's action as the previous decision recorded it (Slack and
	// the API never set one) and a zero Action clears it; reading, nil is
	// no action.
	Action *Action `json:"action,omitempty"`
}

// Action statuses.
const (
	ActionOpen = "open"
	ActionDone = "done"
)

// MaxOwnerRunes bounds an action's owner: a name or a role, not a story.
const MaxOwnerRunes = 100

// Action is who follows an alert up, by when, and whether they have. The
// owner is the controller's staff (a name or a role), never a data
// subject.
type Action struct {
	Owner string `json:"owner,omitempty"`
	// Due is a calendar day in the org's local time, "YYYY-MM-DD"; ""
	// when none was set. A day, not an instant: "due 12 Jan" means the
	// same in winter and summer.
	Due    string `json:"due,omitempty"`
	Status string `json:"status,omitempty"` // ActionOpen or ActionDone
}

// IsZero reports whether a records no action.
func (a *Action) IsZero() bool { return a == nil || (a.Owner == "" && a.Due == "") }

// Overdue reports whether a is open past its due day; today is the local
// day "YYYY-MM-DD" (dates in that form compare as strings).
func (a *Action) Overdue(today string) bool {
	return !a.IsZero() && a.Status != ActionDone && a.Due != "" && a.Due < today
}

// ActionLabel is an action status in the words the UI and the pack show.
func ActionLabel(status string) string {
	switch status {
	case ActionDone:
		return "Done"
	case ActionOpen, "":
		return "Open"
	}
	return status
}

// MaxNoteRunes bounds a manager's note on an alert.
const MaxNoteRunes = 1000

// Note is context a manager added to an alert about a worker in one of
// their teams ("expected, covering a colleague"). It is not a decision:
// it changes no status. Seq orders notes (assigned by the store).
type Note struct {
	Seq     int64     `json:"seq"`
	AlertID string    `json:"alert_id"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Text    string    `json:"text"`
}
