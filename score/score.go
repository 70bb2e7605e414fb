// Package score measures the checks against a known truth: the labelled
// episodes of misuse the simulator injected, and the alerts a replay of the
// same events produced. It reports precision and recall per check and per
// pattern, so that a change to a check (or to the simulator) shows up as a
// number, and CI can gate on it.
//
// # Matching
//
// The truth is a set of labelled events; each belongs to one episode, which
// has one check and one pattern. An alert A matches an episode E when
//
//   - A.Org equals E's org and A.Check equals E's check, and
//   - one of A.EventIDs is an event of E, or, when A's event ids were capped
//     (A.EventCount > len(A.EventIDs), see alert.MaxEventIDs), an event of E
//     acted by A.ActorID lies within [A.FirstSeen, A.LastSeen]: the ids left
//     out of a capped alert are events of its actor inside its span, so this
//     is the closest test the alert itself allows.
//
// The pattern plays no part in matching; it decides how a match is counted.
// For a check:
//
//   - an alert of the check is a true positive (TP) when it matches at
//     least one episode of the check, else a false positive (FP);
//   - an episode of the check is found when at least one alert of the check
//     matches it, else it is a false negative (FN, missed);
//   - precision = TP / alerts, recall = found / episodes.
//
// For a pattern P of a check, the same with the pattern taken into account:
// an alert of pattern P is a TP when it matches an episode labelled P; when
// it matches only episodes of the check labelled with other patterns it is
// counted apart as "wrong pattern" (right check, wrong pattern), not as a
// TP, and not as an FP either; an episode labelled P is found when an alert
// of pattern P matches it, found with a wrong pattern when only alerts of
// other patterns do, and missed when no alert of the check does. At the
// check level a wrong-pattern alert is a TP and a wrong-pattern episode is
// found.
//
// Several alerts may match one episode (an episode split in two by a long
// pause, say): each is a TP, and the episode is found once. An alert that
// matches no episode of its check but touches events of another check's
// episode is an FP whose Touches field names those episodes: it shows where
// an injection breaks more than the one rule it was meant to.
//
// A ratio with a zero denominator (precision of a check with no alerts,
// recall of a check with no labelled episodes) is undefined: nil in JSON,
// "-" in the table, and never below a threshold.
package score

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
)

// LabelledEvent is one event of an injected episode, with what matching
// needs to know of it.
type LabelledEvent struct {
	Org     string
	EventID string
	ActorID string
	Time    time.Time
	Check   string
	Pattern string
	Episode string // unique within the org
}

// Truth is the labelled episodes of one or more simulations. The zero value
// is not usable; call NewTruth.
type Truth struct {
	episodes map[epKey]*episode
	events   map[evKey]*episode
	byActor  map[actorKey][]actorEvent // sorted lazily by time
	sorted   bool
}

type epKey struct{ org, episode string }
type evKey struct{ org, id string }
type actorKey struct{ org, actor string }

type actorEvent struct {
	t  time.Time
	ep *episode
}

type episode struct {
	org, id, check, pattern string
	events                  int
	first, last             time.Time
}

// NewTruth returns an empty Truth.
func NewTruth() *Truth {
	return &Truth{
		episodes: map[epKey]*episode{},
		events:   map[evKey]*episode{},
		byActor:  map[actorKey][]actorEvent{},
	}
}

// Add records one labelled event. The same event added again is ignored; an
// event labelled with two episodes, or an episode with two checks or
// patterns, is an error: the truth would be ambiguous.
func (t *Truth) Add(e LabelledEvent) error {
	if e.Org == "" || e.EventID == "" || e.Check == "" || e.Episode == "" {
		return errors.New("score: labelled event lacks its org, event id, check or episode")
	}
	ep, ok := t.episodes[epKey{e.Org, e.Episode}]
	if ok && (ep.check != e.Check || ep.pattern != e.Pattern) {
		return fmt.Errorf("score: episode %s is labelled both %s/%s and %s/%s", e.Episode, ep.check, ep.pattern, e.Check, e.Pattern)
	}
	if old, dup := t.events[evKey{e.Org, e.EventID}]; dup {
		if old != ep {
			return fmt.Errorf("score: event %s is labelled with episodes %s and %s", e.EventID, old.id, e.Episode)
		}
		return nil
	}
	if !ok {
		ep = &episode{org: e.Org, id: e.Episode, check: e.Check, pattern: e.Pattern, first: e.Time, last: e.Time}
		t.episodes[epKey{e.Org, e.Episode}] = ep
	}
	t.events[evKey{e.Org, e.EventID}] = ep
	ep.events++
	if e.Time.Before(ep.first) {
		ep.first = e.Time
	}
	if e.Time.After(ep.last) {
		ep.last = e.Time
	}
	if e.ActorID != "" && !e.Time.IsZero() {
		k := actorKey{e.Org, e.ActorID}
		t.byActor[k] = append(t.byActor[k], actorEvent{e.Time, ep})
		t.sorted = false
	}
	return nil
}

