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
	"github.com/dpiawatch/dpiawatch/checkname"
	"github.com/dpiawatch/dpiawatch/csvsafe"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

type option struct {
	Value, Label string
	Selected     bool
}

type queueRow struct {
	ID, Check, Pattern, Org, OrgName, Team, Actor, ActorURL, Subject string
	Severity                                                         alert.Severity
	Status, FirstSeen, LastSeen, Explanation                         string
	Risks                                                            []string
	Events                                                           int
	Action                                                           *actionView // the latest decision's follow-up
}

type queueData struct {
	page
	Filters []filter
	Rows    []queueRow
	// Statuses are the counts per status under the other filters, each a
	// link that keeps them.
	Statuses  []statusLink
	Total     int // alerts matching every filter, on all pages
	From, To  int // the rows of this page, 1-based
	Prev      string
	Next      string
	PageNum   int
	Pages     int
	ExportURL string
	Query     string
}

type statusLink struct {
	Label, URL string
	Count      int
	Current    bool
}

type filter struct {
	Name, Label string
	Options     []option
}

// queuePageSize is how many alerts one page of the queue lists.
const queuePageSize = 50

// statusAll is the status filter's "any status": the queue's default is
// open, so "any" must be said.
const statusAll = "all"

// queueQuery reads the filters from the URL; unknown values simply match
// nothing (they are bound parameters, never SQL). A missing status is
// defStatus: open for the queue, any for the DPO's CSV. A risk is
// "DPIA:R1" (risk ids are per DPIA) or a bare id, any DPIA's.
func queueQuery(v url.Values, p Principal, defStatus string) alertview.AlertQuery {
	orgs, teams := p.scope()
	q := alertview.AlertQuery{
		Orgs: orgs, Teams: teams,
		Org: v.Get("org"), Team: v.Get("team"), Check: v.Get("check"), Risk: v.Get("risk"),
		Severity: alert.Severity(v.Get("severity")), Status: cmp.Or(v.Get("status"), defStatus),
	}
	if d, r, ok := strings.Cut(q.Risk, ":"); ok {
		q.DPIA, q.Risk = d, r
	}
	if q.Status == statusAll {
		q.Status = ""
	}
	return q
}

// queueFilterValues is v with the status the queue applies said
// explicitly, so that links, the export and the view log say what was
// shown.
func queueFilterValues(v url.Values) url.Values {
	f := url.Values{}
	for _, k := range queueFilters {
		if x := v.Get(k); x != "" {
			f.Set(k, x)
		}
	}
	if f.Get("status") == "" {
		f.Set("status", alertview.StatusOpen)
	}
	return f
}

