package config

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dpiawatch/dpiawatch/alerting/matcher"
)

// Privacy levels of notifications (alerting.Privacy).
const (
	PrivacyMinimal  = "minimal"
	PrivacyStandard = "standard"
)

// DefaultDigestThreshold: more alerts than this for one receiver within a
// group_interval go as one digest.
const DefaultDigestThreshold = 10

// Built-in receivers a route may name besides alerting.receivers: the
// legacy console, jsonl and slack sections.
var builtinReceivers = []string{"console", "jsonl", "slack"}

// AlertingAPI configures the triage and silences API and Slack interactivity.
// Neither token nor clients: /api/v1 is off.
type AlertingAPI struct {
	// Token is one bearer token shared by whoever holds it, recorded as the
	// client "shared" (api:shared); clients are preferred.
	Token Secret `yaml:"token"`
	// Clients are the API's clients, each with a token of its own, recorded
	// as api:<name> in triage, silences and the audit log.
	Clients []APIClient `yaml:"clients"`
	// SlackSigningSecret verifies Slack interactivity requests (the triage
	// buttons); unset: /slack/interactions is off.
	SlackSigningSecret Secret `yaml:"slack_signing_secret"`
}

// APIClient is one client of the triage and silences API.
type APIClient struct {
	Name  string `yaml:"name"`
	Token Secret `yaml:"token"`
	// Permissions are what it may do: read, triage, silences. Absent: all.
	Permissions []string `yaml:"permissions"`
}

// APIPermissions are the permissions an API client may be given (as
// alerting.APIPermissions).
var APIPermissions = []string{"read", "triage", "silences"}

// SharedTokenClient is the client name of alerting.api.token.
const SharedTokenClient = "shared"

// DefaultSilenceMaxDuration is alerting.silences.max_duration's default (as
// alerting.DefaultSilenceMaxDuration).
const DefaultSilenceMaxDuration = Duration(30 * 24 * time.Hour)

// Silences bounds the silences people and API clients create.
type Silences struct {
	// MaxDuration is the longest a silence may last and how far ahead it
	// may start. Default 720h (30 days).
	MaxDuration Duration `yaml:"max_duration"`
	// AllowMatchAll permits silences whose matchers all match an empty
	// label, i.e. every alert. Default false.
	AllowMatchAll bool `yaml:"allow_match_all"`
}

// Receiver is one named destination; exactly one of its kinds is set.
type Receiver struct {
	Name         string        `yaml:"name"`
	Slack        *SlackApp     `yaml:"slack"`
	SlackWebhook *SlackWebhook `yaml:"slack_webhook"`
	Webhook      *Webhook      `yaml:"webhook"`
}

// SlackApp posts through the Web API with a bot token: threads, updates and
// (with interactive) triage buttons.
type SlackApp struct {
	Channel     string `yaml:"channel"`
	Token       Secret `yaml:"token"`
	APIURL      string `yaml:"api_url"`
	Interactive bool   `yaml:"interactive"`
}

// SlackWebhook posts through an incoming webhook; its URL is the credential.
type SlackWebhook struct {
	URL Secret `yaml:"url"`
}

// Webhook POSTs signed JSON.
type Webhook struct {
	URL    string `yaml:"url"`
	Secret Secret `yaml:"secret"` // HMAC-SHA256 key
}

// Route is one node of the routing tree (Alertmanager's semantics).
type Route struct {
	Receiver       string   `yaml:"receiver"`
	Matchers       []string `yaml:"matchers"`
	GroupBy        []string `yaml:"group_by"`
	GroupWait      Duration `yaml:"group_wait"`
	GroupInterval  Duration `yaml:"group_interval"`
	RepeatInterval Duration `yaml:"repeat_interval"`
	Continue       bool     `yaml:"continue"`
	Routes         []Route  `yaml:"routes"`
}

// Heartbeat expects events from one source at least every MaxSilence.
type Heartbeat struct {
	Org        string   `yaml:"org"`
	System     string   `yaml:"system"`
	MaxSilence Duration `yaml:"max_silence"`
	Severity   string   `yaml:"severity"` // default high
	Risks      []string `yaml:"risks"`    // of the org's DPIA
}

