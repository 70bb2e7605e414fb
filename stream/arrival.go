package stream

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/dpiawatch/dpiawatch/event"
)

// otherLabel stands for every org or system the configuration does not
// name, so that what a feed sends cannot grow the number of series.
const otherLabel = "other"

// arrivalMetric is dpiawatch_feed_last_arrival_timestamp_seconds: per org
// and system, the wall time a batch holding their events was last stored
// (new or replayed alike, as the feed heartbeat counts them). Its labels
// come from fixed sets: the configured orgs, and the systems the
// configuration names (Options.Systems); any other value is "other".
// A pair's series appears with its first batch after start.
type arrivalMetric struct {
	last    *prometheus.GaugeVec
	orgs    map[string]bool
	systems map[string]bool
}

func newArrivalMetric(reg prometheus.Registerer, orgs, systems []string) *arrivalMetric {
	m := &arrivalMetric{
		last: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "dpiawatch_feed_last_arrival_timestamp_seconds",
			Help: "Wall time a batch holding events of the org and system was last stored. Orgs are the configured ones, systems those named on topics or heartbeats; any other is \"other\".",
		}, []string{"org", "system"}),
		orgs: map[string]bool{}, systems: map[string]bool{},
	}
	for _, o := range orgs {
		m.orgs[o] = true
	}
	for _, s := range systems {
		m.systems[s] = true
	}
	return m
}

// stored records that events were stored at now; a nil m records nothing.
func (m *arrivalMetric) stored(events []event.Event, now time.Time) {
	if m == nil {
		return
	}
	type source struct{ org, system string }
	seen := map[source]bool{}
	var last source
	for i := range events {
		e := &events[i]
		if i > 0 && e.Org == last.org && e.System == last.system {
			continue // a batch mostly holds runs of one source
		}
		last = source{e.Org, e.System}
		seen[source{m.label(m.orgs, e.Org), m.label(m.systems, e.System)}] = true
	}
	at := float64(now.UnixNano()) / 1e9
	for s := range seen {
		m.last.WithLabelValues(s.org, s.system).Set(at)
	}
}

func (m *arrivalMetric) label(known map[string]bool, v string) string {
	if known[v] {
		return v
	}
	return otherLabel
}