// Episodes is the number of labelled episodes.
func (t *Truth) Episodes() int { return len(t.episodes) }

// Options tune Score. The zero value scores every check.
type Options struct {
	// Checks, when not nil, are the checks that ran. Labelled episodes of
	// other checks are not scored (a check that does not exist yet cannot
	// miss anything); they are counted in Report.NotRun.
	Checks []string
}

// Report is the outcome of Score. Every list is in a fixed order, so that
// the same truth and alerts always give the same report.
type Report struct {
	Checks []CheckScore `json:"checks"`
	// NotRun counts labelled episodes per check that did not run.
	NotRun map[string]int `json:"not_run,omitempty"`
	// FalsePositives are the FP alerts, WrongPattern the wrong-pattern ones,
	// Missed the FN episodes (and FoundWrongPattern those found only with
	// another pattern): what to investigate.
	FalsePositives    []AlertRef   `json:"false_positives"`
	WrongPattern      []AlertRef   `json:"wrong_pattern"`
	Missed            []EpisodeRef `json:"missed"`
	FoundWrongPattern []EpisodeRef `json:"found_wrong_pattern"`
}

// CheckScore is one check: its totals, then one row per pattern (those
// labelled and those alerted, by name).
type CheckScore struct {
	Check string `json:"check"`
	Counts
	Patterns []PatternScore `json:"patterns"`
}

// PatternScore is one pattern of a check.
type PatternScore struct {
	Pattern string `json:"pattern"`
	Counts
}

// Counts are the numbers behind one row. Episodes = Found +
// FoundWrongPattern + Missed; Alerts = TP + WrongPattern + FP. At the check
// level FoundWrongPattern and WrongPattern are already inside Found and TP
// and are shown for information.
type Counts struct {
	Episodes          int      `json:"episodes"`
	Found             int      `json:"found"`
	FoundWrongPattern int      `json:"found_wrong_pattern"`
	Missed            int      `json:"missed"`
	Alerts            int      `json:"alerts"`
	TP                int      `json:"tp"`
	WrongPattern      int      `json:"wrong_pattern"`
	FP                int      `json:"fp"`
	Precision         *float64 `json:"precision"` // TP / Alerts; nil when no alerts
	Recall            *float64 `json:"recall"`    // Found / Episodes; nil when no episodes
}

// AlertRef names an alert to investigate. It carries no subject and no
// explanation: a report may be shared beyond those who may see them.
type AlertRef struct {
	ID         string    `json:"id"`
	Check      string    `json:"check"`
	Pattern    string    `json:"pattern"`
	Org        string    `json:"org"`
	ActorID    string    `json:"actor_id"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	EventCount int       `json:"event_count"`
	// Episodes are the labelled episodes the alert touches, as
	// "episode (check/pattern)": for a wrong-pattern alert those of its
	// check, for an FP those of other checks.
	Episodes []string `json:"episodes,omitempty"`
}

// EpisodeRef names a labelled episode.
type EpisodeRef struct {
	Org       string    `json:"org"`
	Episode   string    `json:"episode"`
	Check     string    `json:"check"`
	Pattern   string    `json:"pattern"`
	Events    int       `json:"events"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// AlertPatterns are the patterns of the alerts of the check that found
	// the episode under another pattern.
	AlertPatterns []string `json:"alert_patterns,omitempty"`
}

