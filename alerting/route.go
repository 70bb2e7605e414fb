package alerting

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/alerting/matcher"
)

// Labels an alert can be matched and grouped on (see package matcher).
var Labels = matcher.Labels

// Matcher selects alerts by one label (see package matcher).
type Matcher = matcher.Matcher

// MatchType is one of =, !=, =~, !~.
type MatchType = matcher.MatchType

// Match types.
const (
	MatchEqual     = matcher.MatchEqual
	MatchNotEqual  = matcher.MatchNotEqual
	MatchRegexp    = matcher.MatchRegexp
	MatchNotRegexp = matcher.MatchNotRegexp
)

// ParseMatcher parses one matcher.
func ParseMatcher(s string) (Matcher, error) { return matcher.Parse(s) }

// ParseMatchers parses each of ss.
func ParseMatchers(ss []string) ([]Matcher, error) { return matcher.ParseAll(ss) }

// matchAll reports whether a satisfies every matcher (none: true).
func matchAll(ms []Matcher, a alert.Alert) bool {
	for _, m := range ms {
		if !m.Matches(a) {
			return false
		}
	}
	return true
}

// Timing defaults (Alertmanager's own).
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// Route is one node of the routing tree, as in Alertmanager: an alert
// enters at the root and descends into the first child whose matchers it
// satisfies (and on into further siblings while a matched child has
// Continue); the deepest matching nodes decide its receiver and grouping.
// Zero fields inherit from the parent (the root's from the defaults).
type Route struct {
	Receiver       string
	Matchers       []Matcher
	GroupBy        []string // labels; empty: one group per route
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	Continue       bool
	Routes         []*Route

	id string // path in the tree, part of the group key
}

// RouteOpts are the settings a matched route hands an alert.
type RouteOpts struct {
	ID             string // the route's path, e.g. "0/1"
	Receiver       string
	GroupBy        []string
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
}

// Tree is a routing tree ready for matching.
type Tree struct{ root *Route }

// NewTree completes inherited settings and checks that every route has a
// receiver and groups by known labels.
func NewTree(root *Route) (*Tree, error) {
	if root == nil {
		return nil, fmt.Errorf("alerting: no root route")
	}
	if err := complete(root, nil, "0"); err != nil {
		return nil, err
	}
	return &Tree{root: root}, nil
}

func complete(r, parent *Route, id string) error {
	r.id = id
	if parent != nil {
		if r.Receiver == "" {
			r.Receiver = parent.Receiver
		}
		if r.GroupBy == nil {
			r.GroupBy = parent.GroupBy
		}
		r.GroupWait = orDuration(r.GroupWait, parent.GroupWait)
		r.GroupInterval = orDuration(r.GroupInterval, parent.GroupInterval)
		r.RepeatInterval = orDuration(r.RepeatInterval, parent.RepeatInterval)
	} else {
		r.GroupWait = orDuration(r.GroupWait, DefaultGroupWait)
		r.GroupInterval = orDuration(r.GroupInterval, DefaultGroupInterval)
		r.RepeatInterval = orDuration(r.RepeatInterval, DefaultRepeatInterval)
	}
	if r.Receiver == "" {
		return fmt.Errorf("alerting: route %s has no receiver", id)
	}
	for _, l := range r.GroupBy {
		if !slices.Contains(Labels, l) {
			return fmt.Errorf("alerting: route %s groups by unknown label %q", id, l)
		}
	}
	for i, c := range r.Routes {
		if err := complete(c, r, id+"/"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	return nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Match returns the settings of every route a selects, in tree order.
func (t *Tree) Match(a alert.Alert) []RouteOpts {
	return t.root.match(a)
}

func (r *Route) match(a alert.Alert) []RouteOpts {
	if !matchAll(r.Matchers, a) {
		return nil
	}
	var out []RouteOpts
	for _, c := range r.Routes {
		m := c.match(a)
		out = append(out, m...)
		if len(m) > 0 && !c.Continue {
			break
		}
	}
	if len(out) == 0 {
		out = append(out, r.opts())
	}
	return out
}

// routeTo returns the settings of the first route that sends a to
// receiver: one notification per receiver, however many routes name it.
// It walks the tree as Match does, without building Match's list: it runs
// for every alert version, every receiver, every step.
func (t *Tree) routeTo(a alert.Alert, receiver string) (RouteOpts, bool) {
	r, found, _ := t.root.find(a, receiver)
	if !found {
		return RouteOpts{}, false
	}
	return r.opts(), true
}

// find is match stopped at the first selected route of receiver: matched
// says whether r or a descendant selects a at all (which decides, as in
// match, whether the next sibling is tried).
func (r *Route) find(a alert.Alert, receiver string) (_ *Route, found, matched bool) {
	if !matchAll(r.Matchers, a) {
		return nil, false, false
	}
	for _, c := range r.Routes {
		sel, found, m := c.find(a, receiver)
		if found {
			return sel, true, true
		}
		matched = matched || m
		if m && !c.Continue {
			break
		}
	}
	if matched {
		return nil, false, true
	}
	return r, r.Receiver == receiver, true
}

func (r *Route) opts() RouteOpts {
	return RouteOpts{ID: r.id, Receiver: r.Receiver, GroupBy: r.GroupBy,
		GroupWait: r.GroupWait, GroupInterval: r.GroupInterval, RepeatInterval: r.RepeatInterval}
}

// fixedRoute is, for a tree without matchers (the default route), the one
// answer of routeTo for receiver whatever the alert; fixed is false when
// the tree has matchers and each alert must be routed.
func (t *Tree) fixedRoute(receiver string) (opts RouteOpts, routed, fixed bool) {
	var hasMatchers func(*Route) bool
	hasMatchers = func(r *Route) bool {
		return len(r.Matchers) > 0 || slices.ContainsFunc(r.Routes, hasMatchers)
	}
	if hasMatchers(t.root) {
		return RouteOpts{}, false, false
	}
	opts, routed = t.routeTo(alert.Alert{}, receiver)
	return opts, routed, true
}

// defaultTree is the plain configuration (no alerting.route) as a tree:
// every alert to every receiver, ungrouped and at once (zero group_wait
// and group_interval), never reminded (zero repeat_interval). It is built
// here, not by NewTree, whose defaults would group.
func defaultTree(receivers []string) *Tree {
	root := &Route{id: "0"}
	for i, r := range receivers {
		if i == 0 {
			root.Receiver = r
		}
		root.Routes = append(root.Routes, &Route{Receiver: r, Continue: true, id: "0/" + strconv.Itoa(i)})
	}
	return &Tree{root: root}
}

// Receivers lists every receiver the tree can route to.
func (t *Tree) Receivers() []string {
	var out []string
	var walk func(*Route)
	walk = func(r *Route) {
		if !slices.Contains(out, r.Receiver) {
			out = append(out, r.Receiver)
		}
		for _, c := range r.Routes {
			walk(c)
		}
	}
	walk(t.root)
	return out
}

// groupKey is the group an alert joins under opts: the route and the
// values of its group_by labels.
func groupKey(opts RouteOpts, a alert.Alert) string {
	if len(opts.GroupBy) == 0 {
		return opts.ID
	}
	var b strings.Builder
	b.WriteString(opts.ID)
	for _, l := range opts.GroupBy {
		b.WriteString("\x00" + l + "=" + strings.Join(matcher.Values(a, l), ","))
	}
	return b.String()
}
