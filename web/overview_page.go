package web

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/checkname"
	"github.com/dpiawatch/dpiawatch/dpia"
	"github.com/dpiawatch/dpiawatch/store"
)

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
			for i, c := range rr.Checks {
				rr.Checks[i] = checkname.Check(c)
			}
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
				b.SilentAlerts = append(b.SilentAlerts, queueRow{ID: a.ID, Severity: a.Severity, FirstSeen: s.fmtTime(a.Org, a.FirstSeen), Explanation: a.Explanation})
			}
		}
		for _, f := range feeds {
			if f.Org != b.Org {
				continue
			}
			row := feedRow{System: f.System, LastEvent: s.fmtTime(f.Org, f.LastEvent), Recent: f.Recent}
			for _, a := range b.SilentAlerts {
				if strings.Contains(a.Explanation, " from "+f.System+" for ") {
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