// Score matches alerts against the truth as the package documentation
// describes.
func Score(t *Truth, alerts []alert.Alert, o Options) *Report {
	t.sortActors()
	ran := func(string) bool { return true }
	if o.Checks != nil {
		set := map[string]bool{}
		for _, c := range o.Checks {
			set[c] = true
		}
		ran = func(c string) bool { return set[c] }
	}

	type cpKey struct{ check, pattern string }
	rows := map[cpKey]*Counts{}
	row := func(c, p string) *Counts {
		r := rows[cpKey{c, p}]
		if r == nil {
			r = &Counts{}
			rows[cpKey{c, p}] = r
		}
		return r
	}
	checkSet := map[string]bool{}
	r := &Report{}

	// found[ep] holds the patterns of the alerts of ep's check that match it.
	found := map[*episode]map[string]bool{}
	for _, ep := range t.episodes {
		if !ran(ep.check) {
			if r.NotRun == nil {
				r.NotRun = map[string]int{}
			}
			r.NotRun[ep.check]++
			continue
		}
		checkSet[ep.check] = true
		row(ep.check, ep.pattern).Episodes++
	}

	for i := range alerts {
		a := &alerts[i]
		checkSet[a.Check] = true
		c := row(a.Check, a.Pattern)
		c.Alerts++
		same, other := t.match(a)
		exact := false
		for _, ep := range same {
			if found[ep] == nil {
				found[ep] = map[string]bool{}
			}
			found[ep][a.Pattern] = true
			if ep.pattern == a.Pattern {
				exact = true
			}
		}
		switch {
		case exact:
			c.TP++
		case len(same) > 0:
			c.WrongPattern++
			r.WrongPattern = append(r.WrongPattern, alertRef(a, same))
		default:
			c.FP++
			r.FalsePositives = append(r.FalsePositives, alertRef(a, other))
		}
	}

	for _, ep := range t.episodes {
		if !ran(ep.check) {
			continue
		}
		c := row(ep.check, ep.pattern)
		pats := found[ep]
		switch {
		case pats[ep.pattern]:
			c.Found++
		case len(pats) > 0:
			c.FoundWrongPattern++
			ref := episodeRef(ep)
			for p := range pats {
				ref.AlertPatterns = append(ref.AlertPatterns, p)
			}
			sort.Strings(ref.AlertPatterns)
			r.FoundWrongPattern = append(r.FoundWrongPattern, ref)
		default:
			c.Missed++
			r.Missed = append(r.Missed, episodeRef(ep))
		}
	}

	checks := make([]string, 0, len(checkSet))
	for c := range checkSet {
		checks = append(checks, c)
	}
	sort.Strings(checks)
	for _, name := range checks {
		cs := CheckScore{Check: name}
		var pats []string
		for k := range rows {
			if k.check == name {
				pats = append(pats, k.pattern)
			}
		}
		sort.Strings(pats)
		for _, p := range pats {
			c := *rows[cpKey{name, p}]
			c.ratios(c.TP, c.Found)
			cs.Patterns = append(cs.Patterns, PatternScore{Pattern: p, Counts: c})
			cs.Episodes += c.Episodes
			cs.FoundWrongPattern += c.FoundWrongPattern
			cs.Found += c.Found + c.FoundWrongPattern
			cs.Missed += c.Missed
			cs.Alerts += c.Alerts
			cs.WrongPattern += c.WrongPattern
			cs.TP += c.TP + c.WrongPattern
			cs.FP += c.FP
		}
		cs.ratios(cs.TP, cs.Found)
		r.Checks = append(r.Checks, cs)
	}

	byAlert := func(a, b AlertRef) int {
		return cmp.Or(cmp.Compare(a.Check, b.Check), cmp.Compare(a.Pattern, b.Pattern), a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.ID, b.ID))
	}
	byEpisode := func(a, b EpisodeRef) int {
		return cmp.Or(cmp.Compare(a.Check, b.Check), cmp.Compare(a.Pattern, b.Pattern), a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.Org, b.Org), cmp.Compare(a.Episode, b.Episode))
	}
	slices.SortFunc(r.FalsePositives, byAlert)
	slices.SortFunc(r.WrongPattern, byAlert)
	slices.SortFunc(r.Missed, byEpisode)
	slices.SortFunc(r.FoundWrongPattern, byEpisode)
	for _, l := range []*[]AlertRef{&r.FalsePositives, &r.WrongPattern} {
		if *l == nil {
			*l = []AlertRef{}
		}
	}
	for _, l := range []*[]EpisodeRef{&r.Missed, &r.FoundWrongPattern} {
		if *l == nil {
			*l = []EpisodeRef{}
		}
	}
	return r
}

