// Package backtest re-runs the checks over a store's own history for a
// period and compares what they raise with the alerts stored at the time:
// how a team sees what a changed threshold or a new override would have
// done before deploying it (issue 14). It only reads the store.
package backtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/heartbeat"
	"github.com/dpiawatch/dpiawatch/store"
)

// Evaluator is the part of the rules engine a backtest needs, as replay's.
type Evaluator interface {
	Process(fresh []event.Event) (store.Effects, error)
	Flush() store.Effects
}

// Source is the part of a store a backtest reads.
type Source interface {
	// ScanEvents streams events ordered by time then key (store.Reader).
	ScanEvents(ctx context.Context, f store.EventFilter, fn func(event.Event) error) error
	Alerts(ctx context.Context, f store.AlertFilter) ([]alert.Alert, error)
}

// Options configures a backtest.
type Options struct {
	Org      string    // "" is every org
	From, To time.Time // the period: From inclusive, To exclusive
	// ChunkSize is how many events go to the evaluator at once; default
	// 50,000, as replay's (the checks' results do not depend on it).
	ChunkSize int
	// Examples is how many alerts of each kind are kept per check and
	// pattern; default 3.
	Examples int
	// Progress, if set, is called after each chunk with the events judged.
	Progress func(events int)
}

// Group is the difference for one check and pattern.
type Group struct {
	Check   string   `json:"check"`
	Pattern string   `json:"pattern"`
	Stored  int      `json:"stored"`  // alerts stored for the period
	Rerun   int      `json:"rerun"`   // alerts the re-run raised
	New     int      `json:"new"`     // raised by the re-run, not stored
	Gone    int      `json:"gone"`    // stored, not raised by the re-run
	Changed int      `json:"changed"` // same id, other events, last_seen or severity
	Same    int      `json:"same"`
	Example Examples `json:"examples"`
}

// Examples are up to Options.Examples alerts of each kind.
type Examples struct {
	New     []alert.Alert `json:"new,omitempty"`
	Gone    []alert.Alert `json:"gone,omitempty"`
	Changed []Change      `json:"changed,omitempty"`
}

// Change is one alert whose id both sides raised, as stored and re-run.
type Change struct {
	Fields []string    `json:"fields"` // what differs: event_ids, last_seen, severity
	Stored alert.Alert `json:"stored"`
	Rerun  alert.Alert `json:"rerun"`
}

