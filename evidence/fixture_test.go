package evidence_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	_ "github.com/dpiawatch/dpiawatch/checks/install" // the shipped checks
	"github.com/dpiawatch/dpiawatch/config"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/reference"
	"github.com/dpiawatch/dpiawatch/rules"
	"github.com/dpiawatch/dpiawatch/rules/checkconfig"
	"github.com/dpiawatch/dpiawatch/simulate"
	"github.com/dpiawatch/dpiawatch/store"
	"github.com/dpiawatch/dpiawatch/store/sqlite"
	"github.com/dpiawatch/dpiawatch/triage"
)

// The simulated periods: 28 days from Monday 2 March 2026, exported as the
// last 14 (16–29 March) so that the previous period (2–15 March) has data
// too. Short on purpose: CI must stay fast, and 14 days already hold every
// kind of injected episode for both orgs.
var (
	simFrom = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
)

const (
	simDays    = 28
	periodFrom = "2026-03-16"
	periodTo   = "2026-03-29"
)

// orgCase is one seed org: the DPIA, and the simulation scale (a county at
// full size is millions of events a fortnight; 2% keeps the test in seconds
// while keeping every team and pattern).
type orgCase struct {
	org, dpia string
	scale     float64
}

var orgCases = []orgCase{
	{simulate.OrgStMartins, "st-martins-webster-court", 1},
	{simulate.OrgWiltshire, "wiltshire-childrens-cms", 0.02},
}

// testKey is a fixed signing key, so that tests can compare public keys.
func testKey(t testing.TB) ed25519.PrivateKey {
	seed, err := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func loadConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, diags := config.Load(filepath.Join("testdata", "dpiawatch.yaml"))
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags.Errors())
	}
	return cfg
}

// simulation is one org's events, labels and reference data.
type simulation struct {
	org    string
	events []event.Event
	labels map[string]simulate.Label // event id → label of injected events
	ref    *reference.Data
}

