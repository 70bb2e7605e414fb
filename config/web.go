package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Web configures the web UI (package web), served on the http.listen
// address beside /metrics. It is off unless enabled: the UI shows access to
// care records and must not appear by accident.
type Web struct {
	Enabled bool `yaml:"enabled"`
	// ExternalURL is how browsers reach the UI (https://… behind a TLS
	// proxy). It decides the OIDC redirect URL and whether cookies are
	// marked Secure and HSTS is sent. Default: http://<http.listen>.
	ExternalURL string `yaml:"external_url"`
	// AccountsFile holds local accounts (argon2id hashes), written by
	// `dpiawatch user add`. Empty: no local accounts.
	AccountsFile string   `yaml:"accounts_file"`
	SessionTTL   Duration `yaml:"session_ttl"`  // default 8h: absolute lifetime of a login
	IdleTimeout  Duration `yaml:"idle_timeout"` // default 30m: a session unused this long ends
	// PseudonymKey keys the pseudonyms shown to roles that may not see
	// subject ids; default: alerting.pseudonym_key, so that the UI and Slack
	// show the same pseudonym for one person.
	PseudonymKey Secret   `yaml:"pseudonym_key"`
	OIDC         *WebOIDC `yaml:"oidc"` // nil: no single sign-on
	// ActivityDays is how far back actor pages look. Default 28.
	ActivityDays int `yaml:"activity_days"`
	// RoutineAudit configures managers' routine audits.
	RoutineAudit WebRoutineAudit `yaml:"routine_audit"`
	// TrustedProxies lists the reverse proxies (addresses or CIDR
	// prefixes) whose X-Forwarded-For the UI believes when it throttles
	// logins per client. Empty: the connection's address is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// TrustedProxyPrefixes returns TrustedProxies parsed (a bare address is a
// single-address prefix); entries that do not parse, which validation
// reports, are left out.
func (w *Web) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range w.TrustedProxies {
		if p, ok := parsePrefix(s); ok {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// WebRoutineAudit configures routine audits: each period, a reproducible
// random sample of each team's accesses for the team's manager to review.
type WebRoutineAudit struct {
	Period     string `yaml:"period"`      // week (default) or month
	SampleSize int    `yaml:"sample_size"` // accesses per team and period; default 10
}

// WebOIDC configures login through the organisation's OpenID Connect
// identity provider (authorisation code flow with PKCE).
type WebOIDC struct {
	Issuer       string   `yaml:"issuer"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret Secret   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"` // default [openid, profile, email]
	// RolesClaim names the ID-token claim (a string or a list) whose values
	// RoleMap translates into dpiawatch roles. Default "groups".
	RolesClaim string `yaml:"roles_claim"`
	// TeamsClaim names the claim listing a manager's teams. Default "teams".
	TeamsClaim string `yaml:"teams_claim"`
	// OrgsClaim names the claim listing the orgs a user may see; absent from
	// the token: OrgsDefault.
	OrgsClaim   string   `yaml:"orgs_claim"` // default "orgs"
	OrgsDefault []string `yaml:"orgs_default"`
	// RoleMap maps a claim value (an IdP group) to a role: ig-team,
	// manager, dpo or admin. A user none of whose values map is refused.
	RoleMap map[string]string `yaml:"role_map"`
}

// Web defaults.
const (
	DefaultWebSessionTTL   = Duration(8 * time.Hour)
	DefaultWebIdleTimeout  = Duration(30 * time.Minute)
	DefaultWebActivityDays = 28
)

// WebRoles are the roles of the web UI.
var WebRoles = []string{"ig-team", "manager", "dpo", "admin"}

func (w *Web) validate(v *Validator, p string, c *Config) {
	if w.ExternalURL != "" {
		if u, err := url.Parse(w.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf(p+".external_url", "%q is not an http(s) URL", w.ExternalURL)
		} else if u.Scheme == "http" && w.Enabled && !loopbackHost(u.Hostname()) {
			v.Warnf(p+".external_url", "plain http beyond loopback: session cookies and care-record data would cross the network unencrypted")
		}
	}
	w.PseudonymKey.validate(v, p+".pseudonym_key")
	if w.ActivityDays < 0 || w.ActivityDays > 366 {
		v.Errorf(p+".activity_days", "%d is out of range (1–366)", w.ActivityDays)
	}
	if ra := w.RoutineAudit; ra.Period != "" && ra.Period != "week" && ra.Period != "month" {
		v.Errorf(p+".routine_audit.period", "%q is neither week nor month", ra.Period)
	}
	if n := w.RoutineAudit.SampleSize; n < 0 || n > 1000 {
		v.Errorf(p+".routine_audit.sample_size", "%d is out of range (1–1000)", n)
	}
	for i, tp := range w.TrustedProxies {
		if _, ok := parsePrefix(tp); !ok {
			v.Errorf(fmt.Sprintf("%s.trusted_proxies[%d]", p, i), "%q is not an IP address or CIDR prefix (e.g. 10.0.0.0/8)", tp)
		}
	}
	if w.SessionTTL != 0 && w.IdleTimeout > w.SessionTTL {
		v.Warnf(p+".idle_timeout", "longer than session_ttl, so it never applies")
	}
	if o := w.OIDC; o != nil {
		op := p + ".oidc"
		if u, err := url.Parse(o.Issuer); o.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.Errorf(op+".issuer", "issuer is required: the identity provider's https URL")
		} else if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			v.Errorf(op+".issuer", "%q must use https", o.Issuer)
		}
		if o.ClientID == "" {
			v.Errorf(op+".client_id", "client_id is required")
		}
		o.ClientSecret.validate(v, op+".client_secret")
		if len(o.RoleMap) == 0 {
			v.Errorf(op+".role_map", "role_map is required: which identity-provider groups hold which role")
		}
		for _, k := range sortedKeys(o.RoleMap) {
			if !slices.Contains(WebRoles, o.RoleMap[k]) {
				v.Errorf(op+".role_map."+k, "unknown role %q (ig-team, manager, dpo or admin)", o.RoleMap[k])
			}
		}
		for i, org := range o.OrgsDefault {
			if _, ok := c.Org(org); !ok {
				v.Errorf(fmt.Sprintf("%s.orgs_default[%d]", op, i), "unknown org %q", org)
			}
		}
	}
	if w.Enabled && w.AccountsFile == "" && w.OIDC == nil {
		v.Errorf(p, "the web UI is enabled but nobody can log in: set accounts_file or oidc")
	}
}

func loopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

func (w *Web) setDefaults(c *Config) {
	w.ExternalURL = cmp.Or(w.ExternalURL, "http://"+c.HTTP.Listen)
	w.AccountsFile = c.abs(w.AccountsFile)
	w.SessionTTL = cmp.Or(w.SessionTTL, DefaultWebSessionTTL)
	w.IdleTimeout = cmp.Or(w.IdleTimeout, DefaultWebIdleTimeout)
	w.ActivityDays = cmp.Or(w.ActivityDays, DefaultWebActivityDays)
	w.RoutineAudit.Period = cmp.Or(w.RoutineAudit.Period, "week")
	w.RoutineAudit.SampleSize = cmp.Or(w.RoutineAudit.SampleSize, 10)
	if w.PseudonymKey.IsZero() {
		w.PseudonymKey = c.Alerting.PseudonymKey
	} else {
		w.PseudonymKey.File = c.abs(w.PseudonymKey.File)
	}
	if o := w.OIDC; o != nil {
		o.ClientSecret.File = c.abs(o.ClientSecret.File)
		if len(o.Scopes) == 0 {
			o.Scopes = []string{"openid", "profile", "email"}
		}
		o.RolesClaim = cmp.Or(o.RolesClaim, "groups")
		o.TeamsClaim = cmp.Or(o.TeamsClaim, "teams")
		o.OrgsClaim = cmp.Or(o.OrgsClaim, "orgs")
	}
}
