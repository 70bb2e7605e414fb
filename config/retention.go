package config

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/dpiawatch/dpiawatch/dpia"
)

// Retention is store.retention: how long the monitor keeps its own data, per
// org and class, in whichever store is configured. Each org's periods come
// from its DPIA's retention schedule (retention.monitor in the register)
// unless overridden here; an org whose DPIA is silent takes Default.
type Retention struct {
	// Interval is how often the retention job runs; default 1h.
	Interval Duration `yaml:"interval"`
	// ChunkRows bounds the rows one deletion transaction removes, so that
	// the write lock is never held for long; default 5000.
	ChunkRows int `yaml:"chunk_rows"`
	// Default applies to a class the org's DPIA and Orgs leave unset.
	Default dpia.Periods `yaml:"default"`
	// Orgs overrides the DPIA's schedule: org id → periods.
	Orgs map[string]dpia.Periods `yaml:"orgs"`
}

// Retention defaults.
const (
	DefaultRetentionInterval  = Duration(time.Hour)
	DefaultRetentionChunkRows = 5000
	maxRetentionChunkRows     = 100000
)

// Retention classes, in the order Periods.Days lists them.
var retentionClasses = []string{"events", "check_state", "view_logs", "alerts"}

// ClassRetention is one class's resolved period for one org.
type ClassRetention struct {
	Class  string // events, check_state, view_logs or alerts
	Days   int    // 0: kept
	Source string // where the period comes from, for the evidence pack
}

// RetentionFor resolves org's periods, class by class: store.retention.orgs,
// else the org's DPIA schedule, else store.retention.default, else (events
// only) the older store.clickhouse.retention keys, else kept.
func (c *Config) RetentionFor(org string) []ClassRetention {
	var sched *dpia.MonitorRetention
	dpiaID := ""
	for _, o := range c.Orgs {
		if o.ID == org {
			dpiaID = o.DPIA
			if r := c.Registers[o.DPIA]; r != nil {
				sched = r.Retention.Monitor
			}
		}
	}
	r := &c.Store.Retention
	over, hasOver := r.Orgs[org]
	out := make([]ClassRetention, len(retentionClasses))
	for i, class := range retentionClasses {
		cr := ClassRetention{Class: class, Source: "not set: kept"}
		key := r.Default.Days()[i].Key
		switch {
		case hasOver && over.Days()[i].Days != nil:
			cr.Days, cr.Source = *over.Days()[i].Days, "config store.retention.orgs."+org+"."+key
		case sched != nil && sched.Days()[i].Days != nil:
			cr.Days, cr.Source = *sched.Days()[i].Days, fmt.Sprintf("DPIA %s retention schedule (%s)", dpiaID, sched.Section)
		case r.Default.Days()[i].Days != nil:
			cr.Days, cr.Source = *r.Default.Days()[i].Days, "config store.retention.default."+key
		case class == "events" && c.Store.ClickHouse != nil && c.Store.ClickHouse.Retention.Orgs[org] != 0:
			cr.Days, cr.Source = c.Store.ClickHouse.Retention.Orgs[org], "config store.clickhouse.retention.orgs."+org
		case class == "events" && c.Store.ClickHouse != nil && c.Store.ClickHouse.Retention.DefaultDays != 0:
			cr.Days, cr.Source = c.Store.ClickHouse.Retention.DefaultDays, "config store.clickhouse.retention.default_days"
		}
		out[i] = cr
	}
	return out
}

// MinRetentionDays is the shortest period (other than 0, kept) that leaves
// the checks every event and state they may still read: the lateness bound,
// the longest window, gap or timeout any check is configured with, and the
// day an episode waits for late joiners (rules/episodes.go), rounded up to
// whole days.
func (c *Config) MinRetentionDays() int {
	longest := time.Duration(DefaultEpisodeGap)
	walk := func(d time.Duration) { longest = max(longest, d) }
	walkDurations(reflect.ValueOf(c.Checks), walk)
	for _, s := range c.Checks.Sections() {
		walkDurations(reflect.ValueOf(s.Section), walk)
	}
	lateness := c.Checks.Lateness.D()
	if lateness == 0 {
		lateness = DefaultLateness.D()
	}
	const lateJoin = 24 * time.Hour
	total := lateness + longest + lateJoin
	return int((total + 24*time.Hour - 1) / (24 * time.Hour))
}

