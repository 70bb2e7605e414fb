package config

import (
	"cmp"
	"time"
)

// setDefaults fills what the file left out and resolves relative paths. It
// runs after validation, so it only ever sees valid values; it asks v whether
// a key was written, so that an explicit zero (grace: 0s, enabled: false)
// is kept rather than replaced.
func (c *Config) setDefaults(v *Validator) {
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

	if !v.Set("checks.lateness") {
		c.Checks.Lateness = DefaultLateness
	}
	if !v.Set("checks.idle_release") {
		c.Checks.IdleRelease = DefaultIdleRelease
	}
	for _, s := range c.Checks.Sections() {
		s.Section.SetDefaults(v, "checks."+s.Name)
	}

	a := &c.Alerting
	a.DashboardURL = cmp.Or(a.DashboardURL, DefaultDashboardURL)
	if !v.Set("alerting.console.enabled") {
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
