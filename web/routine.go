package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/routineaudit"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/viewlog"
)

// Routine audits (package routineaudit holds the samples, reviews and the
// draw): the pages where managers see their teams' samples and review each
// sampled access, and where the IG team and the DPO follow coverage.

// Routine-audit periods.
const (
	PeriodWeek  = "week"
	PeriodMonth = "month"
)

// RoutineAuditOptions configure routine audits; the zero value samples 10
// accesses per team and ISO week.
type RoutineAuditOptions struct {
	Period     string // PeriodWeek (default) or PeriodMonth
	SampleSize int    // accesses per team and period; default 10
	// Periods is how many past periods the routine-audit page lists;
	// default 8.
	Periods int
}

func (o RoutineAuditOptions) withDefaults() RoutineAuditOptions {
	o.Period = cmp.Or(o.Period, PeriodWeek)
	o.SampleSize = cmp.Or(o.SampleSize, 10)
	o.Periods = cmp.Or(o.Periods, 8)
	return o
}

// auditPeriod is one period in an org's zone.
type auditPeriod struct {
	Name     string // 2026-W10 or 2026-03
	From, To time.Time
}

// periodOf returns the period holding t.
func periodOf(kind string, t time.Time, loc *time.Location) auditPeriod {
	t = t.In(loc)
	if kind == PeriodMonth {
		from := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		return auditPeriod{Name: from.Format("2006-01"), From: from, To: from.AddDate(0, 1, 0)}
	}
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	from := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)) // Monday
	y, w := from.ISOWeek()
	return auditPeriod{Name: fmt.Sprintf("%04d-W%02d", y, w), From: from, To: from.AddDate(0, 0, 7)}
}

// parsePeriod reads a period name of the configured kind.
func parsePeriod(kind, name string, loc *time.Location) (auditPeriod, bool) {
	if kind == PeriodMonth {
		t, err := time.ParseInLocation("2006-01", name, loc)
		if err != nil {
			return auditPeriod{}, false
		}
		p := periodOf(kind, t, loc)
		return p, p.Name == name
	}
	ys, ws, ok := strings.Cut(name, "-W")
	y, err1 := strconv.Atoi(ys)
	w, err2 := strconv.Atoi(ws)
	if !ok || err1 != nil || err2 != nil || y < 1970 || y > 9999 || w < 1 || w > 53 {
		return auditPeriod{}, false
	}
	// 4 January is always in week 1.
	jan4 := time.Date(y, 1, 4, 12, 0, 0, 0, loc)
	p := periodOf(kind, jan4.AddDate(0, 0, 7*(w-1)), loc)
	return p, p.Name == name
}

// ---- pages ----

func reviewLabel(o string) string {
	switch o {
	case routineaudit.ReviewReasonable:
		return "Reasonable"
	case routineaudit.ReviewQuery:
		return "Cannot tell: query with the worker"
	case routineaudit.ReviewRefer:
		return "Not reasonable: referred to the IG team"
	case "":
		return "Not reviewed"
	}
	return o
}

type coverageRow struct {
	Org, OrgName, Team, Period, URL string
	Sampled, Reviewed, Pct          int
	Reasonable, Query, Refer        int
	Drawn                           bool
	// Empty: drawn with no accesses in it. Nothing was reviewed, so it is
	// shown apart, never as coverage.
	Empty bool
	// Waiting: not drawn because the feed is not complete up to the
	// period's end; CompleteUpTo is how far it is ("" when not complete
	// for any period).
	Waiting      bool
	CompleteUpTo string
}

type routineData struct {
	page
	Period   string
	Periods  []option
	Rows     []coverageRow
	History  []coverageRow
	Bars     []bar
	BarChart any
}

// routineOrgs are the orgs of p's scope the UI knows.
func (s *Server) routineOrgs(p Principal) []Org {
	var out []Org
	for _, o := range s.o.Orgs {
		if p.allOrgs() || slices.Contains(p.Orgs, o.ID) {
			out = append(out, o)
		}
	}
	return out
}