func (a *Alerting) validateRoutes(v *Validator, p string, c *Config) {
	switch a.Privacy {
	case "", PrivacyMinimal, PrivacyStandard:
	default:
		v.Errorf(p+".privacy", "unknown privacy level %q (minimal or standard)", a.Privacy)
	}
	if v.Set(p+".digest_threshold") && a.DigestThreshold < 0 {
		v.Errorf(p+".digest_threshold", "%d is negative (0 means the default, %d)", a.DigestThreshold, DefaultDigestThreshold)
	}
	a.validateAPI(v, p)
	if v.Set(p+".silences.max_duration") && a.Silences.MaxDuration <= 0 {
		v.Errorf(p+".silences.max_duration", "must be longer than 0s")
	}

	names := map[string]bool{}
	for i, r := range a.Receivers {
		rp := fmt.Sprintf("%s.receivers[%d]", p, i)
		switch {
		case r.Name == "":
			v.Errorf(rp+".name", "name is required")
		case !idPattern.MatchString(r.Name):
			v.Errorf(rp+".name", "%q is not a valid receiver name (lower-case letters, digits and hyphens)", r.Name)
		case names[r.Name] || slices.Contains(builtinReceivers, r.Name):
			v.Errorf(rp+".name", "receiver name %q is already taken (%s are built in)", r.Name, strings.Join(builtinReceivers, ", "))
		}
		names[r.Name] = true
		kinds := 0
		if r.Slack != nil {
			kinds++
			if r.Slack.Channel == "" {
				v.Errorf(rp+".slack.channel", "channel is required")
			}
			if r.Slack.Token.IsZero() && !v.Set(rp+".slack.token") {
				v.Errorf(rp+".slack.token", "token is required ({env: NAME} or {file: PATH})")
			}
			r.Slack.Token.validate(v, rp+".slack.token")
			validHTTPURL(v, rp+".slack.api_url", r.Slack.APIURL)
		}
		if r.SlackWebhook != nil {
			kinds++
			if r.SlackWebhook.URL.IsZero() && !v.Set(rp+".slack_webhook.url") {
				v.Errorf(rp+".slack_webhook.url", "url is required: a secret, as the URL is the credential ({env: NAME} or {file: PATH})")
			}
			r.SlackWebhook.URL.validate(v, rp+".slack_webhook.url")
		}
		if r.Webhook != nil {
			kinds++
			if r.Webhook.URL == "" {
				v.Errorf(rp+".webhook.url", "url is required")
			}
			validHTTPURL(v, rp+".webhook.url", r.Webhook.URL)
			if r.Webhook.Secret.IsZero() && !v.Set(rp+".webhook.secret") {
				v.Errorf(rp+".webhook.secret", "secret is required: it signs every request ({env: NAME} or {file: PATH})")
			}
			r.Webhook.Secret.validate(v, rp+".webhook.secret")
		}
		if kinds != 1 {
			v.Errorf(rp, "give exactly one of slack, slack_webhook or webhook")
		}
	}
	if a.Route != nil {
		if a.Route.Receiver == "" {
			v.Errorf(p+".route.receiver", "the root route needs a receiver")
		}
		if len(a.Route.Matchers) > 0 {
			v.Errorf(p+".route.matchers", "the root route matches every alert; put matchers on its routes")
		}
		a.Route.validate(v, p+".route", names)
	} else if len(a.Receivers) > 0 {
		v.Warnf(p+".receivers", "receivers are configured but no route sends alerts to them")
	}
	for i, h := range a.Heartbeats {
		h.validate(v, fmt.Sprintf("%s.heartbeats[%d]", p, i), c)
	}
}

// validateAPI checks the API's clients: unique names and token sources
// (identical tokens are found when secrets are resolved), and that the API
// is served at all.
func (a *Alerting) validateAPI(v *Validator, p string) {
	p += ".api"
	a.API.Token.validate(v, p+".token")
	a.API.SlackSigningSecret.validate(v, p+".slack_signing_secret")
	names := map[string]string{}
	sources := map[Secret]string{}
	if !a.API.Token.IsZero() {
		names[SharedTokenClient] = p + ".token"
		sources[a.API.Token] = p + ".token"
		v.Warnf(p+".token", "one token shared by every client: all it does is recorded as api:%s; give each client a token of its own under %s.clients", SharedTokenClient, p)
	}
	for i, c := range a.API.Clients {
		cp := fmt.Sprintf("%s.clients[%d]", p, i)
		switch first, taken := names[c.Name]; {
		case c.Name == "":
			v.Errorf(cp+".name", "name is required: it is recorded as api:<name> for all the client does")
		case !idPattern.MatchString(c.Name):
			v.Errorf(cp+".name", "%q is not a valid client name (lower-case letters, digits and hyphens)", c.Name)
		case taken:
			v.Errorf(cp+".name", "client name %q is already taken by %s", c.Name, first)
		default:
			names[c.Name] = cp + ".name"
		}
		if c.Token.IsZero() && !v.Set(cp+".token") {
			v.Errorf(cp+".token", "token is required ({env: NAME} or {file: PATH})")
			continue
		}
		for j, perm := range c.Permissions {
			if !slices.Contains(APIPermissions, perm) {
				v.Errorf(fmt.Sprintf("%s.permissions[%d]", cp, j), "unknown permission %q (%s)", perm, strings.Join(APIPermissions, ", "))
			}
		}
		if v.Set(cp+".permissions") && len(c.Permissions) == 0 {
			v.Errorf(cp+".permissions", "give at least one permission (%s), or leave the key out for all", strings.Join(APIPermissions, ", "))
		}
		c.Token.validate(v, cp+".token")
		if first, ok := sources[c.Token]; ok && !c.Token.IsZero() {
			v.Errorf(cp+".token", "same source (%s) as %s: each client needs a token of its own", c.Token, first)
		} else {
			sources[c.Token] = cp + ".token"
		}
	}
	if a.Route == nil {
		// The API's silences and triage act in the routed pipeline; the
		// plain dispatcher (no route) neither mutes nor threads, so an API
		// served without it would accept silences that silence nothing.
		for _, k := range []string{".token", ".clients", ".slack_signing_secret"} {
			if v.Set(p + k) {
				v.Errorf(p+k, "the triage and silences API is served only with alerting.route, which applies silences and triage; add a route (e.g. route: {receiver: console}) or remove %s", p)
				break
			}
		}
	}
}

