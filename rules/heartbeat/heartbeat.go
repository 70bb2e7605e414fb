// Package heartbeat is the feed-silence check: it raises a feed-silent
// alert when a configured source (org + system) sends no events for longer
// than expected, and resolves it when events return. It is detection, as
// the checks of package rules are: its alerts are written through the
// store's single write path (Apply), like every check's, and delivered
// from the outbox by package alerting, which knows nothing of feeds.
package heartbeat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/backoff"
	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// CheckFeedSilent is the check name of the alerts it raises: no events arrived from a
// source for longer than expected. A silent feed is itself a risk to what
// the DPIA promises: nothing is being watched.
const CheckFeedSilent = "feed-silent"

// Clock is the heartbeat's time source; tests replace it. alerting.Clock
// is one.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time                                   { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, d) }

// Source is one expected feed (org + system).
type Source struct {
	Org, System string
	// MaxSilence is how long the feed may be quiet (by arrival time).
	MaxSilence time.Duration
	Severity   alert.Severity // default high
	DPIA       string
	Risks      []string
	RiskTitles []string
}

// Options configures New.
type Options struct {
	Sources []Source
	Store   interface {
		store.Writer
		LoadState(ctx context.Context, prefix string) ([]store.StateEntry, error)
	}
	Clock    Clock         // default: the wall clock
	Interval time.Duration // how often Run checks; default 30s
	OnAlert  func()        // e.g. alert delivery's Wake
	Logger   *slog.Logger
}

// Heartbeat raises a feed-silent alert when a configured source sends no
// events for longer than its MaxSilence, and resolves it (a new version of
// the same alert) when events return. Its state (last arrival, open alert)
// is check state in the store, so a restart neither forgets an open alert
// nor raises a second one.
type Heartbeat struct {
	o   Options
	mu  sync.Mutex
	src map[string]*sourceState
}

type sourceState struct {
	cfg         Source
	LastArrival time.Time   `json:"last_arrival"`
	LastEvent   time.Time   `json:"last_event"`
	Open        alert.Alert `json:"open"` // the raised, unresolved alert (ID empty: none)
	dirty       bool
}

const heartbeatStatePrefix = "heartbeat/"

func sourceKey(org, system string) string { return org + "\x00" + system }

// New loads saved state; sources start their watch at now.
func New(ctx context.Context, o Options) (*Heartbeat, error) {
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnAlert == nil {
		o.OnAlert = func() {}
	}
	h := &Heartbeat{o: o, src: map[string]*sourceState{}}
	now := o.Clock.Now()
	for _, s := range o.Sources {
		if s.Severity == "" {
			s.Severity = alert.SeverityHigh
		}
		h.src[sourceKey(s.Org, s.System)] = &sourceState{cfg: s, LastArrival: now}
	}
	entries, err := o.Store.LoadState(ctx, heartbeatStatePrefix)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: load state: %w", err)
	}
	for _, e := range entries {
		for k, st := range h.src {
			if heartbeatStatePrefix+k == e.Key {
				var saved sourceState
				if err := json.Unmarshal(e.Value, &saved); err == nil {
					st.Open, st.LastEvent = saved.Open, saved.LastEvent
					if saved.LastArrival.After(st.LastArrival) {
						st.LastArrival = saved.LastArrival
					}
				}
			}
		}
	}
	return h, nil
}

// Observe records a stored batch from a source: its newest event time and
// when it arrived. Unconfigured sources are ignored.
func (h *Heartbeat) Observe(org, system string, maxEventTime, arrival time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.src[sourceKey(org, system)]
	if st == nil {
		return
	}
	if arrival.After(st.LastArrival) {
		st.LastArrival = arrival
		st.dirty = true
	}
	if maxEventTime.After(st.LastEvent) {
		st.LastEvent = maxEventTime
	}
}

// Check raises and resolves alerts as of now and stores them (with the
// heartbeat state) through the store's single write path. It returns the
// alerts it wrote.
func (h *Heartbeat) Check(ctx context.Context) ([]alert.Alert, error) {
	now := h.o.Clock.Now()
	h.mu.Lock()
	var eff store.Effects
	for k, st := range h.src {
		c := st.cfg
		silent := now.Sub(st.LastArrival)
		switch {
		case st.Open.ID == "" && silent > c.MaxSilence:
			a := alert.Alert{
				ID:    alert.ID(c.Org, CheckFeedSilent, "no-events", "", "", c.System, st.LastArrival.UTC().Format(time.RFC3339Nano)),
				Check: CheckFeedSilent, Pattern: "no-events", Severity: c.Severity, Org: c.Org,
				FirstSeen: st.LastArrival.UTC(), LastSeen: now.UTC(), EventIDs: []string{},
				DPIA: c.DPIA, Risks: c.Risks, RiskTitles: c.RiskTitles,
				Explanation: fmt.Sprintf("No events have arrived from %s for %s (expected at least every %s): access to records is not being watched.",
					c.System, silent.Round(time.Minute), c.MaxSilence),
			}
			st.Open, st.dirty = a, true
			eff.Alerts = append(eff.Alerts, a)
		case st.Open.ID != "" && st.LastArrival.After(st.Open.FirstSeen) && now.Sub(st.LastArrival) <= c.MaxSilence:
			a := st.Open
			a.Pattern = "no-events"
			a.LastSeen = st.LastArrival.UTC()
			a.Explanation = fmt.Sprintf("Resolved: events from %s arrived again after %s without any.",
				c.System, st.LastArrival.Sub(a.FirstSeen).Round(time.Minute))
			st.Open, st.dirty = alert.Alert{}, true
			eff.Alerts = append(eff.Alerts, a)
		}
		if st.dirty {
			b, _ := json.Marshal(st)
			eff.State = append(eff.State, store.StateEntry{Key: heartbeatStatePrefix + k, Value: b})
		}
	}
	h.mu.Unlock()
	if len(eff.State) == 0 {
		return nil, nil
	}
	_, err := h.o.Store.Apply(ctx, nil, nil, func([]event.Event) (store.Effects, error) { return eff, nil })
	if err != nil {
		return nil, fmt.Errorf("heartbeat: store: %w", err)
	}
	h.mu.Lock()
	for _, st := range h.src {
		st.dirty = false
	}
	h.mu.Unlock()
	if len(eff.Alerts) > 0 {
		h.o.Logger.Info("feed heartbeat alerts stored", "alerts", len(eff.Alerts))
		h.o.OnAlert()
	}
	return eff.Alerts, nil
}

// Run checks every Interval until ctx is done.
func (h *Heartbeat) Run(ctx context.Context) error {
	for {
		if _, err := h.Check(ctx); err != nil && ctx.Err() == nil {
			h.o.Logger.Error("feed heartbeat check failed", "err", err)
		}
		if err := h.o.Clock.Sleep(ctx, h.o.Interval); err != nil {
			return nil
		}
	}
}