func (s *Server) routineTeams(ctx context.Context, p Principal, org string, per auditPeriod) ([]string, error) {
	if p.Role == RoleManager {
		return slices.Sorted(slices.Values(p.Teams)), nil
	}
	return s.o.Store.AuditTeams(ctx, org, per.From, per.To)
}

// routineIndex lists, for one period, every team in scope with its sample's
// coverage, and the coverage of past periods.
func (s *Server) routineIndex(w http.ResponseWriter, r *http.Request, ss *session) {
	ra := s.o.RoutineAudit
	now := s.o.Now()
	d := routineData{page: s.pageFor(ss, "Routine audits", "routine")}
	orgs := s.routineOrgs(ss.p)
	if len(orgs) == 0 {
		s.render(w, r, http.StatusOK, "routine", d)
		return
	}
	// Periods are named in the first org's zone (all of the UK's agree).
	loc := s.loc(orgs[0].ID)
	last := periodOf(ra.Period, periodOf(ra.Period, now, loc).From.Add(-time.Hour), loc) // the latest ended period
	per, listed := last, false
	want := cmp.Or(r.URL.Query().Get("period"), last.Name)
	p := last
	for range ra.Periods {
		if p.Name == want {
			per, listed = p, true
		}
		d.Periods = append(d.Periods, option{Value: p.Name, Label: p.Name + " (from " + p.From.Format("2 Jan 2006") + ")", Selected: p.Name == want})
		p = periodOf(ra.Period, p.From.Add(-time.Hour), loc)
	}
	if !listed {
		s.notFound(w, r, ss)
		return
	}
	d.Period = per.Name
	orgIDs := make([]string, len(orgs))
	for i, o := range orgs {
		orgIDs[i] = o.ID
	}
	cov, err := s.o.Store.AuditCoverage(r.Context(), orgIDs, p.To, last.To)
	if err != nil {
		s.fail(w, err)
		return
	}
	complete, err := store.LoadCompleteness(r.Context(), s.o.Store)
	if err != nil {
		s.fail(w, err)
		return
	}
	for _, o := range orgs {
		at, recorded := complete[o.ID]
		waiting := !recorded || per.To.After(at)
		teams, err := s.routineTeams(r.Context(), ss.p, o.ID, per)
		if err != nil {
			s.fail(w, err)
			return
		}
		for _, c := range cov {
			if c.Org == o.ID && c.Period == per.Name && !slices.Contains(teams, c.Team) {
				teams = append(teams, c.Team)
			}
		}
		slices.Sort(teams)
		for _, team := range teams {
			if !ss.p.inScope(o.ID, team) {
				continue
			}
			row := coverageRow{Org: o.ID, OrgName: cmp.Or(o.Name, o.ID), Team: team, Period: per.Name, URL: routineURL(o.ID, team, per.Name)}
			for _, c := range cov {
				if c.Org == o.ID && c.Team == team && c.Period == per.Name {
					row = coverageFrom(row, c)
				}
			}
			if !row.Drawn && waiting {
				row.Waiting = true
				if recorded {
					row.CompleteUpTo = s.fmtTime(o.ID, at)
				}
			}
			d.Rows = append(d.Rows, row)
			text := fmt.Sprintf("%d of %d reviewed (%d%%)", row.Reviewed, row.Sampled, row.Pct)
			switch {
			case row.Empty:
				text = "no accesses in the period"
			case row.Waiting:
				text = "waiting for the feed"
			case !row.Drawn:
				text = "not drawn yet"
			}
			d.Bars = append(d.Bars, bar{Label: team, Value: float64(row.Pct), Text: text})
		}
		for _, c := range cov {
			if c.Org == o.ID && ss.p.inScope(c.Org, c.Team) {
				d.History = append(d.History, coverageFrom(coverageRow{Org: o.ID, OrgName: cmp.Or(o.Name, o.ID), Team: c.Team, Period: c.Period,
					URL: routineURL(o.ID, c.Team, c.Period)}, c))
			}
		}
	}
	slices.SortStableFunc(d.History, func(a, b coverageRow) int { return cmp.Compare(b.Period, a.Period) })
	d.BarChart = barsSVG(d.Bars, "Share of each team's sample reviewed, "+per.Name, 100)
	s.render(w, r, http.StatusOK, "routine", d)
}

