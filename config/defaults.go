package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// setDefaults fills what the file left out and resolves relative paths. It
// runs after validation, so it only ever sees valid values; it asks v whether
// a key was written, so that an explicit zero (grace: 0s, enabled: false)
// is kept rather than replaced.
func (c *Config) setDefaults(v *validator) {
	for i := range c.Orgs {
		o := &c.Orgs[i]
		if o.Timezone == "" {
			o.Timezone = DefaultTimezone
		}
		if o.Location == nil {
			o.Location, _ = time.LoadLocation(o.Timezone) // validated (or the default, from the embedded tzdata)
		}
	}
	for i := range c.DPIAs {
		c.DPIAs[i].File = c.abs(c.DPIAs[i].File)
	}
	if c.Ingest.MaxEventBytes == 0 {
		c.Ingest.MaxEventBytes = DefaultMaxEventBytes
	}
	c.Ingest.EventTime.MaxAge = cmp.Or(c.Ingest.EventTime.MaxAge, DefaultEventMaxAge)
	c.Ingest.EventTime.MaxAhead = cmp.Or(c.Ingest.EventTime.MaxAhead, DefaultEventMaxAhead)
	if k := c.Ingest.Kafka; k != nil {
		k.ClientID = cmp.Or(k.ClientID, DefaultClientID)
		k.GroupID = cmp.Or(k.GroupID, DefaultGroupID)
		k.DeadLetterTopic = cmp.Or(k.DeadLetterTopic, DefaultDeadLetterTopic)
		k.Batch.MaxEvents = cmp.Or(k.Batch.MaxEvents, DefaultBatchMaxEvents)
		k.Batch.MaxWait = cmp.Or(k.Batch.MaxWait, DefaultBatchMaxWait)
		k.QueueBatches = cmp.Or(k.QueueBatches, DefaultQueueBatches)
		k.SessionTimeout = cmp.Or(k.SessionTimeout, DefaultSessionTimeout)
		for i := range k.Topics {
			k.Topics[i].Format = cmp.Or(k.Topics[i].Format, FormatAuto)
		}
		k.TLS.CAFile = c.abs(k.TLS.CAFile)
		k.TLS.CertFile = c.abs(k.TLS.CertFile)
		k.TLS.KeyFile = c.abs(k.TLS.KeyFile)
		k.SASL.Password.File = c.abs(k.SASL.Password.File)
	}
	e := &c.Store.Embedded
	e.Path = c.abs(cmp.Or(e.Path, DefaultStorePath))
	e.Synchronous = cmp.Or(e.Synchronous, DefaultSynchronous)
	c.Store.ClickHouse.setDefaults(c)
	c.Store.Retention.setDefaults()
	c.Reference.Dir = c.abs(cmp.Or(c.Reference.Dir, DefaultReferenceDir))
	c.Reference.ReloadInterval = cmp.Or(c.Reference.ReloadInterval, DefaultReloadInterval)

	if !v.set("checks.lateness") {
		c.Checks.Lateness = DefaultLateness
	}
	if !v.set("checks.idle_release") {
		c.Checks.IdleRelease = DefaultIdleRelease
	}
	for _, s := range c.Checks.Sections() {
		s.Section.setDefaults(v, "checks."+s.Name)
	}

	a := &c.Alerting
	a.DashboardURL = cmp.Or(a.DashboardURL, DefaultDashboardURL)
	if !v.set("alerting.console.enabled") {
		a.Console.Enabled = true
	}
	a.Console.Format = cmp.Or(a.Console.Format, "text")
	a.JSONL.Path = c.abs(a.JSONL.Path)
	a.Slack.Token.File = c.abs(a.Slack.Token.File)
	a.PseudonymKey.File = c.abs(a.PseudonymKey.File)
	a.setRouteDefaults(c)
	c.HTTP.Listen = cmp.Or(c.HTTP.Listen, DefaultListen)
	c.Web.setDefaults(c) // after http.listen and alerting.pseudonym_key, which it defaults from
	c.Evidence.setDefaults(c)
}

func (o *OutOfHours) setDefaults(v *validator, p string) {
	if !v.set(p + ".enabled") {
		o.Enabled = true
	}
	o.Severity = cmp.Or(o.Severity, string(DefaultSeverity))
	if !v.set(p + ".grace") {
		o.Grace = DefaultGrace
	}
	o.EpisodeGap = cmp.Or(o.EpisodeGap, DefaultEpisodeGap)
	o.WorkingHours.setDefaults(v, p+".working_hours", defaultWorkingHours())
	for i := range o.Overrides {
		if wh := o.Overrides[i].WorkingHours; wh != nil {
			// An override's working hours start from the check's own.
			wh.setDefaults(v, fmt.Sprintf("%s.overrides[%d].working_hours", p, i), o.WorkingHours)
		}
	}
}

// defaultWorkingHours is CONTRACT §4: Mon–Fri 08:00–18:00, not on bank
// holidays (England and Wales).
func defaultWorkingHours() WorkingHours {
	return WorkingHours{
		Days:         []Weekday{Weekday(time.Monday), Weekday(time.Tuesday), Weekday(time.Wednesday), Weekday(time.Thursday), Weekday(time.Friday)},
		Start:        Clock{8, 0},
		End:          Clock{18, 0},
		BankHolidays: BankHolidaysEnglandWales,
	}
}

func (w *WorkingHours) setDefaults(v *validator, p string, base WorkingHours) {
	if !v.set(p + ".days") {
		w.Days = slices.Clone(base.Days)
	}
	if !v.set(p + ".start") {
		w.Start = base.Start
	}
	if !v.set(p + ".end") {
		w.End = base.End
	}
	w.BankHolidays = cmp.Or(w.BankHolidays, base.BankHolidays)
}

// String renders w compactly, e.g. "mon,tue 08:00-18:00 england-and-wales".
func (w WorkingHours) String() string {
	days := make([]string, len(w.Days))
	for i, d := range w.Days {
		days[i] = d.String()
	}
	return fmt.Sprintf("%s %s-%s %s", strings.Join(days, ","), w.Start, w.End, w.BankHolidays)
}