func (s *Server) queue(w http.ResponseWriter, r *http.Request, ss *session) {
	v := queueFilterValues(r.URL.Query())
	q := queueQuery(v, ss.p, alertview.StatusOpen)
	q.Order = alertview.OrderWork
	pageNum, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pageNum = max(pageNum, 1)
	statuses, err := s.o.Store.WebStatusCounts(r.Context(), q)
	if err != nil {
		s.fail(w, err)
		return
	}
	d := queueData{page: s.pageFor(ss, "Alerts", "alerts")}
	all := 0
	for _, c := range statuses {
		all += c.Count
		if q.Status == "" || q.Status == c.Status || (q.Status == alertview.StatusTriaged && c.Status != alertview.StatusOpen) {
			d.Total += c.Count
		}
	}
	d.Pages = max(1, (d.Total+queuePageSize-1)/queuePageSize)
	pageNum = min(pageNum, d.Pages)
	q.Limit, q.Offset = queuePageSize, (pageNum-1)*queuePageSize
	rows, err := s.o.Store.WebAlerts(r.Context(), q)
	if err != nil {
		s.fail(w, err)
		return
	}
	// The filter options come from the alerts in scope, so a manager's
	// drop-downs never list another team.
	counts, err := s.o.Store.WebAlertCounts(r.Context(), alertview.AlertQuery{Orgs: q.Orgs, Teams: q.Teams})
	if err != nil {
		s.fail(w, err)
		return
	}
	// Every role's queue lists workers' ids; the IG team's and the DPO's
	// subjects' ids too.
	target := filterQuery(v)
	if pageNum > 1 {
		target += "&page=" + strconv.Itoa(pageNum)
	}
	if !s.recordView(w, r, ss, viewlog.KindQueue, listOrg(ss.p, q, rows), target, len(rows)) {
		return
	}
	for _, a := range rows {
		d.Rows = append(d.Rows, queueRow{
			ID: a.ID, Check: checkname.Check(a.Check), Pattern: checkname.Pattern(a.Pattern),
			Org: a.Org, OrgName: cmp.Or(s.orgs[a.Org].Name, a.Org), Team: a.Team, Actor: a.ActorID,
			ActorURL: s.actorURL(ss.p, a.Org, a.ActorID),
			Subject:  s.subject(ss.p, a.SubjectID), Severity: a.Severity, Status: a.Status(),
			FirstSeen: s.fmtShort(a.Org, a.FirstSeen), LastSeen: s.fmtShort(a.Org, a.LastSeen),
			Risks: s.riskTitles(a.Alert), Events: a.EventCount,
		})
		if a.Triage != nil {
			d.Rows[len(d.Rows)-1].Action = s.actionView(a.Org, a.Triage.Action)
		}
	}
	shownStatus := cmp.Or(q.Status, statusAll)
	set := func(f func(alertview.AlertCount) string) []string {
		var out []string
		for _, c := range counts {
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
		teamsIn = set(func(c alertview.AlertCount) string { return c.Team })
		if t := v.Get("team"); t != "" && !slices.Contains(teamsIn, t) {
			teamsIn = append(teamsIn, t)
		}
	}
	slices.Sort(teamsIn)
	var sevs []string
	for _, sv := range slices.Backward(alert.Severities) {
		sevs = append(sevs, string(sv))
	}
	dpias := set(func(c alertview.AlertCount) string { return c.DPIA })
	risks := set(func(c alertview.AlertCount) string { return c.DPIA + ":" + c.Risk })
	if x := v.Get("risk"); x != "" && !slices.Contains(risks, x) {
		risks = append(risks, x) // a bare id from an older link stays selected
	}
	status := filter{Name: "status", Label: "Status"}
	for _, x := range append([]string{alertview.StatusOpen, alertview.StatusTriaged}, append(TriageOutcomes, statusAll)...) {
		label := outcomeLabel(x)
		switch x {
		case alertview.StatusTriaged:
			label = "Triaged (any outcome)"
		case statusAll:
			label = "Any status"
		}
		status.Options = append(status.Options, option{Value: x, Label: label, Selected: shownStatus == x})
	}
	d.Filters = []filter{
		status,
		mk("severity", "Severity", sevs, title),
		mk("org", "Organisation", set(func(c alertview.AlertCount) string { return c.Org }), func(x string) string { return cmp.Or(s.orgs[x].Name, x) }),
		mk("team", "Team", teamsIn, same),
		mk("check", "Check", set(func(c alertview.AlertCount) string { return c.Check }), checkname.Check),
		mk("risk", "DPIA risk", risks, func(x string) string {
			d, rk, ok := strings.Cut(x, ":")
			if !ok {
				return x
			}
			t := s.riskTitle(d, rk, "")
			if len(dpias) > 1 {
				t = cmp.Or(s.dpiaOrgName(d), d) + " " + t
			}
			return t
		}),
	}
	// Links keep the filters chosen from the options only: a value typed
	// into the URL that no option offers (another team's, for a manager)
	// is not echoed back.
	kept := url.Values{}
	for _, f := range d.Filters {
		for _, o := range f.Options {
			if o.Selected && o.Value != "" {
				kept.Set(f.Name, o.Value)
			}
		}
	}
	d.PageNum = pageNum
	if len(rows) > 0 {
		d.From, d.To = q.Offset+1, q.Offset+len(rows)
	}
	with := func(k, x string) string {
		u := url.Values{}
		for key, vals := range kept {
			u[key] = vals
		}
		u.Del("page")
		if x != "" {
			u.Set(k, x)
		}
		return "/alerts?" + u.Encode()
	}
	if pageNum > 1 {
		d.Prev = with("page", strconv.Itoa(pageNum-1))
	}
	if pageNum < d.Pages {
		d.Next = with("page", strconv.Itoa(pageNum+1))
	}
	for _, st := range append([]string{alertview.StatusOpen}, TriageOutcomes...) {
		n := 0
		for _, c := range statuses {
			if c.Status == st {
				n = c.Count
			}
		}
		d.Statuses = append(d.Statuses, statusLink{Label: outcomeLabel(st), URL: with("status", st), Count: n, Current: shownStatus == st})
	}
	d.Statuses = append(d.Statuses, statusLink{Label: "All", URL: with("status", statusAll), Count: all, Current: shownStatus == statusAll})

	d.Query = kept.Encode()
	d.ExportURL = "/alerts.csv?" + kept.Encode()
	s.render(w, r, http.StatusOK, "queue", d)
}

// riskTitle is a risk as people read it: "R4: Misuse by users", from the
// title the alert carries, else the DPIA's register; the bare id when
// neither has one.
func (s *Server) riskTitle(dpiaID, risk, carried string) string {
	if carried == "" {
		if reg := s.register(dpiaID); reg != nil {
			for _, rk := range reg.Risks {
				if rk.ID == risk {
					carried = rk.Title
				}
			}
		}
	}
	if carried == "" {
		return risk
	}
	return risk + ": " + carried
}

// riskTitles are an alert's risks as people read them.
func (s *Server) riskTitles(a alert.Alert) []string {
	var out []string
	for i, rk := range a.Risks {
		carried := ""
		if i < len(a.RiskTitles) {
			carried = a.RiskTitles[i]
		}
		out = append(out, s.riskTitle(a.DPIA, rk, carried))
	}
	return out
}

// dpiaOrgName is the name of the org whose DPIA id is.
func (s *Server) dpiaOrgName(id string) string {
	for _, o := range s.o.Orgs {
		if o.DPIA == id {
			return cmp.Or(o.Name, o.ID)
		}
	}
	return ""
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
	q := queueQuery(r.URL.Query(), ss.p, "")
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