func validHTTPURL(v *Validator, p, s string) {
	if s == "" {
		return
	}
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Errorf(p, "%q is not an http(s) URL", s)
	}
}

func (r *Route) validate(v *Validator, p string, receivers map[string]bool) {
	if r.Receiver != "" && !receivers[r.Receiver] && !slices.Contains(builtinReceivers, r.Receiver) {
		v.Errorf(p+".receiver", "unknown receiver %q (define it under alerting.receivers, or use %s)", r.Receiver, strings.Join(builtinReceivers, ", "))
	}
	for i, m := range r.Matchers {
		if _, err := matcher.Parse(m); err != nil {
			v.Errorf(fmt.Sprintf("%s.matchers[%d]", p, i), "%v", err)
		}
	}
	for i, l := range r.GroupBy {
		if !slices.Contains(matcher.Labels, l) {
			v.Errorf(fmt.Sprintf("%s.group_by[%d]", p, i), "unknown label %q (%s)", l, strings.Join(matcher.Labels, ", "))
		}
	}
	for _, k := range []string{"group_wait", "group_interval", "repeat_interval"} {
		d := map[string]Duration{"group_wait": r.GroupWait, "group_interval": r.GroupInterval, "repeat_interval": r.RepeatInterval}[k]
		if k != "group_wait" && v.Set(p+"."+k) && d <= 0 {
			v.Errorf(p+"."+k, "must be longer than 0s")
		}
	}
	for i := range r.Routes {
		r.Routes[i].validate(v, fmt.Sprintf("%s.routes[%d]", p, i), receivers)
	}
}

func (h *Heartbeat) validate(v *Validator, p string, c *Config) {
	org, ok := c.Org(h.Org)
	switch {
	case h.Org == "":
		v.Errorf(p+".org", "org is required")
	case !ok:
		v.Errorf(p+".org", "unknown org %q", h.Org)
	}
	if h.System == "" {
		v.Errorf(p+".system", "system is required: the CRM/CMS whose feed is watched")
	}
	if h.MaxSilence <= 0 && !v.hasFailed(p+".max_silence") {
		v.Errorf(p+".max_silence", "max_silence is required: how long the feed may be quiet (e.g. 2h)")
	}
	if h.Severity != "" && !ValidSeverity(h.Severity) {
		v.Errorf(p+".severity", "unknown severity %q (low, medium, high or critical)", h.Severity)
	}
	if ok && c.Registers != nil {
		if r := c.Registers[org.DPIA]; r != nil {
			for i, risk := range h.Risks {
				if _, found := r.Risk(risk); !found {
					v.Errorf(fmt.Sprintf("%s.risks[%d]", p, i), "unknown risk %q (DPIA %s has %s)", risk, org.DPIA, strings.Join(r.RiskIDs(), ", "))
				}
			}
		}
	}
	if len(h.Risks) == 0 {
		v.Errorf(p+".risks", "risks is required: every alert points to a DPIA risk")
	}
}

func (a *Alerting) setRouteDefaults(c *Config) {
	a.Privacy = cmp.Or(a.Privacy, PrivacyStandard)
	a.DigestThreshold = cmp.Or(a.DigestThreshold, DefaultDigestThreshold)
	a.API.Token.File = c.abs(a.API.Token.File)
	for i := range a.API.Clients {
		a.API.Clients[i].Token.File = c.abs(a.API.Clients[i].Token.File)
	}
	a.Silences.MaxDuration = cmp.Or(a.Silences.MaxDuration, DefaultSilenceMaxDuration)
	a.API.SlackSigningSecret.File = c.abs(a.API.SlackSigningSecret.File)
	for i := range a.Receivers {
		r := &a.Receivers[i]
		if r.Slack != nil {
			r.Slack.Token.File = c.abs(r.Slack.Token.File)
		}
		if r.SlackWebhook != nil {
			r.SlackWebhook.URL.File = c.abs(r.SlackWebhook.URL.File)
		}
		if r.Webhook != nil {
			r.Webhook.Secret.File = c.abs(r.Webhook.Secret.File)
		}
	}
	for i := range a.Heartbeats {
		a.Heartbeats[i].Severity = cmp.Or(a.Heartbeats[i].Severity, "high")
	}
}
