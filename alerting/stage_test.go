package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
)

// stageFunc adapts a function to Stage, for tests.
type stageFunc func(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error)

func (f stageFunc) Exec(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
	return f(ctx, alerts)
}

func ids(alerts []alert.Alert) []string {
	out := []string{}
	for _, a := range alerts {
		out = append(out, a.ID)
	}
	return out
}

func TestMultiStage(t *testing.T) {
	boom := errors.New("boom")
	var ran []string
	keep := func(name string, n int) Stage {
		return stageFunc(func(ctx context.Context, alerts []alert.Alert) (context.Context, []alert.Alert, error) {
			ran = append(ran, name)
			return ctx, alerts[:min(n, len(alerts))], nil
		})
	}
	fail := stageFunc(func(ctx context.Context, _ []alert.Alert) (context.Context, []alert.Alert, error) {
		ran = append(ran, "fail")
		return ctx, nil, boom
	})
	in := []alert.Alert{testAlert("a-1"), testAlert("a-2"), testAlert("a-3")}
	for _, tc := range []struct {
		name    string
		stages  MultiStage
		wantIDs []string
		wantRan []string
		wantErr error
	}{
		{"each on what the one before left", MultiStage{keep("a", 2), keep("b", 1)}, []string{"a-1"}, []string{"a", "b"}, nil},
		{"stops when none is left", MultiStage{keep("a", 0), keep("b", 3)}, []string{}, []string{"a"}, nil},
		{"stops at a failure, handing nothing on", MultiStage{keep("a", 3), fail, keep("b", 3)}, []string{}, []string{"a", "fail"}, boom},
		{"none: everything through", MultiStage{}, []string{"a-1", "a-2", "a-3"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran = nil
			_, out, err := tc.stages.Exec(t.Context(), in)
			if !errors.Is(err, tc.wantErr) || !slices.Equal(ids(out), tc.wantIDs) || !slices.Equal(ran, tc.wantRan) {
				t.Fatalf("Exec = %v, %v after %v; want %v, %v after %v", ids(out), err, ran, tc.wantIDs, tc.wantErr, tc.wantRan)
			}
		})
	}
}

func TestDedupAndRouteStages(t *testing.T) {
	ob := newMemOutbox()
	for _, id := range []string{"a-held", "a-new", "a-calm"} {
		ob.put(testAlert(id))
	}
	pending, _ := ob.Pending(t.Context(), "r", 10)
	slices.SortFunc(pending, func(a, b alert.Alert) int { return strings.Compare(a.ID, b.ID) })

	_, out, _ := dedupStage{held: map[string]int64{"a-held": 1, "a-new": 7}}.Exec(t.Context(), pending)
	if got, want := ids(out), []string{"a-calm", "a-new"}; !slices.Equal(got, want) {
		t.Fatalf("dedup handed on %v, want %v (a-held's version is waiting; a-new's waiting version is another)", got, want)
	}

	tree, err := NewTree(&Route{Receiver: "other", Routes: []*Route{{Receiver: "r", Matchers: mustMatchers(t, `check!="calm"`)}}})
	if err != nil {
		t.Fatal(err)
	}
	calm := testAlert("a-calm")
	calm.Check = "calm"
	var marked []string
	mark := func(_ context.Context, alerts []alert.Alert, outcome string) error {
		for _, a := range alerts {
			marked = append(marked, a.ID+":"+outcome)
		}
		return nil
	}
	_, out, err = newRouteStage(tree, "r", mark).Exec(t.Context(), []alert.Alert{calm, testAlert("a-new")})
	if err != nil || !slices.Equal(ids(out), []string{"a-new"}) || !slices.Equal(marked, []string{"a-calm:" + OutcomeUnrouted}) {
		t.Fatalf("route handed on %v (err %v), marked %v; want [a-new], [a-calm:unrouted]", ids(out), err, marked)
	}
}