// coverageFrom fills row from a stored sample's coverage. An empty sample
// has Pct 0 and Empty set: it reviewed nothing, so counting it as 100%
// would report an audit that never happened (and one drawn while the feed
// was behind would hide every access that came later).
func coverageFrom(row coverageRow, c routineaudit.Coverage) coverageRow {
	row.Drawn = true
	row.Sampled, row.Reviewed = c.Sampled, c.Reviewed
	row.Reasonable, row.Query, row.Refer = c.Reasonable, c.Query, c.Refer
	row.Empty = c.Sampled == 0
	if !row.Empty {
		row.Pct = c.Reviewed * 100 / c.Sampled
	}
	return row
}

func routineURL(org, team, period string) string {
	return "/audit/routine/" + url.PathEscape(org) + "/" + url.PathEscape(team) + "/" + url.PathEscape(period)
}

type sampleRow struct {
	N                       int
	Time, Worker, WorkerURL string
	Access, System          string
	accessContext                  // person, relationship and shift
	Outcome, OutcomeLabel   string // the newest review
	Reviewer, At, Note      string
	History                 []string
	Options                 []option
	// Typed, OutcomeError and NoteError: the form as sent (or, before any
	// submit, as stored), and what to fix in it.
	Typed, OutcomeError, NoteError string
}

type sampleData struct {
	page
	Org, OrgName, Team, Period, From, To string
	Population                           int64
	Seed, DrawnAt                        string
	// ShowSeed: the draw's reproducibility details are for those who
	// audit the audit (the DPO, the IG team), not for the reviewing manager.
	ShowSeed  bool
	Rows      []sampleRow
	CanReview bool
	Reviewed  int
	Pct       int
	// Saved is how many reviews the last Save recorded (-1: no Save).
	Saved   int
	Pending bool // the period has not ended yet
	// Waiting: the period has ended but the feed is not complete up to
	// End; CompleteUpTo is how far it is ("" when not complete for any
	// period).
	Waiting           bool
	End, CompleteUpTo string
	Action            string
}

// canReview: the team's own manager records reviews.
func (p Principal) canReview(org, team string) bool {
	return p.Role == RoleManager && p.inScope(org, team)
}

// seesSamples: who may open a sample (it names workers and, as pseudonyms,
// people): the team's managers, the IG team and the DPO; not admins.
func (p Principal) seesSamples(org, team string) bool {
	return p.Role != RoleAdmin && p.inScope(org, team)
}

// sampleState is whether a sample is there to show, and if not, why.
type sampleState int

const (
	sampleDrawn      sampleState = iota
	samplePeriodOpen             // the period has not ended
	sampleFeedBehind             // it has, but the feed is not complete up to its end
)

// sample returns the stored sample, drawing it first when none is stored,
// the period has ended and the feed is complete up to its end: the draw
// stands for ever, so it must not be made while accesses of the period
// may still be on their way.
func (s *Server) sample(ctx context.Context, org Org, team string, per auditPeriod) (routineaudit.Sample, sampleState, error) {
	a, err := s.o.Store.AuditSample(ctx, org.ID, team, per.Name)
	if err == nil {
		return a, sampleDrawn, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return routineaudit.Sample{}, 0, err
	}
	if s.o.Now().Before(per.To) {
		return routineaudit.Sample{}, samplePeriodOpen, nil
	}
	// Checked before the draw to spare its scan; the store checks again.
	err = store.CheckComplete(ctx, s.o.Store, org.ID, per.To)
	if errors.Is(err, store.ErrFeedIncomplete) {
		return routineaudit.Sample{}, sampleFeedBehind, nil
	}
	if err != nil {
		return routineaudit.Sample{}, 0, err
	}
	a, err = routineaudit.DrawSample(ctx, s.o.Store, org.ID, org.DPIA, team, per.Name, per.From, per.To, s.o.RoutineAudit.SampleSize)
	if err != nil {
		return routineaudit.Sample{}, 0, err
	}
	a.DrawnAt = s.o.Now().UTC()
	a, err = s.o.Store.PutAuditSample(ctx, a)
	if errors.Is(err, store.ErrFeedIncomplete) {
		return routineaudit.Sample{}, sampleFeedBehind, nil
	}
	if err != nil {
		return routineaudit.Sample{}, 0, err
	}
	s.log.Info("routine-audit sample drawn", "org", org.ID, "period", per.Name, "items", len(a.Items))
	return a, sampleDrawn, nil
}

