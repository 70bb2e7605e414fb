package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// episodeTable is where a check's open episodes are checkpointed, keyed by
// alert id (ids need no escaping): rules/<check>/ep/<id>. No Keyed table
// may be named "ep".
const episodeTable = "ep/"

// Finding is what a check reports about one event.
type Finding struct {
	Pattern  string
	Severity alert.Severity // base severity, before the sensitivity raise
	Gap      time.Duration  // events this close to the episode join it
	// Lead describes this event in one clause, without the final full stop;
	// the earliest event of an episode leads its explanation. It is called
	// only when the event leads, which is rare, and so built lazily.
	Lead func() string
}

// episodeKey is what one episode is about (CONTRACT §3).
type episodeKey struct{ org, actor, pattern string }

// episode is one growing alert and what is needed to grow it.
type episode struct {
	key       episodeKey
	gap       time.Duration
	base      alert.Severity
	sensitive bool
	leadAt    time.Time
	lead      string
	subjectAt time.Time
	alert     alert.Alert
	dirty     bool // changed in this batch
	opened    bool // opened in this batch
	evicted   bool
	loc       *time.Location // the org's, for the explanation
}

// episodeState is an episode's checkpoint.
type episodeState struct {
	Alert     alert.Alert    `json:"alert"`
	GapNS     int64          `json:"gap_ns"`
	Base      alert.Severity `json:"base"`
	Sensitive bool           `json:"sensitive,omitempty"`
	LeadAt    time.Time      `json:"lead_at"`
	Lead      string         `json:"lead"`
	SubjectAt time.Time      `json:"subject_at,omitzero"`
}

// Episodes tracks the open Episodes of one check, bounded by the org
// watermarks, and what changed since the last drain.
//
// An event joins an episode when its time lies within the gap of it and the
// episode was still open when the checks' clock stood at the event being
// judged: in event order, an episode whose LastSeen plus gap that clock has
// passed can gain nothing more. An event that arrives late — behind the
// frontier, judged on arrival — is matched as if it had been judged on time
// (env.episodeNow), so it still joins the episode it belongs to: closed
// Episodes are kept for lateJoin more of event time before they are
// evicted, and the alert grows (last_seen and event ids; its notification
// is updated, not sent again) exactly as it would have on time. An event
// later still opens an alert of its own, which is kept, never dropped.
type Episodes struct {
	check   string
	prefix  string // state key prefix of this check
	open    map[episodeKey][]*episode
	n       int
	changed []*episode
	gone    []string // state keys to delete
}

func newEpisodes(check string) *Episodes {
	return &Episodes{check: check, prefix: StatePrefix + check + "/", open: make(map[episodeKey][]*episode)}
}

func (s *Episodes) len() int { return s.n }

func (s *Episodes) stateKey(id string) string { return s.prefix + episodeTable + id }

// lateJoin is how long, in event time, an episode is kept after the org's
// judged time has passed its LastSeen plus gap, so that late events can
// still join it. A day covers a producer's or a partition's outage of
// hours; alerts are few, so the memory it costs is small.
const lateJoin = 24 * time.Hour

// expired reports whether ep was closed when the checks' clock stood at
// now: no event judged at or after now can join it.
func (ep *episode) expired(now time.Time) bool {
	return ep.alert.LastSeen.Add(ep.gap).Before(now)
}

// evictable reports whether the org's judged time has left ep so far behind
// that not even a late event may join it any more.
func (ep *episode) evictable(judged time.Time) bool {
	return ep.alert.LastSeen.Add(ep.gap + lateJoin).Before(judged)
}