func simulateOrg(t testing.TB, c orgCase) simulation {
	t.Helper()
	s, err := simulate.New(simulate.Options{Org: c.org, From: simFrom, Days: simDays, Seed: 11, Scale: c.scale})
	if err != nil {
		t.Fatal(err)
	}
	out := simulation{org: c.org, labels: map[string]simulate.Label{}, ref: s.Reference()}
	err = s.Run(context.Background(), func(ev *event.Event, l *simulate.Label) error {
		e := *ev
		e.Subject.Sensitivity = slices.Clone(ev.Subject.Sensitivity)
		out.events = append(out.events, e)
		if l != nil {
			out.labels[e.ID] = *l
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// applier is the write side both stores share.
type applier interface {
	Apply(ctx context.Context, events []event.Event, positions []store.Position, evaluate store.EvaluateFunc) (store.Result, error)
}

// ingest runs the daemon's checks over the events into st, in batches as
// the daemon would, then flushes the checks.
func ingest(t testing.TB, cfg *config.Config, sim simulation, st applier) {
	t.Helper()
	opts, err := checkconfig.EngineOptions(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Roster = reference.NewIndex(sim.ref)
	eng, err := rules.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const batch = 5000
	for i := 0; i < len(sim.events); i += batch {
		j := min(i+batch, len(sim.events))
		if _, err := st.Apply(ctx, sim.events[i:j], nil, eng.Process); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return eng.Flush(), nil }); err != nil {
		t.Fatal(err)
	}
	// The daemon records how far the feed is complete; the export is made
	// while it is a day and a half behind the simulation's end, so the
	// period's last two days are not complete.
	if _, err := st.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) {
		return store.Effects{State: []store.StateEntry{store.CompletenessEntry(sim.org, fixtureComplete)}}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// fixtureComplete is the fixtures' completeness point: Saturday 28 March
// 2026 12:00 in London (still GMT), inside the exported period.
var fixtureComplete = simFrom.AddDate(0, 0, simDays).Add(-36 * time.Hour)

// triageAll records decisions on the stored alerts the way an IG team
// would (see decisions), and one later decision made in the web UI.
func triageAll(t testing.TB, st *sqlite.Store, sim simulation) {
	t.Helper()
	ctx := context.Background()
	as, err := st.Alerts(ctx, store.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ds := decisions(as, sim)
	// A later decision in the web UI is the alert's status.
	last := ds[0]
	for _, d := range ds {
		if d.AlertID == as[0].ID {
			last = d
		}
	}
	ds = append(ds, triage.Decision{AlertID: as[0].ID, Outcome: triage.Explained, Actor: "ig-3", At: last.At.Add(time.Hour), Source: "web"})
	addTriages(t, st, ds)
}

// triager is what recording decisions needs; both stores offer it.
type triager interface {
	AddTriage(ctx context.Context, t triage.Decision) (triage.Decision, error)
}

func addTriages(t testing.TB, st triager, ds []triage.Decision) {
	t.Helper()
	for _, d := range ds {
		if _, err := st.AddTriage(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

// decisions returns, deterministically, the decisions an IG team would
// record on alerts, in the order it records them: an alert over injected
// events of its own check is confirmed misuse (some are explained instead),
// others are false positives or explained, every fourth is left open, and
// every other one is acknowledged first. Times vary so that every
// time-to-triage bucket is used.
func decisions(as []alert.Alert, sim simulation) []triage.Decision {
	delays := []time.Duration{20 * time.Minute, 5 * time.Hour, 3 * 24 * time.Hour, 9 * 24 * time.Hour}
	var out []triage.Decision
	for i, a := range as {
		injected := misuse(a, sim.labels)
		if i%4 == 3 {
			continue // still open
		}
		at := a.FirstSeen.Add(delays[(i+i/4)%len(delays)])
		if i%2 == 0 {
			out = append(out, triage.Decision{AlertID: a.ID, Outcome: triage.Acknowledged, Actor: "ig-1", At: at, Source: "api"})
			if i%6 == 4 {
				continue // acknowledged, still being looked at
			}
			at = at.Add(2 * time.Hour)
		}
		outcome := triage.FalsePositive
		switch {
		case i%5 == 1:
			outcome = triage.Explained
		case i%7 == 5:
			outcome = triage.FalsePositive
		case injected:
			outcome = triage.ConfirmedMisuse
		}
		out = append(out, triage.Decision{AlertID: a.ID, Outcome: outcome, Actor: "ig-2", At: at, Note: fmt.Sprintf("case %d", i), Source: "api",
			Action: followUp(i, outcome, at)})
	}
	return out
}

// followUp is the action an IG team records with a decision: confirmed
// misuse is followed up by the registered manager within a week (every
// third one done), some explained alerts by a team leader with no due
// date; the rest record none.
func followUp(i int, outcome string, at time.Time) *triage.Action {
	switch {
	case outcome == triage.ConfirmedMisuse:
		st := triage.ActionOpen
		if i%3 == 0 {
			st = triage.ActionDone
		}
		return &triage.Action{Owner: "Registered manager", Due: at.AddDate(0, 0, 7).Format(time.DateOnly), Status: st}
	case outcome == triage.Explained && i%3 == 1:
		return &triage.Action{Owner: "Team leader", Status: triage.ActionOpen}
	}
	return nil
}

func misuse(a alert.Alert, labels map[string]simulate.Label) bool {
	for _, id := range a.EventIDs {
		if l, ok := labels[id]; ok && l.Check == a.Check {
			return true
		}
	}
	return false
}

// fixtures holds one embedded store per org for the whole test binary:
// building one is most of a test's time, and exports only read (an
// identities export adds an audit entry, which no report shows).
var (
	fixtureMu  sync.Mutex
	fixtures   = map[string]*sqlite.Store{}
	fixtureDir string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	for _, st := range fixtures {
		_ = st.Close()
	}
	if fixtureDir != "" {
		_ = os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// embeddedStore is an embedded store holding one org's simulated period,
// with triage decisions.
func embeddedStore(t testing.TB, cfg *config.Config, c orgCase) *sqlite.Store {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if st, ok := fixtures[c.org]; ok {
		return st
	}
	if fixtureDir == "" {
		d, err := os.MkdirTemp("", "evidence-test-")
		if err != nil {
			t.Fatal(err)
		}
		fixtureDir = d
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(fixtureDir, c.org+".db"), Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	sim := simulateOrg(t, c)
	ingest(t, cfg, sim, st)
	triageAll(t, st, sim)
	fixtures[c.org] = st
	return st
}
