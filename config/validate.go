package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // timezones must validate the same on hosts without a zoneinfo database

	"github.com/dpiawatch/dpiawatch/alert"
	"github.com/dpiawatch/dpiawatch/dpia"
	"github.com/dpiawatch/dpiawatch/event"
)

// Default values (CONTRACT §4 for the policy ones).
const (
	DefaultTimezone        = "Europe/London"
	DefaultMaxEventBytes   = 65536
	DefaultEventMaxAge     = Duration(event.DefaultMaxAge)
	DefaultEventMaxAhead   = Duration(event.DefaultMaxAhead)
	DefaultClientID        = "dpiawatch"
	DefaultGroupID         = "dpiawatch"
	DefaultDeadLetterTopic = "dpiawatch-dead-letter"
	DefaultBatchMaxEvents  = 20000
	DefaultBatchMaxWait    = Duration(250 * time.Millisecond)
	DefaultQueueBatches    = 4
	DefaultSessionTimeout  = Duration(30 * time.Second)
	DefaultStorePath       = "data/dpiawatch.db"
	DefaultSynchronous     = "full"
	DefaultReferenceDir    = "reference"
	DefaultReloadInterval  = Duration(time.Minute)
	DefaultSeverity        = alert.SeverityMedium
	DefaultGrace           = Duration(30 * time.Minute)
	DefaultEpisodeGap      = Duration(time.Hour)
	DefaultDashboardURL    = "http://127.0.0.1:9464"
	DefaultListen          = "127.0.0.1:9464"
)

var idPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func (c *Config) validate(v *Validator) {
	c.validateDPIAs(v)
	ids := map[string]bool{}
	if len(c.Orgs) == 0 {
		v.Errorf("orgs", "no orgs configured; each tenant needs an entry naming its DPIA")
	}
	for i := range c.Orgs {
		c.Orgs[i].validate(v, fmt.Sprintf("orgs[%d]", i), c, ids)
	}
	c.Ingest.validate(v, "ingest", c)
	c.Store.validate(v, "store")
	c.Store.ClickHouse.validate(v, "store.clickhouse", c)
	c.Store.Retention.validate(v, "store.retention", c)
	c.Reference.validate(v, "reference")
	if v.Set("checks.lateness") && c.Checks.Lateness < 0 {
		v.Errorf("checks.lateness", "must not be negative")
	}
	if v.Set("checks.idle_release") && c.Checks.IdleRelease <= 0 {
		v.Errorf("checks.idle_release", "must be longer than 0s")
	}
	for _, s := range c.Checks.Sections() {
		s.Section.Validate(v, "checks."+s.Name, c)
		c.validatePatternEvidences(v, "checks."+s.Name+".pattern_evidences", s)
	}
	c.Alerting.validate(v, "alerting")
	c.Alerting.validateRoutes(v, "alerting", c)
	c.HTTP.validate(v, "http")
	c.Web.validate(v, "web", c)
	c.Evidence.validate(v, "evidence")
	c.warnUnevidenced(v)
}

// validateDPIAs loads every register so that later cross-checks can use them.
// Registers stays nil when one failed, which silences those cross-checks
// rather than burying the real error under consequences of it.
func (c *Config) validateDPIAs(v *Validator) {
	if len(c.DPIAs) == 0 {
		v.Errorf("dpias", "no DPIA registers listed; every alert must point to a DPIA risk")
		return
	}
	regs := map[string]*dpia.Register{}
	ok := true
	for i, d := range c.DPIAs {
		p := fmt.Sprintf("dpias[%d].file", i)
		if d.File == "" {
			v.Errorf(p, "file is required")
			ok = false
			continue
		}
		r, err := dpia.LoadFile(c.abs(d.File))
		if err != nil {
			v.Errorf(p, "%v", err)
			ok = false
			continue
		}
		if _, dup := regs[r.ID]; dup {
			v.Errorf(p, "DPIA %q is listed twice", r.ID)
			continue
		}
		regs[r.ID] = r
	}
	if ok {
		c.Registers = regs
	}
}