// TestRouteToAgreesWithMatch: the stages' walk picks, for each receiver,
// the route Match lists first for it.
func TestRouteToAgreesWithMatch(t *testing.T) {
	tree, err := NewTree(&Route{Receiver: "root", Routes: []*Route{
		{Receiver: "ig", Matchers: mustMatchers(t, `severity="high"`), Continue: true, Routes: []*Route{
			{Receiver: "dpo", Matchers: mustMatchers(t, `check="out-of-hours"`)},
			{Receiver: "ig-night", Matchers: mustMatchers(t, `org=~"st-.*"`)},
		}},
		{Receiver: "dpo", Matchers: mustMatchers(t, `org="st-martins"`)},
		{Receiver: "never", Matchers: mustMatchers(t, `org="elsewhere"`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	receivers := append(tree.Receivers(), "unknown")
	var alerts []alert.Alert
	for _, sev := range []alert.Severity{alert.SeverityHigh, alert.SeverityLow} {
		for _, check := range []string{"out-of-hours", "bulk-access"} {
			for _, org := range []string{"st-martins", "oak-lodge", "elsewhere"} {
				a := testAlert("a")
				a.Severity, a.Check, a.Org = sev, check, org
				alerts = append(alerts, a)
			}
		}
	}
	for _, a := range alerts {
		matched := tree.Match(a)
		for _, r := range receivers {
			i := slices.IndexFunc(matched, func(o RouteOpts) bool { return o.Receiver == r })
			got, ok := tree.routeTo(a, r)
			if ok != (i >= 0) || (ok && got.ID != matched[i].ID) {
				t.Errorf("%s/%s/%s to %s: routeTo = %+v %v, Match = %+v", a.Severity, a.Check, a.Org, r, got, ok, matched)
			}
		}
	}
	if d := defaultTree([]string{"console", "slack"}); len(d.Match(testAlert("a"))) != 2 {
		t.Errorf("the default route does not send an alert to both receivers: %+v", d.Match(testAlert("a")))
	}
}

// TestGroupStage: a route that waits holds its alerts in a group (the
// newest version of each, in order); the default route hands them on.
func TestGroupStage(t *testing.T) {
	clock := newFakeClock()
	v := func(id string, version int64) alert.Alert {
		a := testAlert(id)
		a.Version = version
		return a
	}
	in := []alert.Alert{v("a-1", 1), v("a-2", 1)}

	dt := defaultTree([]string{"r"})
	for _, plain := range []groupStage{
		newGroupStage(dt, "r", clock, map[string]*group{}, map[string]int64{}),
		{tree: dt, receiver: "r", clock: clock, groups: map[string]*group{}, held: map[string]int64{}}, // alert by alert
	} {
		if _, out, err := plain.Exec(t.Context(), in); err != nil || !slices.Equal(ids(out), []string{"a-1", "a-2"}) || len(plain.groups) != 0 || len(plain.held) != 0 {
			t.Fatalf("default route (none %v): handed on %v (err %v), %d groups, %d held; want both handed on, nothing held", plain.none, ids(out), err, len(plain.groups), len(plain.held))
		}
	}
	if !newGroupStage(dt, "r", clock, nil, nil).none || !newRouteStage(dt, "r", nil).all {
		t.Error("the default route's stages route and group alert by alert; a tree without matchers needs neither")
	}

	routed := newGroupStage(singleRoute("r", time.Minute, time.Minute), "r", clock, map[string]*group{}, map[string]int64{})
	if routed.none || newRouteStage(singleRoute("r", time.Minute, time.Minute), "other", nil).all {
		t.Error("a waiting route's group stage holds nothing, or a route to another receiver routes everything here")
	}
	if _, out, _ := routed.Exec(t.Context(), in); len(out) != 0 {
		t.Fatalf("grouped route handed on %v, want nothing", ids(out))
	}
	_, _, _ = routed.Exec(t.Context(), []alert.Alert{v("a-1", 2)}) // a newer version while it waits
	if len(routed.groups) != 1 {
		t.Fatalf("%d groups, want 1", len(routed.groups))
	}
	for _, g := range routed.groups {
		var got []string
		for _, a := range g.pending {
			got = append(got, fmt.Sprintf("%s/%d", a.ID, a.Version))
		}
		if want := []string{"a-2/1", "a-1/2"}; !slices.Equal(got, want) {
			t.Errorf("group holds %v, want %v (the newest version only)", got, want)
		}
		if want := clock.Now().Add(time.Minute); !g.next.Equal(want) {
			t.Errorf("group flushes at %v, want group_wait later %v", g.next, want)
		}
	}
	if routed.held["a-1"] != 2 || routed.held["a-2"] != 1 {
		t.Errorf("held %v, want a-1:2 a-2:1", routed.held)
	}
}
