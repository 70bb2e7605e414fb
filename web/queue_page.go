package web

import (
	"cmp"
	"encoding/csv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/csvsafe"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

type option struct {
	Value, Label string
	Selected     bool
}

type queueRow struct {
	ID, Check, Pattern, Org, Team, Actor, ActorURL, Subject string
	Severity                                                alert.Severity
	Status, FirstSeen, LastSeen, Risks                      string
	Events                                                  int
}

type queueData struct {
	page
	Filters   []filter
	Rows      []queueRow
	Total     int
	Capped    bool
	ExportURL string
	Query     string
}

type filter struct {
	Name, Label string
	Options     []option
}

// queueQuery reads the filters from the URL; unknown values simply match
// nothing (they are bound parameters, never SQL).
func queueQuery(v url.Values, p Principal) alertview.AlertQuery {
	orgs, teams := p.scope()
	return alertview.AlertQuery{
		Orgs: orgs, Teams: teams,
		Org: v.Get("org"), Team: v.Get("team"), Check: v.Get("check"), Risk: v.Get("risk"),
		Severity: alert.Severity(v.Get("severity")), Status: v.Get("status"),
	}
}

func (s *Server) queue(w http.ResponseWriter, r *http.Request, ss *session) {
	v := r.URL.Query()
	q := queueQuery(v, ss.p)
	const shown = 500
	q.Limit = shown + 1
	rows, err := s.o.Store.WebAlerts(r.Context(), q)
	if err != nil {
		s.fail(w, err)
		return
	}
	// The filter options come from the alerts in scope, so a manager's
	// drop-downs never list another team.
	all, err := s.o.Store.WebAlertCounts(r.Context(), alertview.AlertQuery{Orgs: q.Orgs, Teams: q.Teams})
	if err != nil {
		s.fail(w, err)
		return
	}
	d := queueData{page: s.pageFor(ss, "Alerts", "alerts")}
	d.Capped = len(rows) > shown
	rows = rows[:min(len(rows), shown)]
	d.Total = len(rows)
	// Every role's queue lists workers' ids; the IG team's and the DPO's
	// subjects' ids too.
	if !s.recordView(w, r, ss, viewlog.KindQueue, listOrg(ss.p, q, rows), filterQuery(v), len(rows)) {
		return
	}
	for _, a := range rows {
		d.Rows = append(d.Rows, queueRow{
			ID: a.ID, Check: a.Check, Pattern: a.Pattern, Org: a.Org, Team: a.Team, Actor: a.ActorID,
			ActorURL: s.actorURL(ss.p, a.Org, a.ActorID),
			Subject:  s.subject(ss.p, a.SubjectID), Severity: a.Severity, Status: a.Status(),
			FirstSeen: s.fmtTime(a.Org, a.FirstSeen), LastSeen: s.fmtTime(a.Org, a.LastSeen),
			Risks: strings.Join(a.Risks, ", "), Events: a.EventCount,
		})
	}
	set := func(f func(alertview.AlertCount) string) []string {
		var out []string
		for _, c := range all {
			if x := f(c); x != "" && !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
		slices.Sort(out)
		return out
	}
	mk := func(name, label string, values []string, labels func(string) string) filter {
		f := filter{Name: name, Label: label, Options: []option{{Value: "", Label: "Any"}}}
		for _, x := range values {
			f.Options = append(f.Options, option{Value: x, Label: labels(x), Selected: v.Get(name) == x})
		}
		return f
	}
	same := func(x string) string { return x }
	var teamsIn []string
	if ss.p.Role == RoleManager {
		teamsIn = slices.Clone(ss.p.Teams)
	} else {
		// Teams come from the alerts themselves (one query per page is
		// cheap: at most the capped rows).
		for _, a := range rows {
			if a.Team != "" && !slices.Contains(teamsIn, a.Team) {
				teamsIn = append(teamsIn, a.Team)
			}
		}
		if t := v.Get("team"); t != "" && !slices.Contains(teamsIn, t) {
			teamsIn = append(teamsIn, t)
		}
	}
	slices.Sort(teamsIn)
	var sevs []string
	for _, sv := range alert.Severities {
		sevs = append(sevs, string(sv))
	}
	d.Filters = []filter{
		mk("org", "Organisation", set(func(c alertview.AlertCount) string { return c.Org }), func(x string) string { return cmp.Or(s.orgs[x].Name, x) }),
		mk("team", "Team", teamsIn, same),
		mk("check", "Check", set(func(c alertview.AlertCount) string { return c.Check }), same),
		mk("risk", "DPIA risk", set(func(c alertview.AlertCount) string { return c.Risk }), same),
		mk("severity", "Severity", sevs, title),
		mk("status", "Status", append([]string{alertview.StatusOpen, alertview.StatusTriaged}, TriageOutcomes...), func(x string) string {
			if x == alertview.StatusTriaged {
				return "Triaged (any outcome)"
			}
			return outcomeLabel(x)
		}),
	}
	d.Query = v.Encode()
	d.ExportURL = "/alerts.csv?" + v.Encode()
	s.render(w, r, http.StatusOK, "queue", d)
}

func title(x string) string { return funcs["title"].(func(string) string)(x) }

func (s *Server) actorURL(p Principal, org, actor string) string {
	if !p.seesActorPage() || actor == "" {
		return ""
	}
	return "/actors/" + url.PathEscape(org) + "/" + url.PathEscape(actor)
}

// queueFilters are the queue's filters, in the order of its form.
var queueFilters = []string{"org", "team", "check", "risk", "severity", "status"}

// filterQuery is the view log's target for a list: the filters applied,
// as a query string, and nothing else the URL may carry.
func filterQuery(v url.Values) string {
	f := url.Values{}
	for _, k := range queueFilters {
		if x := v.Get(k); x != "" {
			f.Set(k, x)
		}
	}
	return f.Encode()
}

// listOrg is the view log's org for a list: the org filtered on, the
// viewer's only org, or the one org of every row; "" when several.
func listOrg(p Principal, q alertview.AlertQuery, rows []alertview.AlertRow) string {
	switch {
	case q.Org != "":
		return q.Org
	case len(p.Orgs) == 1:
		return p.Orgs[0]
	case len(rows) == 0:
		return ""
	}
	for _, a := range rows[1:] {
		if a.Org != rows[0].Org {
			return ""
		}
	}
	return rows[0].Org
}

// exportCSV is the DPO's export of the queue as filtered.
func (s *Server) exportCSV(w http.ResponseWriter, r *http.Request, ss *session) {
	if !ss.p.canExport() {
		s.notFound(w, r, ss)
		return
	}
	q := queueQuery(r.URL.Query(), ss.p)
	q.Limit = 100_000
	rows, err := s.o.Store.WebAlerts(r.Context(), q)
	if err != nil {
		s.fail(w, err)
		return
	}
	if !s.recordView(w, r, ss, viewlog.KindAlertsCSV, listOrg(ss.p, q, rows), filterQuery(r.URL.Query()), len(rows)) {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="dpiawatch-alerts.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "org", "dpia", "risks", "check", "pattern", "severity", "team", "actor_id", "subject_id",
		"first_seen", "last_seen", "event_count", "status", "triaged_by", "triaged_at", "explanation", "triage_source"})
	for _, a := range rows {
		var by, at, source string
		if a.Triage != nil {
			by, at, source = a.Triage.By, a.Triage.At.Format(time.RFC3339), a.Triage.Source
		}
		_ = cw.Write(csvsafe.Row([]string{a.ID, a.Org, a.DPIA, strings.Join(a.Risks, ";"), a.Check, a.Pattern, string(a.Severity), a.Team,
			a.ActorID, s.subject(ss.p, a.SubjectID), a.FirstSeen.Format(time.RFC3339), a.LastSeen.Format(time.RFC3339),
			strconv.Itoa(a.EventCount), a.Status(), by, at, a.Explanation, source}))
	}
	cw.Flush()
}