func (c *Config) registerIDs() string {
	ids := make([]string, 0, len(c.Registers))
	for id := range c.Registers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

func (o *Org) validate(v *Validator, p string, c *Config, seen map[string]bool) {
	switch {
	case o.ID == "":
		v.Errorf(p+".id", "id is required")
	case !idPattern.MatchString(o.ID):
		v.Errorf(p+".id", "%q is not a valid org id (lower-case letters, digits and hyphens)", o.ID)
	case seen[o.ID]:
		v.Errorf(p+".id", "duplicate org id %q", o.ID)
	}
	seen[o.ID] = true
	switch {
	case o.DPIA == "":
		v.Errorf(p+".dpia", "dpia is required: the DPIA whose risks this org's alerts evidence")
	case c.Registers != nil && c.Registers[o.DPIA] == nil:
		v.Errorf(p+".dpia", "unknown DPIA %q (loaded: %s)", o.DPIA, c.registerIDs())
	}
	if o.Timezone != "" {
		loc, err := time.LoadLocation(o.Timezone)
		if err != nil || o.Timezone == "Local" {
			v.Errorf(p+".timezone", "unknown timezone %q (an IANA name, e.g. Europe/London)", o.Timezone)
		}
		o.Location = loc
	}
	roles := map[string]bool{}
	for i, r := range o.OutOfHoursRoles {
		rp := fmt.Sprintf("%s.out_of_hours_roles[%d]", p, i)
		if r == "" {
			v.Errorf(rp, "role is empty")
		} else if roles[r] {
			v.Warnf(rp, "role %q is listed twice", r)
		}
		roles[r] = true
	}
}

func (in *Ingest) validate(v *Validator, p string, c *Config) {
	if v.Set(p+".max_event_bytes") && in.MaxEventBytes <= 0 {
		v.Errorf(p+".max_event_bytes", "%d is not a positive number of bytes", in.MaxEventBytes)
	}
	for _, b := range []struct {
		key string
		d   Duration
	}{{"max_age", in.EventTime.MaxAge}, {"max_ahead", in.EventTime.MaxAhead}} {
		if k := p + ".event_time." + b.key; v.Set(k) && b.d <= 0 {
			v.Errorf(k, "must be longer than 0s: every event time is bounded")
		}
	}
	if in.Kafka != nil {
		in.Kafka.validate(v, p+".kafka", c)
	}
}

func (k *Kafka) validate(v *Validator, p string, c *Config) {
	if len(k.Brokers) == 0 {
		v.Errorf(p+".brokers", "no brokers (host:port); remove the kafka section to run without Kafka")
	}
	for i, b := range k.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			v.Errorf(fmt.Sprintf("%s.brokers[%d]", p, i), "%q is not host:port", b)
		}
	}
	if len(k.Topics) == 0 {
		v.Errorf(p+".topics", "no topics to consume")
	}
	names := map[string]bool{}
	for i, t := range k.Topics {
		tp := fmt.Sprintf("%s.topics[%d]", p, i)
		switch {
		case t.Name == "":
			v.Errorf(tp+".name", "name is required")
		case names[t.Name]:
			v.Errorf(tp+".name", "topic %q is listed twice", t.Name)
		case t.Name == k.DeadLetterTopic:
			v.Errorf(tp+".name", "topic %q is also the dead-letter topic", t.Name)
		}
		names[t.Name] = true
		switch t.Format {
		case "", FormatAuto, FormatNative:
		case FormatFHIR:
			if t.Org == "" {
				v.Errorf(tp+".org", "org is required for a fhir topic: AuditEvents do not name their org")
			}
			if t.System == "" {
				v.Errorf(tp+".system", "system is required for a fhir topic: AuditEvents do not name their system")
			}
		default:
			v.Errorf(tp+".format", "unknown format %q (auto, native or fhir)", t.Format)
		}
		for j, a := range t.FHIR.ActorFrom {
			if _, err := event.ParseActorSource(a); err != nil {
				v.Errorf(fmt.Sprintf("%s.fhir.actor_from[%d]", tp, j), "%v", err)
			}
		}
		if err := (event.FHIROptions{IdentifierSystems: t.FHIR.IdentifierSystems}).Validate(); err != nil {
			v.Errorf(tp+".fhir.identifier_systems", "%v", err)
		}
		if t.Org != "" {
			if _, ok := c.Org(t.Org); !ok {
				v.Errorf(tp+".org", "unknown org %q", t.Org)
			}
		}
	}
	if v.Set(p+".batch.max_events") && k.Batch.MaxEvents <= 0 {
		v.Errorf(p+".batch.max_events", "%d is not a positive number of events", k.Batch.MaxEvents)
	}
	if v.Set(p+".batch.max_wait") && k.Batch.MaxWait <= 0 {
		v.Errorf(p+".batch.max_wait", "must be longer than 0s")
	}
	if v.Set(p+".queue_batches") && k.QueueBatches <= 0 {
		v.Errorf(p+".queue_batches", "%d is not a positive number of batches", k.QueueBatches)
	}
	if v.Set(p+".session_timeout") && (k.SessionTimeout < Duration(time.Second) || k.SessionTimeout > Duration(30*time.Minute)) {
		v.Errorf(p+".session_timeout", "%s is outside 1s to 30m (brokers allow 6s to 30m by default)", k.SessionTimeout)
	}
	k.TLS.validate(v, p+".tls")
	k.SASL.validate(v, p+".sasl", k.TLS.Enabled || v.hasFailed(p+".tls.enabled"))
}

