package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/audit"
	"github.com/dpiawatch/dpiawatch/csvsafe"
	"github.com/dpiawatch/dpiawatch/dpia"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/triage"
	"github.com/dpiawatch/dpiawatch/viewlog"
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

func outcomeLabel(o string) string {
	switch o {
	case alertview.StatusOpen:
		return "Open"
	case OutcomeAcknowledged:
		return "Acknowledged"
	case OutcomeExplained:
		return "Explained (legitimate reason)"
	case OutcomeConfirmed:
		return "Confirmed misuse"
	case OutcomeFalsePositive:
		return "False positive"
	}
	return o
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
	http.Error(w, "Internal error", http.StatusInternalServerError)
}

// notFound is also what an out-of-scope alert or actor gets: a manager
// learns nothing about other teams, not even that an alert exists.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, ss *session) {
	s.render(w, r, http.StatusNotFound, "notfound", s.pageFor(ss, "Page not found", ""))
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

// ---- overview ----

type riskRow struct {
	ID, Title     string
	Checks        []string
	Open, Triaged int
	LastSeen      string
	QueueURL      string
	Trend         template.HTML
	TrendText     string
}

type feedRow struct {
	System, LastEvent, AlertURL string
	Recent                      int
	Silent                      bool
}

type dpiaBlock struct {
	ID, Title, Org, OrgName string
	Risks                   []riskRow
	Open, Triaged           int
	TeamBars                template.HTML
	Heatmap                 template.HTML
	HeatDays                int
	Feeds                   []feedRow
	SilentAlerts            []queueRow
	Complete                completenessView
}

// trendWeeks is how many weeks the overview's trends show.
const trendWeeks = 12

type overviewData struct {
	page
	DPIAs []dpiaBlock
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, ss *session) {
	orgs, teams := ss.p.scope()
	counts, err := s.o.Store.WebAlertCounts(r.Context(), alertview.AlertQuery{Orgs: orgs, Teams: teams})
	if err != nil {
		s.fail(w, err)
		return
	}
	type key struct{ org, risk string }
	by := map[key][]alertview.AlertCount{}
	for _, c := range counts {
		by[key{c.Org, c.Risk}] = append(by[key{c.Org, c.Risk}], c)
	}
	var d overviewData
	d.page = s.pageFor(ss, "Overview", "overview")
	for _, org := range s.o.Orgs {
		if !ss.p.allOrgs() && !slices.Contains(ss.p.Orgs, org.ID) {
			continue
		}
		reg := s.register(org.DPIA)
		b := dpiaBlock{ID: org.DPIA, Org: org.ID, OrgName: cmp.Or(org.Name, org.ID)}
		if reg != nil {
			b.Title = reg.Title
		}
		var risks []riskRow
		if reg != nil {
			for _, rk := range reg.Risks {
				risks = append(risks, riskRow{ID: rk.ID, Title: rk.Title})
			}
		}
		// Risks alerts name but the register lacks still show.
		for _, c := range counts {
			if c.Org == org.ID && !slices.ContainsFunc(risks, func(x riskRow) bool { return x.ID == c.Risk }) {
				risks = append(risks, riskRow{ID: c.Risk, Title: "(not in the register)"})
			}
		}
		for i := range risks {
			rr := &risks[i]
			rr.Checks = slices.Clone(s.o.RiskChecks[org.DPIA][rr.ID])
			var last time.Time
			for _, c := range by[key{org.ID, rr.ID}] {
				rr.Open += c.Open
				rr.Triaged += c.Triaged
				if !slices.Contains(rr.Checks, c.Check) {
					rr.Checks = append(rr.Checks, c.Check)
				}
				if c.LastSeen.After(last) {
					last = c.LastSeen
				}
			}
			slices.Sort(rr.Checks)
			rr.LastSeen = s.fmtTime(org.ID, last)
			rr.QueueURL = "/alerts?" + url.Values{"org": {org.ID}, "risk": {rr.ID}}.Encode()
			b.Open += rr.Open
			b.Triaged += rr.Triaged
		}
		b.Risks = risks
		d.DPIAs = append(d.DPIAs, b)
	}
	if err := s.overviewPictures(r.Context(), ss.p, d.DPIAs, counts); err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, r, http.StatusOK, "overview", d)
}

