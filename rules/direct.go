package rules

import (
	"fmt"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/store"
)

// Direct drives one check by hand, outside an Engine's batching and
// episodes' draining: for benchmarks and tests of what a check itself
// keeps (its memory, its checkpoint). It judges events of one org of an
// Engine built with the check's policy, the org's clock standing at each
// event's time.
type Direct struct {
	check  Check
	env    Env
	eps    *Episodes
	tables []StateTable
}

// NewDirect binds c, which must have been built with the slot its
// registration has in e (rules.Checks order), to the runtime of org in e.
func NewDirect(e *Engine, org string, c Check) (*Direct, error) {
	rt, ok := e.orgs[org]
	if !ok {
		return nil, fmt.Errorf("direct: unknown org %q", org)
	}
	d := &Direct{check: c, env: Env{org: rt, roster: e.roster.Load().Roster, holidays: newHolidays()}, eps: newEpisodes(c.Name())}
	if sc, ok := c.(StatefulCheck); ok {
		for _, t := range sc.States() {
			t.bind(StatePrefix + c.Name() + "/")
			d.tables = append(d.tables, t)
		}
	}
	return d, nil
}

// Evaluate judges ev, the org's clock standing at its time.
func (d *Direct) Evaluate(ev *event.Event) bool {
	d.env.watermark = ev.Time
	return d.check.Evaluate(ev, &d.env, d.eps)
}

// Drain returns the state entries the check's tables changed since the
// last Drain, as a checkpoint would save them.
func (d *Direct) Drain() ([]store.StateEntry, error) {
	var out []store.StateEntry
	var err error
	for _, t := range d.tables {
		if out, err = t.drain(out, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}