// Result is a backtest's outcome.
type Result struct {
	Org    string    `json:"org,omitempty"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Events int       `json:"events"` // events re-judged
	Groups []Group   `json:"groups"` // by check, then pattern
}

// Empty says whether the re-run raised exactly the stored alerts.
func (r Result) Empty() bool {
	for _, g := range r.Groups {
		if g.New+g.Gone+g.Changed > 0 {
			return false
		}
	}
	return true
}

// notFromEvents are the checks whose alerts the stored events alone cannot
// raise again: conflicting duplicates never reach the store, and feed
// silence is judged against the daemon's wall clock.
var notFromEvents = map[string]bool{rules.CheckFeedIntegrity: true, heartbeat.CheckFeedSilent: true}

// Run streams the period's events from src in event-time order through
// eval and compares the alerts it raises with the stored ones. Only alerts
// first seen within the period are compared, on both sides: an episode
// opened before From was opened by events the re-run does not see.
func Run(ctx context.Context, src Source, eval Evaluator, o Options) (Result, error) {
	if src == nil || eval == nil {
		return Result{}, errors.New("backtest: source and evaluator are required")
	}
	if !o.From.Before(o.To) {
		return Result{}, fmt.Errorf("backtest: the period %s – %s is empty", o.From, o.To)
	}
	o.ChunkSize = cmp.Or(max(o.ChunkSize, 0), 50_000)
	o.Examples = cmp.Or(max(o.Examples, 0), 3)
	res := Result{Org: o.Org, From: o.From, To: o.To}

	rerun := map[string]alert.Alert{}
	collect := func(eff store.Effects) {
		for _, a := range eff.Alerts {
			rerun[a.ID] = a // a later version of the same alert replaces it, as the store does
		}
	}
	chunk := make([]event.Event, 0, o.ChunkSize)
	judge := func() error {
		eff, err := eval.Process(chunk)
		if err != nil {
			return fmt.Errorf("backtest: evaluate: %w", err)
		}
		collect(eff)
		res.Events += len(chunk)
		chunk = chunk[:0]
		if o.Progress != nil {
			o.Progress(res.Events)
		}
		return nil
	}
	err := src.ScanEvents(ctx, store.EventFilter{Org: o.Org, From: o.From, To: o.To}, func(e event.Event) error {
		chunk = append(chunk, e)
		if len(chunk) < o.ChunkSize {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return judge()
	})
	if err != nil {
		return res, fmt.Errorf("backtest: read events: %w", err)
	}
	if len(chunk) > 0 {
		if err := judge(); err != nil {
			return res, err
		}
	}
	collect(eval.Flush())

	storedAll, err := src.Alerts(ctx, store.AlertFilter{Org: o.Org, Since: o.From})
	if err != nil {
		return res, fmt.Errorf("backtest: read stored alerts: %w", err)
	}
	in := func(a alert.Alert) bool {
		return !a.FirstSeen.Before(o.From) && a.FirstSeen.Before(o.To) && !notFromEvents[a.Check]
	}
	stored := map[string]alert.Alert{}
	for _, a := range storedAll {
		if in(a) {
			stored[a.ID] = a
		}
	}
	res.Groups = compare(stored, rerun, in, o.Examples)
	return res, nil
}

type groupKey struct{ check, pattern string }

// compare groups the alerts of both sides by check and pattern, in id
// order within a group so that the examples are stable.
func compare(stored, rerun map[string]alert.Alert, in func(alert.Alert) bool, examples int) []Group {
	groups := map[groupKey]*Group{}
	group := func(a alert.Alert) *Group {
		k := groupKey{a.Check, a.Pattern}
		g, ok := groups[k]
		if !ok {
			g = &Group{Check: a.Check, Pattern: a.Pattern}
			groups[k] = g
		}
		return g
	}
	for _, id := range slices.Sorted(maps.Keys(stored)) {
		s := stored[id]
		g := group(s)
		g.Stored++
		r, ok := rerun[id]
		switch {
		case !ok:
			g.Gone++
			if len(g.Example.Gone) < examples {
				g.Example.Gone = append(g.Example.Gone, s)
			}
		case len(differs(s, r)) > 0:
			g.Changed++
			if len(g.Example.Changed) < examples {
				g.Example.Changed = append(g.Example.Changed, Change{Fields: differs(s, r), Stored: s, Rerun: r})
			}
		default:
			g.Same++
		}
	}
	for _, id := range slices.Sorted(maps.Keys(rerun)) {
		r := rerun[id]
		if !in(r) {
			continue
		}
		g := group(r)
		g.Rerun++
		if _, ok := stored[id]; ok {
			continue
		}
		g.New++
		if len(g.Example.New) < examples {
			g.Example.New = append(g.Example.New, r)
		}
	}
	out := make([]Group, 0, len(groups))
	for _, k := range slices.SortedFunc(maps.Keys(groups), func(a, b groupKey) int {
		return cmp.Or(cmp.Compare(a.check, b.check), cmp.Compare(a.pattern, b.pattern))
	}) {
		out = append(out, *groups[k])
	}
	return out
}

// differs names what makes an alert of the same id another alert.
func differs(s, r alert.Alert) []string {
	var f []string
	if !slices.Equal(s.EventIDs, r.EventIDs) {
		f = append(f, "event_ids")
	}
	if !s.LastSeen.Equal(r.LastSeen) {
		f = append(f, "last_seen")
	}
	if s.Severity != r.Severity {
		f = append(f, "severity")
	}
	return f
}