// overviewPictures adds to each org's block what reads better as a picture:
// alert trends per risk, alerts per team, when its workers open records
// (weekday × hour), and the health of its data feeds.
func (s *Server) overviewPictures(ctx context.Context, p Principal, blocks []dpiaBlock, counts []alertview.AlertCount) error {
	if len(blocks) == 0 {
		return nil
	}
	orgs, teams := p.scope()
	now := s.o.Now()
	// Trends: alerts first seen per week, the current week last.
	starts := map[string][]time.Time{}
	from := now
	for _, b := range blocks {
		loc := s.loc(b.Org)
		cur := periodOf(PeriodWeek, now, loc).From
		ws := make([]time.Time, trendWeeks)
		for i := range ws {
			ws[i] = cur.AddDate(0, 0, -7*(trendWeeks-1-i))
		}
		starts[b.Org] = ws
		from = minTime(from, ws[0])
	}
	trend, err := s.o.Store.WebAlertTrend(ctx, alertview.AlertQuery{Orgs: orgs, Teams: teams}, from, now.Add(time.Nanosecond))
	if err != nil {
		return err
	}
	feeds, err := s.o.Store.WebFeeds(ctx, orgs, now.AddDate(0, 0, -30), now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	silent, err := s.o.Store.WebAlerts(ctx, alertview.AlertQuery{Orgs: orgs, Teams: teams, Check: checkFeedSilent, Status: alertview.StatusOpen, Limit: 50})
	if err != nil {
		return err
	}
	complete, err := store.LoadCompleteness(ctx, s.o.Store)
	if err != nil {
		return err
	}
	actFrom := now.Truncate(time.Hour).Add(time.Hour).AddDate(0, 0, -s.o.ActivityDays)
	for i := range blocks {
		b := &blocks[i]
		ws := starts[b.Org]
		labels := make([]string, len(ws))
		for j, w := range ws {
			labels[j] = "week from " + w.Format("2 Jan")
		}
		for k := range b.Risks {
			rr := &b.Risks[k]
			n := make([]int, len(ws))
			for _, t := range trend {
				if t.Org != b.Org || t.Risk != rr.ID {
					continue
				}
				if j := weekIndex(ws, t.Day); j >= 0 {
					n[j] += t.Count
				}
			}
			rr.Trend = sparkSVG(n, labels, fmt.Sprintf("Alerts of %s per week over %d weeks", rr.ID, trendWeeks))
			rr.TrendText = fmt.Sprintf("%d this week, %d last week", n[len(n)-1], n[len(n)-2])
		}
		perTeam := map[string]int{}
		for _, c := range counts {
			if c.Org == b.Org {
				perTeam[cmp.Or(c.Team, "(no team)")] += c.Open + c.Triaged
			}
		}
		var bars []bar
		for _, t := range slices.Sorted(maps.Keys(perTeam)) {
			bars = append(bars, bar{Label: t, Value: float64(perTeam[t])})
		}
		b.TeamBars = barsSVG(bars, "Alerts per team (an alert evidencing two risks counts under each)", 0)

		// The heatmap: the whole org, or a manager's teams only.
		var hours []alertview.HourCount
		q := alertview.ActivityQuery{Org: b.Org, From: actFrom, To: actFrom.AddDate(0, 0, s.o.ActivityDays)}
		if teams == nil {
			if hours, _, err = s.o.Store.WebHourlyActivity(ctx, q); err != nil {
				return err
			}
		}
		for _, t := range teams {
			q.Team = t
			h, _, err := s.o.Store.WebHourlyActivity(ctx, q)
			if err != nil {
				return err
			}
			hours = append(hours, h...)
		}
		b.HeatDays = s.o.ActivityDays
		b.Heatmap = heatmapSVG(grid(hours, s.loc(b.Org)), fmt.Sprintf("Accesses to records by weekday and hour over %d days (%s)", s.o.ActivityDays, s.loc(b.Org)))

		// Completeness is the org's, not a team's: every role sees it,
		// since every role judges figures that depend on it.
		var newest time.Time
		for _, f := range feeds {
			if f.Org == b.Org && f.LastEvent.After(newest) {
				newest = f.LastEvent
			}
		}
		at, recorded := complete[b.Org]
		b.Complete = s.completeness(b.Org, at, recorded, newest)

		// Feed health: admins, the IG team and the DPO watch the feeds;
		// a manager's view stays on their teams.
		if p.Role == RoleManager {
			continue
		}
		for _, a := range silent {
			if a.Org == b.Org && !strings.HasPrefix(a.Explanation, "Resolved:") {
				b.SilentAlerts = append(b.SilentAlerts, queueRow{ID: a.ID, Severity: a.Severity, FirstSeen: s.fmtTime(a.Org, a.FirstSeen), Risks: a.Explanation})
			}
		}
		for _, f := range feeds {
			if f.Org != b.Org {
				continue
			}
			row := feedRow{System: f.System, LastEvent: s.fmtTime(f.Org, f.LastEvent), Recent: f.Recent}
			for _, a := range b.SilentAlerts {
				if strings.Contains(a.Risks, " from "+f.System+" for ") {
					row.Silent, row.AlertURL = true, "/alerts/"+url.PathEscape(a.ID)
				}
			}
			b.Feeds = append(b.Feeds, row)
		}
	}
	return nil
}

// checkFeedSilent is heartbeat.CheckFeedSilent (not imported: the UI needs
// only the name).
const checkFeedSilent = "feed-silent"

func weekIndex(starts []time.Time, day time.Time) int {
	for j := len(starts) - 1; j >= 0; j-- {
		if !day.Before(starts[j]) {
			if day.Before(starts[j].AddDate(0, 0, 7)) {
				return j
			}
			return -1
		}
	}
	return -1
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (s *Server) register(id string) *dpia.Register {
	for _, reg := range s.o.DPIAs {
		if reg != nil && reg.ID == id {
			return reg
		}
	}
	return nil
}

// ---- queue ----

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

// ---- alert page ----

type timelineRow struct {
	Time, Action, Subject, Record, Session, Device, IP, Outcome string
	Evidence                                                    bool
}

type alertData struct {
	page
	A            alertview.AlertRow
	Subject      string
	RiskTitles   []string
	FirstSeen    string
	LastSeen     string
	ActorURL     string
	Timeline     []timelineRow
	TimelineCap  bool
	CanTriage    bool
	Outcomes     []option
	TriagedAt    string
	TriageLabel  string
	Pseudonymous bool
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
	d := alertData{page: s.pageFor(ss, "Alert", "alerts"), A: a, Subject: s.subject(ss.p, a.SubjectID),
		FirstSeen: s.fmtTime(a.Org, a.FirstSeen), LastSeen: s.fmtTime(a.Org, a.LastSeen),
		ActorURL: s.actorURL(ss.p, a.Org, a.ActorID), CanTriage: ss.p.canTriage(), Pseudonymous: !ss.p.seesSubjects()}
	for i, rk := range a.Risks {
		t := rk
		if i < len(a.RiskTitles) && a.RiskTitles[i] != "" {
			t = rk + ": " + a.RiskTitles[i]
		}
		d.RiskTitles = append(d.RiskTitles, t)
	}
	if a.Triage != nil {
		d.TriagedAt = s.fmtTime(a.Org, a.Triage.At)
		d.TriageLabel = outcomeLabel(a.Triage.Outcome)
	}
	for _, o := range TriageOutcomes {
		d.Outcomes = append(d.Outcomes, option{Value: o, Label: outcomeLabel(o), Selected: a.Triage != nil && a.Triage.Outcome == o})
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
		d.Timeline = append(d.Timeline, s.timelineRow(ss.p, e, evidence[e.ID]))
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		s.fail(w, err)
		return
	}
	if !s.recordView(w, r, ss, viewlog.KindAlert, a.Org, a.ID, len(d.Timeline)) {
		return
	}
	s.render(w, r, http.StatusOK, "alert", d)
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

func (s *Server) timelineRow(p Principal, e event.Event, evidence bool) timelineRow {
	t := timelineRow{Time: e.Time.In(s.loc(e.Org)).Format("Mon 2 Jan 15:04:05"), Action: string(e.Action),
		Subject: s.subject(p, e.Subject.ID), Device: e.Session.Device, Outcome: string(e.Outcome), Evidence: evidence}
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
		http.Error(w, "Forbidden: your role cannot "+what, http.StatusForbidden)
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
	if !slices.Contains(TriageOutcomes, outcome) || !utf8.ValidString(note) || utf8.RuneCountInString(note) > maxTriageNoteRunes {
		http.Error(w, "Bad request: choose an outcome; a note is at most 2000 characters", http.StatusBadRequest)
		return
	}
	t := triage.Decision{AlertID: a.ID, Outcome: outcome, Actor: ss.p.User, At: s.o.Now().UTC(), Note: note, Source: alertview.TriageSource}
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
		http.Error(w, "Bad request: that receiver has no failed delivery of this alert to re-send", http.StatusBadRequest)
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

// ---- actor page ----

type actorData struct {
	page
	Org, OrgName, Actor, Team string
	Days                      int
	Events, Peers             int
	ActorMap, PeerMap         template.HTML
	ActorTable                [7][24]float64
	Alerts                    []queueRow
	Weekdays                  []string
	OutOfHoursShare           int
	PeerOutOfHoursShare       int
}

func (s *Server) actorPage(w http.ResponseWriter, r *http.Request, ss *session) {
	org, actor := r.PathValue("org"), r.PathValue("actor")
	if !ss.p.seesActorPage() {
		s.notFound(w, r, ss)
		return
	}
	team, err := s.o.Store.WebActorTeam(r.Context(), org, actor)
	if err != nil {
		s.fail(w, err)
		return
	}
	if _, known := s.orgs[org]; !known || !ss.p.inScope(org, team) {
		s.notFound(w, r, ss)
		return
	}
	now := s.o.Now()
	to := now.Truncate(time.Hour).Add(time.Hour)
	from := to.AddDate(0, 0, -s.o.ActivityDays)
	hours, _, err := s.o.Store.WebHourlyActivity(r.Context(), alertview.ActivityQuery{Org: org, ActorID: actor, From: from, To: to})
	if err != nil {
		s.fail(w, err)
		return
	}
	loc := s.loc(org)
	mine := grid(hours, loc)
	d := actorData{page: s.pageFor(ss, "Worker "+actor, "alerts"), Org: org, OrgName: cmp.Or(s.orgs[org].Name, org),
		Actor: actor, Team: team, Days: s.o.ActivityDays, Weekdays: weekdayNames[:]}
	d.Events = int(mine.total())
	var peers heat
	if team != "" {
		teamHours, n, err := s.o.Store.WebHourlyActivity(r.Context(), alertview.ActivityQuery{Org: org, Team: team, From: from, To: to})
		if err != nil {
			s.fail(w, err)
			return
		}
		all := grid(teamHours, loc)
		// Peers are the team without this worker, averaged per worker.
		if n > 1 {
			d.Peers = n - 1
			for i := range all {
				for h := range all[i] {
					peers[i][h] = max(0, all[i][h]-mine[i][h]) / float64(n-1)
				}
			}
		}
	}
	d.ActorMap = heatmapSVG(mine, "This worker's accesses by weekday and hour ("+loc.String()+")")
	d.PeerMap = heatmapSVG(peers, "Average of their team's other workers by weekday and hour")
	d.ActorTable = mine
	d.OutOfHoursShare, d.PeerOutOfHoursShare = mine.outsideShare(), peers.outsideShare()
	rows, err := s.o.Store.WebAlerts(r.Context(), alertview.AlertQuery{Orgs: []string{org}, ActorID: actor, Limit: 50})
	if err != nil {
		s.fail(w, err)
		return
	}
	for _, a := range rows {
		if !ss.p.inScope(a.Org, a.Team) {
			continue
		}
		d.Alerts = append(d.Alerts, queueRow{ID: a.ID, Check: a.Check, Pattern: a.Pattern, Severity: a.Severity, Status: a.Status(),
			FirstSeen: s.fmtTime(a.Org, a.FirstSeen), Risks: strings.Join(a.Risks, ", ")})
	}
	if !s.recordView(w, r, ss, viewlog.KindActor, org, actor, len(d.Alerts)) {
		return
	}
	s.render(w, r, http.StatusOK, "actor", d)
}

// ---- the DPO's view log ----

type viewRow struct {
	At, User, Role, Kind, Org, Target, URL string
	Rows                                   int
}

type viewLogData struct {
	page
	Views []viewRow
}

func (s *Server) viewLog(w http.ResponseWriter, r *http.Request, ss *session) {
	if !ss.p.seesViewLog() {
		s.notFound(w, r, ss)
		return
	}
	vs, err := s.o.Store.WebViews(r.Context(), maxViewsShownToTheDPO)
	if err != nil {
		s.fail(w, err)
		return
	}
	d := viewLogData{page: s.pageFor(ss, "Who viewed what", "views")}
	for _, v := range vs {
		if !ss.p.inScope(v.Org, "") {
			continue
		}
		var u string
		switch v.Kind {
		case viewlog.KindAlert, viewlog.KindAPITriage:
			u = "/alerts/" + url.PathEscape(v.Target)
		case viewlog.KindActor:
			u = "/actors/" + url.PathEscape(v.Org) + "/" + url.PathEscape(v.Target)
		case viewlog.KindSample:
			if i := strings.LastIndex(v.Target, "/"); i > 0 {
				u = routineURL(v.Org, v.Target[:i], v.Target[i+1:])
			}
		case viewlog.KindQueue, viewlog.KindAlertsCSV:
			// The queue as then filtered (a CSV link would export again).
			u = "/alerts"
			if f, err := url.ParseQuery(v.Target); err == nil && len(f) > 0 {
				u += "?" + filterQuery(f)
			}
		}
		d.Views = append(d.Views, viewRow{At: s.fmtTime(v.Org, v.At), User: v.User, Role: v.Role, Kind: v.Kind, Org: v.Org,
			Target: v.Target, URL: u, Rows: v.Rows})
	}
	// The log lists who looked at which worker and alert: looking at it is
	// a view too.
	if !s.recordView(w, r, ss, viewlog.KindLog, listOrg(ss.p, alertview.AlertQuery{}, nil), "", len(d.Views)) {
		return
	}
	s.render(w, r, http.StatusOK, "views", d)
}