// Add records that ev matched f: it joins an open episode of the same org,
// actor and pattern when its time lies within the gap of it, else opens a
// new one whose alert id derives from ev.
func (s *Episodes) Add(v *Env, ev *event.Event, f Finding) {
	k := episodeKey{v.org.id, ev.Actor.ID, f.Pattern}
	t := ev.Time.UTC()
	// A late event is matched as if it had been judged on time.
	now := v.watermark
	if !v.episodeNow.IsZero() {
		now = v.episodeNow
	}
	var ep *episode
	for _, c := range s.open[k] {
		if c.expired(now) || t.Before(c.alert.FirstSeen.Add(-c.gap)) || t.After(c.alert.LastSeen.Add(c.gap)) {
			continue
		}
		// An event bridging two episodes joins the older one: a choice that
		// does not depend on the order episodes were restored in.
		if ep == nil || c.alert.FirstSeen.Before(ep.alert.FirstSeen) ||
			(c.alert.FirstSeen.Equal(ep.alert.FirstSeen) && c.alert.ID < ep.alert.ID) {
			ep = c
		}
	}
	if ep == nil {
		ep = s.openEpisode(v, k, ev, f)
	}
	if !ep.alert.AddEvent(ev.ID, t) {
		return
	}
	if ev.Action.IsRecordAction() && ev.Subject.ID != "" && (ep.alert.SubjectID == "" || t.Before(ep.subjectAt)) {
		ep.alert.SubjectID = ev.Subject.ID
		ep.subjectAt = t
	}
	if len(ev.Subject.Sensitivity) > 0 {
		ep.sensitive = true
	}
	if t.Before(ep.leadAt) {
		ep.leadAt, ep.lead = t, f.Lead()
	}
	ep.loc = v.org.loc
	if !ep.dirty {
		ep.dirty = true
		s.changed = append(s.changed, ep)
	}
}

func (s *Episodes) openEpisode(v *Env, k episodeKey, ev *event.Event, f Finding) *episode {
	rs := v.org.risksOf(s.check, k.pattern)
	base := f.Severity
	if rs.severity != "" { // the DPIA scored the risks this pattern evidences
		base = rs.severity
	}
	ep := &episode{
		key:    k,
		gap:    f.Gap,
		base:   base,
		leadAt: ev.Time.UTC(),
		lead:   f.Lead(),
		opened: true,
		alert: alert.Alert{
			ID:         alert.ID(k.org, s.check, k.pattern, k.actor, ev.Subject.ID, ev.System, ev.ID),
			Check:      s.check,
			Pattern:    k.pattern,
			Org:        k.org,
			ActorID:    k.actor,
			DPIA:       v.org.dpia,
			Risks:      rs.ids,
			RiskTitles: rs.titles,
			Mitigation: rs.mitigation,
			EventIDs:   []string{},
		},
	}
	if ep.alert.Risks == nil {
		ep.alert.Risks = []string{}
	}
	s.open[k] = append(s.open[k], ep)
	s.n++
	return ep
}

// raise puts base one step up when a sensitive subject is involved.
func raise(base alert.Severity, sensitive bool) alert.Severity {
	if r := base.Rank(); sensitive && r >= 0 && r+1 < len(alert.Severities) {
		return alert.Severities[r+1]
	}
	return base
}

// explain renders the episode's one sentence: the earliest event, then how
// many more actions and until when.
func explain(ep *episode, loc *time.Location) string {
	s := ep.lead
	if more := ep.alert.EventCount - 1; more > 0 {
		noun := "actions"
		if more == 1 {
			noun = "action"
		}
		last := ep.alert.LastSeen.In(loc)
		until := last.Format("15:04")
		if y, m, d := last.Date(); y != ep.leadAt.In(loc).Year() || m != ep.leadAt.In(loc).Month() || d != ep.leadAt.In(loc).Day() {
			until += " on " + last.Format("Mon 2 Jan")
		}
		s += ", and " + strconv.Itoa(more) + " more " + noun + " until " + until
	}
	return s + "."
}

// evict drops the episodes the frontiers have left behind.
func (s *Episodes) evict(marks map[string]time.Time) {
	for k, list := range s.open {
		wm, ok := marks[k.org]
		if !ok {
			continue
		}
		kept := list[:0]
		for _, ep := range list {
			if ep.evictable(wm) {
				ep.evicted = true
				s.gone = append(s.gone, s.stateKey(ep.alert.ID))
				s.n--
				continue
			}
			kept = append(kept, ep)
		}
		if len(kept) == 0 {
			delete(s.open, k)
		} else {
			clear(list[len(kept):])
			s.open[k] = kept
		}
	}
}

