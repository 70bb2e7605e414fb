package web

import (
	"cmp"
	"html/template"
	"net/http"
	"time"

	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/checkname"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

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
		d.Alerts = append(d.Alerts, queueRow{ID: a.ID, Check: checkname.Check(a.Check), Pattern: checkname.Pattern(a.Pattern),
			Severity: a.Severity, Status: a.Status(), FirstSeen: s.fmtTime(a.Org, a.FirstSeen), Risks: s.riskTitles(a.Alert)})
	}
	if !s.recordView(w, r, ss, viewlog.KindActor, org, actor, len(d.Alerts)) {
		return
	}
	s.render(w, r, http.StatusOK, "actor", d)
}