func (c *Counts) ratios(tp, found int) {
	if c.Alerts > 0 {
		p := float64(tp) / float64(c.Alerts)
		c.Precision = &p
	}
	if c.Episodes > 0 {
		r := float64(found) / float64(c.Episodes)
		c.Recall = &r
	}
}

// match returns the episodes a matches (same org and check), and the
// episodes of other checks it touches, each once, by episode id.
func (t *Truth) match(a *alert.Alert) (same, other []*episode) {
	seen := map[*episode]bool{}
	note := func(ep *episode) {
		if seen[ep] {
			return
		}
		seen[ep] = true
		if ep.check == a.Check {
			same = append(same, ep)
		} else {
			other = append(other, ep)
		}
	}
	for _, id := range a.EventIDs {
		if ep, ok := t.events[evKey{a.Org, id}]; ok {
			note(ep)
		}
	}
	if a.EventCount > len(a.EventIDs) {
		evs := t.byActor[actorKey{a.Org, a.ActorID}]
		i, _ := slices.BinarySearchFunc(evs, a.FirstSeen, func(e actorEvent, t time.Time) int { return e.t.Compare(t) })
		for ; i < len(evs) && !evs[i].t.After(a.LastSeen); i++ {
			note(evs[i].ep)
		}
	}
	byID := func(x, y *episode) int { return cmp.Compare(x.id, y.id) }
	slices.SortFunc(same, byID)
	slices.SortFunc(other, byID)
	return same, other
}

func (t *Truth) sortActors() {
	if t.sorted {
		return
	}
	for _, evs := range t.byActor {
		slices.SortStableFunc(evs, func(x, y actorEvent) int { return x.t.Compare(y.t) })
	}
	t.sorted = true
}

func alertRef(a *alert.Alert, eps []*episode) AlertRef {
	ref := AlertRef{
		ID: a.ID, Check: a.Check, Pattern: a.Pattern, Org: a.Org, ActorID: a.ActorID,
		FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, EventCount: a.EventCount,
	}
	for _, ep := range eps {
		ref.Episodes = append(ref.Episodes, ep.id+" ("+ep.check+"/"+ep.pattern+")")
	}
	return ref
}

func episodeRef(ep *episode) EpisodeRef {
	return EpisodeRef{Org: ep.org, Episode: ep.id, Check: ep.check, Pattern: ep.pattern, Events: ep.events, FirstSeen: ep.first, LastSeen: ep.last}
}

// Failure is one check below a threshold.
type Failure struct {
	Check   string
	Measure string // "precision" or "recall"
	Value   float64
	Min     float64
}

func (f Failure) String() string {
	return fmt.Sprintf("%s: %s %.3f is below %.3f", f.Check, f.Measure, f.Value, f.Min)
}

// Below lists the checks with labelled episodes whose precision or recall
// falls below the minimum given. An undefined ratio is never below.
func (r *Report) Below(minPrecision, minRecall float64) []Failure {
	var out []Failure
	for _, c := range r.Checks {
		if c.Episodes == 0 {
			continue
		}
		if c.Precision != nil && *c.Precision < minPrecision {
			out = append(out, Failure{c.Check, "precision", *c.Precision, minPrecision})
		}
		if c.Recall != nil && *c.Recall < minRecall {
			out = append(out, Failure{c.Check, "recall", *c.Recall, minRecall})
		}
	}
	return out
}

// ReadAlerts reads alerts written as JSON Lines (replay --alerts-out).
func ReadAlerts(r io.Reader) ([]alert.Alert, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []alert.Alert
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var a alert.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			return nil, fmt.Errorf("score: alerts line %d: %w", n, err)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("score: reading alerts: %w", err)
	}
	return out, nil
}