// drain returns the alerts changed since the last drain (opened[i] tells
// whether alerts[i] is new) and the state entries to save, and forgets them.
func (s *Episodes) drain(discard bool) (alerts []alert.Alert, opened []bool, state []store.StateEntry, err error) {
	for _, ep := range s.changed {
		// Rendered once per batch, not per event.
		ep.alert.Severity = raise(ep.base, ep.sensitive)
		ep.alert.Explanation = explain(ep, ep.loc)
		alerts = append(alerts, cloneAlert(&ep.alert))
		opened = append(opened, ep.opened)
		if !ep.evicted && !discard {
			v, err := json.Marshal(ep.state())
			if err != nil {
				return nil, nil, nil, fmt.Errorf("encode episode: %w", err)
			}
			state = append(state, store.StateEntry{Key: s.stateKey(ep.alert.ID), Value: v})
		}
		ep.dirty, ep.opened = false, false
	}
	if !discard {
		sort.Strings(s.gone)
		for _, k := range s.gone {
			state = append(state, store.StateEntry{Key: k})
		}
	}
	clear(s.changed)
	s.changed, s.gone = s.changed[:0], s.gone[:0]
	return alerts, opened, state, nil
}

// cloneAlert copies a so that later growth does not alter what was returned.
func cloneAlert(a *alert.Alert) alert.Alert {
	c := *a
	c.EventIDs = append([]string(nil), a.EventIDs...)
	c.Risks = append([]string{}, a.Risks...)
	if a.RiskTitles != nil {
		c.RiskTitles = append([]string(nil), a.RiskTitles...)
	}
	return c
}

func (ep *episode) state() episodeState {
	return episodeState{
		Alert: ep.alert, GapNS: int64(ep.gap), Base: ep.base, Sensitive: ep.sensitive,
		LeadAt: ep.leadAt, Lead: ep.lead, SubjectAt: ep.subjectAt,
	}
}

// restore loads one checkpointed episode.
func (s *Episodes) restore(key string, value []byte) error {
	var st episodeState
	if err := json.Unmarshal(value, &st); err != nil {
		return fmt.Errorf("decode episode: %w", err)
	}
	a := st.Alert
	switch {
	case a.ID == "" || key != s.stateKey(a.ID):
		return fmt.Errorf("episode key does not match its alert id")
	case a.Check != s.check || a.Org == "" || a.ActorID == "" || a.Pattern == "":
		return fmt.Errorf("episode lacks its check, org, actor or pattern")
	case st.GapNS < 0 || a.FirstSeen.IsZero() || a.LastSeen.Before(a.FirstSeen) || a.EventCount < len(a.EventIDs):
		return fmt.Errorf("episode times or counts are inconsistent")
	case st.Base.Rank() < 0:
		return fmt.Errorf("episode has an unknown severity")
	}
	a.FirstSeen, a.LastSeen = a.FirstSeen.UTC(), a.LastSeen.UTC()
	if a.EventIDs == nil {
		a.EventIDs = []string{}
	}
	if a.Risks == nil {
		a.Risks = []string{}
	}
	ep := &episode{
		key: episodeKey{a.Org, a.ActorID, a.Pattern}, gap: time.Duration(st.GapNS), base: st.Base,
		sensitive: st.Sensitive, leadAt: st.LeadAt.UTC(), lead: st.Lead, alert: a,
	}
	if !st.SubjectAt.IsZero() {
		ep.subjectAt = st.SubjectAt.UTC()
	}
	list := s.open[ep.key]
	for i, old := range list {
		if old.alert.ID == a.ID { // restored twice: the later entry wins
			list[i] = ep
			return nil
		}
	}
	s.open[ep.key] = append(list, ep)
	s.n++
	return nil
}

func (s *Episodes) reset() {
	clear(s.open)
	clear(s.changed)
	s.changed, s.gone, s.n = s.changed[:0], s.gone[:0], 0
}