// scopedSample resolves the path of a sample page within p's scope.
func (s *Server) scopedSample(r *http.Request, p Principal) (Org, string, auditPeriod, bool) {
	o, known := s.orgs[r.PathValue("org")]
	team := r.PathValue("team")
	if !known || team == "" || !p.seesSamples(o.ID, team) {
		return Org{}, "", auditPeriod{}, false
	}
	per, ok := parsePeriod(s.o.RoutineAudit.Period, r.PathValue("period"), s.loc(o.ID))
	return o, team, per, ok
}

func (s *Server) samplePage(w http.ResponseWriter, r *http.Request, ss *session) {
	o, team, per, ok := s.scopedSample(r, ss.p)
	if !ok {
		s.notFound(w, r, ss)
		return
	}
	s.showSample(w, r, ss, o, team, per, http.StatusOK, reviewForm{})
}

// showSample renders a sample page; with a form that has errors, that
// item's review form comes back as it was sent, with an error summary.
func (s *Server) showSample(w http.ResponseWriter, r *http.Request, ss *session, o Org, team string, per auditPeriod, code int, form reviewForm) {
	a, state, err := s.sample(r.Context(), o, team, per)
	if err != nil {
		s.fail(w, err)
		return
	}
	drawn := state == sampleDrawn
	if drawn && !s.recordView(w, r, ss, viewlog.KindSample, o.ID, team+"/"+per.Name, len(a.Items)) {
		return
	}
	reviews, err := s.o.Store.AuditReviews(r.Context(), o.ID, team, per.Name)
	if err != nil {
		s.fail(w, err)
		return
	}
	loc := s.loc(o.ID)
	d := sampleData{page: s.pageFor(ss, "Routine audit: "+team+", "+per.Name, "routine"), Org: o.ID, OrgName: cmp.Or(o.Name, o.ID),
		Team: team, Period: per.Name, From: per.From.In(loc).Format("Mon 2 Jan 2006"), To: per.To.Add(-time.Nanosecond).In(loc).Format("Mon 2 Jan 2006"),
		Population: a.Population, Seed: a.Seed, DrawnAt: s.fmtTime(o.ID, a.DrawnAt), CanReview: ss.p.canReview(o.ID, team), Saved: -1,
		ShowSeed: ss.p.Role == RoleDPO || ss.p.Role == RoleIGTeam,
		Pending:  state == samplePeriodOpen, Waiting: state == sampleFeedBehind, End: s.fmtTime(o.ID, per.To), Action: routineURL(o.ID, team, per.Name)}
	if d.Waiting {
		at, recorded, err := store.OrgCompleteness(r.Context(), s.o.Store, o.ID)
		if err != nil {
			s.fail(w, err)
			return
		}
		if recorded {
			d.CompleteUpTo = s.fmtTime(o.ID, at)
		}
	}
	latest, history := reviewsByItem(reviews, func(rv routineaudit.Review) string {
		return fmt.Sprintf("%s: %s by %s", s.fmtTime(o.ID, rv.At), reviewLabel(rv.Outcome), rv.Reviewer)
	})
	var x ReferenceIndex
	if s.o.InForce != nil {
		x = s.o.InForce()
	}
	for _, it := range a.Items {
		row := sampleRow{N: it.N, Time: s.fmtTime(o.ID, it.Time), Worker: it.ActorID, WorkerURL: s.actorURL(ss.p, o.ID, it.ActorID),
			Access: accessWords(it.Action, it.Record), System: it.System, OutcomeLabel: reviewLabel(""),
			accessContext: s.sampleContext(ss.p, x, o.ID, team, it)}
		if rv, ok := latest[it.N]; ok {
			d.Reviewed++
			row.Outcome, row.OutcomeLabel, row.Reviewer, row.At, row.Note = rv.Outcome, reviewLabel(rv.Outcome), rv.Reviewer, s.fmtTime(o.ID, rv.At), rv.Note
			if h := history[it.N]; len(h) > 1 {
				row.History = h[:len(h)-1]
			}
		}
		chosen, typed := row.Outcome, row.Note
		if f, sent := form.Items[it.N]; sent {
			chosen, typed = f.Outcome, f.Note
		}
		row.Typed = typed
		for _, e := range form.Errors {
			switch e.Field {
			case reviewField(it.N):
				row.OutcomeError = e.Message
			case "note-" + strconv.Itoa(it.N):
				row.NoteError = e.Message
			}
		}
		for _, oc := range reviewChoices {
			row.Options = append(row.Options, option{Value: oc, Label: choiceLabel(oc), Selected: chosen == oc})
		}
		d.Rows = append(d.Rows, row)
	}
	if len(a.Items) > 0 {
		d.Pct = d.Reviewed * 100 / len(a.Items)
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("saved")); err == nil && n >= 0 && n <= len(a.Items) && form.Items == nil {
		d.Saved = n
	}
	d.Errors = form.Errors
	s.render(w, r, code, "sample", d)
}