var durationType = reflect.TypeFor[Duration]()

// walkDurations calls fn with every Duration in v (struct fields, pointers,
// slices and maps), so that a check's new window counts without a change here.
func walkDurations(v reflect.Value, fn func(time.Duration)) {
	if v.Type() == durationType {
		fn(time.Duration(v.Int()))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkDurations(v.Elem(), fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walkDurations(v.Field(i), fn)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkDurations(v.Index(i), fn)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			walkDurations(it.Value(), fn)
		}
	}
}

func (r *Retention) validate(v *Validator, p string, c *Config) {
	if v.Set(p+".interval") && r.Interval <= 0 {
		v.Errorf(p+".interval", "must be longer than 0s")
	}
	if v.Set(p+".chunk_rows") && (r.ChunkRows < 1 || r.ChunkRows > maxRetentionChunkRows) {
		v.Errorf(p+".chunk_rows", "%d is outside 1 to %d rows", r.ChunkRows, maxRetentionChunkRows)
	}
	minDays := c.MinRetentionDays()
	periods := func(q string, ps dpia.Periods) {
		for _, cd := range ps.Days() {
			if cd.Days == nil {
				continue
			}
			checkRetentionDays(v, q+"."+cd.Key, *cd.Days, minDays)
		}
	}
	periods(p+".default", r.Default)
	orgs := make([]string, 0, len(c.Orgs))
	for _, o := range c.Orgs {
		orgs = append(orgs, o.ID)
	}
	names := make([]string, 0, len(r.Orgs))
	for org := range r.Orgs {
		names = append(names, org)
	}
	slices.Sort(names)
	for _, org := range names {
		if !slices.Contains(orgs, org) {
			v.KeyErrorf(p+".orgs."+org, "org %q is not configured", org)
			continue
		}
		periods(p+".orgs."+org, r.Orgs[org])
	}
	// A DPIA's own schedule is checked against the checks too, reported
	// at the org that takes it.
	for i, o := range c.Orgs {
		reg := c.Registers[o.DPIA]
		if reg == nil || reg.Retention.Monitor == nil {
			continue
		}
		over := r.Orgs[o.ID]
		for j, cd := range reg.Retention.Monitor.Days() {
			if cd.Days == nil || over.Days()[j].Days != nil {
				continue
			}
			if d := *cd.Days; d > 0 && d < minDays {
				v.Errorf(fmt.Sprintf("orgs[%d].dpia", i), "DPIA %s keeps %s for %d days, shorter than the checks' longest lookback (at least %d days); override it in %s.orgs.%s.%s",
					o.DPIA, retentionClasses[j], d, minDays, p, o.ID, cd.Key)
			}
		}
	}
	if ch := c.Store.ClickHouse; ch != nil && (ch.Retention.DefaultDays != 0 || len(ch.Retention.Orgs) > 0) {
		if r.Default.EventsDays != nil || len(r.Orgs) > 0 {
			v.Errorf("store.clickhouse.retention", "set together with store.retention; move its days to store.retention (default.events_days, orgs.<org>.events_days)")
		} else {
			v.Warnf("store.clickhouse.retention", "deprecated: use store.retention (default.events_days, orgs.<org>.events_days), which both stores honour")
		}
	}
}

func checkRetentionDays(v *Validator, path string, d, minDays int) {
	switch {
	case d < 0 || d > dpia.MaxRetentionDays:
		v.Errorf(path, "%d is outside 0 (keep) to %d days", d, dpia.MaxRetentionDays)
	case d > 0 && d < minDays:
		v.Errorf(path, "%d days is shorter than the checks' longest lookback (lateness, longest check window and a day for late episode joins): at least %d days, or 0 to keep", d, minDays)
	}
}

func (r *Retention) setDefaults() {
	if r.Interval == 0 {
		r.Interval = DefaultRetentionInterval
	}
	if r.ChunkRows == 0 {
		r.ChunkRows = DefaultRetentionChunkRows
	}
}