func (t *TLS) validate(v *Validator, p string) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.Errorf(p+".cert_file", "cert_file and key_file go together")
	}
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		v.Warnf(p+".enabled", "TLS settings are ignored while enabled is false")
	}
	if t.Enabled && t.InsecureSkipVerify {
		v.Warnf(p+".insecure_skip_verify", "broker certificates are not verified; anyone on the path can read the events")
	}
}

func (s *SASL) validate(v *Validator, p string, tls bool) {
	switch s.Mechanism {
	case "":
		if s.Username != "" || !s.Password.IsZero() {
			v.Warnf(p+".mechanism", "username and password are ignored while mechanism is empty")
		}
		return
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		v.Errorf(p+".mechanism", "unknown SASL mechanism %q (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
	}
	if s.Username == "" {
		v.Errorf(p+".username", "username is required with SASL")
	}
	if s.Password.IsZero() && !v.Set(p+".password") { // a literal was reported already
		v.Errorf(p+".password", "password is required with SASL ({env: NAME} or {file: PATH})")
	}
	s.Password.validate(v, p+".password")
	if !tls {
		v.Warnf(p+".mechanism", "SASL without TLS: credentials and events cross the network unencrypted")
	}
}

func (s *Secret) validate(v *Validator, p string) {
	if s.Env != "" && s.File != "" {
		v.Errorf(p, "give env or file, not both")
	}
}

var synchronousModes = []string{"full", "extra", "normal"}

func (s *Store) validate(v *Validator, p string) {
	m := s.Embedded.Synchronous
	if m != "" && !slices.Contains(synchronousModes, m) {
		v.Errorf(p+".embedded.synchronous", "unknown mode %q (full, extra or normal; off could lose stored events)", m)
	}
	if m == "normal" {
		v.Warnf(p+".embedded.synchronous", "normal may lose the last stored batches on power loss after their offsets were committed")
	}
}

func (r *Reference) validate(v *Validator, p string) {
	if v.Set(p+".reload_interval") && r.ReloadInterval <= 0 {
		v.Errorf(p+".reload_interval", "must be longer than 0s")
	}
}

func ValidSeverity(s string) bool { return alert.Severity(s).Rank() >= 0 }

// ValidateEvidences checks that every DPIA and risk a check claims to
// evidence exists, so that no alert can point to a risk the DPIA lacks.
func (c *Config) ValidateEvidences(v *Validator, p string, ev map[string][]string) {
	if c.Registers == nil {
		return
	}
	for _, id := range sortedKeys(ev) {
		dp := join(p, id)
		r := c.Registers[id]
		if r == nil {
			v.KeyErrorf(dp, "unknown DPIA %q (loaded: %s)", id, c.registerIDs())
			continue
		}
		seen := map[string]bool{}
		for i, risk := range ev[id] {
			rp := fmt.Sprintf("%s[%d]", dp, i)
			if _, ok := r.Risk(risk); !ok {
				v.Errorf(rp, "unknown risk %q (DPIA %s has %s)", risk, id, strings.Join(r.RiskIDs(), ", "))
			} else if seen[risk] {
				v.Warnf(rp, "risk %q is listed twice", risk)
			}
			seen[risk] = true
		}
	}
}

// validatePatternEvidences checks a check's per-pattern risk mapping
// below p: every pattern is one the check raises, and every DPIA and risk
// exists, as for the check's own evidences.
func (c *Config) validatePatternEvidences(v *Validator, p string, s NamedSection) {
	pe := s.Section.PatternEvidencedRisks()
	for _, pattern := range sortedKeys(pe) {
		pp := join(p, pattern)
		if !slices.Contains(s.Patterns, pattern) {
			v.KeyErrorf(pp, "unknown pattern %q of check %s (its patterns: %s)", pattern, s.Name, strings.Join(s.Patterns, ", "))
			continue
		}
		if len(pe[pattern]) == 0 {
			v.Warnf(pp, "maps no DPIA, so the check's evidences apply: name a DPIA, with [] where none of its risks covers %s", pattern)
			continue
		}
		c.ValidateEvidences(v, pp, pe[pattern])
	}
}

// ValidateOverrideTarget checks whom an override applies to: an org, a
// role or a team, where an org may go with a role or a team but a role
// never with a team (the checks resolve a knob at one level only, and run
// would refuse the combination).
func (c *Config) ValidateOverrideTarget(v *Validator, p, org, role, team string) {
	switch {
	case org == "" && role == "" && team == "":
		v.Errorf(p, "an override needs at least one of org, role or team")
	case role != "" && team != "":
		v.Errorf(p, "an override for a role and a team at once is not supported; use one of them")
	}
	if org != "" {
		if _, ok := c.Org(org); !ok {
			v.Errorf(p+".org", "unknown org %q", org)
		}
	}
}

func (a *Alerting) validate(v *Validator, p string) {
	if a.DashboardURL != "" {
		if u, err := url.Parse(a.DashboardURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf(p+".dashboard_url", "%q is not an http(s) URL", a.DashboardURL)
		}
	}
	switch a.Console.Format {
	case "", "text", "json":
	default:
		v.Errorf(p+".console.format", "unknown format %q (text or json)", a.Console.Format)
	}
	a.Slack.Token.validate(v, p+".slack.token")
	if !a.Slack.Token.IsZero() && a.Slack.Channel == "" {
		v.Errorf(p+".slack.channel", "channel is required when a token is configured")
	}
	if a.Slack.APIURL != "" {
		if u, err := url.Parse(a.Slack.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			v.Errorf(p+".slack.api_url", "%q is not an http(s) URL", a.Slack.APIURL)
		}
	}
}

func (h *HTTP) validate(v *Validator, p string) {
	if h.Listen == "" {
		return
	}
	host, _, err := net.SplitHostPort(h.Listen)
	if err != nil {
		v.Errorf(p+".listen", "%q is not host:port", h.Listen)
		return
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		v.Warnf(p+".listen", "listening beyond loopback: the web UI shows access to care records; put authentication and TLS in front of it")
	}
}

// warnUnevidenced warns, for each configured org's DPIA, about every risk
// that no enabled check evidences: the DPIA promises a mitigation that
// dpiawatch does not watch.
func (c *Config) warnUnevidenced(v *Validator) {
	if c.Registers == nil {
		return
	}
	covered := map[string]bool{} // "dpia/risk"
	c.riskChecks = map[string]map[string][]string{}
	for _, ch := range c.Checks.evidencing(v) {
		for id, risks := range ch.evidences {
			for _, r := range risks {
				covered[id+"/"+r] = true
				if c.riskChecks[id] == nil {
					c.riskChecks[id] = map[string][]string{}
				}
				c.riskChecks[id][r] = append(c.riskChecks[id][r], ch.check)
			}
		}
	}
	done := map[string]bool{}
	for i, o := range c.Orgs {
		r := c.Registers[o.DPIA]
		if r == nil || done[o.DPIA] {
			continue
		}
		done[o.DPIA] = true
		for _, k := range r.Risks {
			if !covered[o.DPIA+"/"+k.ID] {
				v.Warnf(fmt.Sprintf("orgs[%d].dpia", i), "risk %s of DPIA %s (%q) is evidenced by no enabled check", k.ID, o.DPIA, k.Title)
			}
		}
	}
}

type evidencing struct {
	check     string
	evidences map[string][]string // DPIA id → every risk some pattern of the check evidences
}

// evidencing lists the enabled checks and what each evidences, through
// any of its patterns. It runs before defaults, so a check whose enabled
// key is absent counts as enabled.
func (ch *Checks) evidencing(v *Validator) []evidencing {
	var out []evidencing
	for _, s := range ch.Sections() {
		if s.Section.IsEnabled() || !v.Set("checks."+s.Name+".enabled") {
			ev := map[string][]string{}
			for _, id := range s.DPIAs() {
				ev[id] = s.Risks(id)
			}
			out = append(out, evidencing{s.Name, ev})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
