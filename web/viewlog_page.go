package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/dpiawatch/dpiawatch/alertview"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

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