// reviewsByItem returns the newest review of each item, and each item's
// reviews as describe words them, oldest first.
func reviewsByItem(reviews []routineaudit.Review, describe func(routineaudit.Review) string) (map[int]routineaudit.Review, map[int][]string) {
	latest := map[int]routineaudit.Review{}
	history := map[int][]string{}
	for _, rv := range reviews {
		latest[rv.N] = rv
		history[rv.N] = append(history[rv.N], describe(rv))
	}
	return latest, history
}

// review records a manager's decisions on a sample: one form, one
// decision per access, those left blank skipped. Nothing is stored unless
// the whole form is valid; then each decision that changes something is
// stored and the page says how many.
func (s *Server) review(w http.ResponseWriter, r *http.Request, ss *session) {
	o, team, per, ok := s.scopedSample(r, ss.p)
	if !ok {
		s.notFound(w, r, ss)
		return
	}
	if !ss.p.canReview(o.ID, team) {
		s.errorPage(w, r, ss, http.StatusForbidden, errorData{Heading: "You cannot review this sample",
			Message: "Only the team's manager records routine-audit reviews. Nothing was changed.",
			Back:    routineURL(o.ID, team, per.Name), BackLabel: "Back to the sample"})
		return
	}
	a, state, err := s.sample(r.Context(), o, team, per)
	if err != nil {
		s.fail(w, err)
		return
	}
	if state != sampleDrawn {
		s.notFound(w, r, ss) // nothing to review yet: no form sends that
		return
	}
	reviews, err := s.o.Store.AuditReviews(r.Context(), o.ID, team, per.Name)
	if err != nil {
		s.fail(w, err)
		return
	}
	latest, _ := reviewsByItem(reviews, func(routineaudit.Review) string { return "" })
	changed, ns, form := readReviewForm(r, a.Items, latest)
	if form.Errors != nil {
		s.showSample(w, r, ss, o, team, per, http.StatusBadRequest, form)
		return
	}
	at := s.o.Now().UTC()
	for i, f := range changed {
		_, err = s.o.Store.AddAuditReview(r.Context(), routineaudit.Review{Org: o.ID, Team: team, Period: per.Name, N: ns[i], Outcome: f.Outcome,
			Reviewer: ss.p.User, At: at, Note: f.Note})
		if err != nil {
			s.fail(w, fmt.Errorf("routine-audit review %d of %d: %w", i+1, len(changed), err))
			return
		}
		s.m.reviews.WithLabelValues(f.Outcome).Inc()
	}
	http.Redirect(w, r, routineURL(o.ID, team, per.Name)+"?saved="+strconv.Itoa(len(changed))+"#saved", http.StatusSeeOther)
}
