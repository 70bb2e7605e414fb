// Package web is dpiawatch's web UI: server-rendered pages (html/template,
// GOV.UK Frontend styles, no client-side framework) for the IG team, managers
// and the DPO, with its assets embedded in the binary.
//
// The Server is an http.Handler the daemon mounts at "/" beside /metrics,
// /healthz and /readyz. Everything but the login page and static assets needs
// a session; what a session may see is decided by its role (see Principal)
// and applied inside the store's queries (the Store interface), so that an
// alert outside a manager's teams is "not found" by every URL. Every view or
// export of personal data (the queue, its CSV, an alert, a worker's page, a
// sample, an evidence pack, the view log itself) is recorded before it is
// sent, and shown to the DPO.
package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpiawatch/dpiawatch/dpia"
)

//go:embed static templates
var assets embed.FS

// Org is what the UI shows about a tenant.
type Org struct {
	ID       string
	Name     string
	DPIA     string
	Location *time.Location // nil: Europe/London
}

// Options configure New. Store is required, and at least one way to log in
// (Accounts or OIDC).
type Options struct {
	Store    Store
	Accounts *Accounts // local accounts; nil: none
	// AccountsFile, when set, is where the local accounts come from: New
	// loads it (into Accounts, when given) and Run reloads it whenever its
	// content changes; see ReloadAccounts.
	AccountsFile string
	// AccountsReloadInterval is how often Run looks at AccountsFile;
	// default 2s.
	AccountsReloadInterval time.Duration
	OIDC                   *OIDCConfig // single sign-on; nil: none
	// ExternalURL is how browsers reach the UI; an https URL makes cookies
	// Secure (with the __Host- prefix) and turns on HSTS.
	ExternalURL string
	SessionTTL  time.Duration // default 8h
	IdleTimeout time.Duration // default 30m
	Orgs        []Org
	DPIAs       []*dpia.Register
	// RiskChecks lists, per DPIA id and risk id, the checks configured to
	// evidence it (shown on the overview even before any alert).
	RiskChecks map[string]map[string][]string
	// Pseudonym turns a subject id into the pseudonym shown to roles that
	// may not see subject ids (alerting.Pseudonymizer.Subject, so Slack and
	// the UI agree); nil hides subjects from those roles altogether.
	Pseudonym    func(subjectID string) string
	ActivityDays int // how far back actor pages look; default 28
	// OnTriage is called after a triage decision is stored or an alert is
	// put back in a receiver's queue: alert delivery's Wake, so that Slack
	// shows UI decisions, and re-sends, at once.
	OnTriage func()
	// Reference, when set, lets the alert page show what the reference
	// data in force said about the worker and the person.
	Reference ReferenceLookup
	// RoutineAudit configures managers' routine audits.
	RoutineAudit RoutineAuditOptions
	// InForce, when set, returns the reference data in force (the checks'
	// own, reloaded with them): routine-audit samples show from it the
	// worker's relationship to the person and shift at the time of each
	// access, and the person's local reference to those entitled to it,
	// as does the alert page for its person and timeline. nil, or
	// returning nil: samples and alerts show ids only.
	InForce func() ReferenceIndex
	// Evidence, when set, lets the DPO export evidence packs from the UI.
	Evidence *EvidenceOptions
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: a request from one of them is throttled by the right-most
	// forwarded address not itself a trusted proxy. Empty: the connection's
	// address is the client.
	TrustedProxies []netip.Prefix
	// LoginConcurrency bounds the password hashes (argon2id, 64 MiB each)
	// running at once; default 2.
	LoginConcurrency int
	// LoginWait is how long a login waits for a hashing slot before it is
	// refused with 429; default 2s.
	LoginWait  time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time // default time.Now
}

// Server serves the web UI.
type Server struct {
	o        Options
	log      *slog.Logger
	mux      *http.ServeMux
	handler  http.Handler
	tmpl     map[string]*template.Template
	sessions *sessions
	throttle *throttle
	// hashSlots bounds concurrent password hashing; hashWaiters counts
	// logins waiting for a slot.
	hashSlots   chan struct{}
	hashWaiters atomic.Int64
	verify      func(user, pass string) (Account, bool)
	oidc        *oidcFlow
	secure      bool
	cookie      string
	orgs        map[string]Org
	m           *metrics
	onTriage    atomic.Pointer[func()]
	exports     *exportJobs // the DPO's evidence exports in progress
	// accountsSum is the digest of the accounts file's content last read
	// (loaded or refused), so that each content is judged once.
	accountsSum [32]byte
	// accountsSeen is the digest at the previous look: new content is
	// taken when it is seen twice running.
	accountsSeen [32]byte
	reloadMu     sync.Mutex // one reload at a time
}

// SetOnTriage replaces Options.OnTriage: the daemon builds alert delivery
// after the UI, and hands its Wake over once it exists.
func (s *Server) SetOnTriage(f func()) { s.onTriage.Store(&f) }

// New builds the Server. OIDC discovery, when configured, happens here, so
// ctx bounds it.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("web: Options.Store is required")
	}
	if o.Accounts == nil && o.OIDC == nil && o.AccountsFile == "" {
		return nil, errors.New("web: no way to log in: give Accounts, AccountsFile or OIDC")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.ActivityDays <= 0 {
		o.ActivityDays = 28
	}
	o.RoutineAudit = o.RoutineAudit.withDefaults()
	if o.RoutineAudit.Period != PeriodWeek && o.RoutineAudit.Period != PeriodMonth {
		return nil, fmt.Errorf("web: routine-audit period %q is neither %s nor %s", o.RoutineAudit.Period, PeriodWeek, PeriodMonth)
	}
	if o.LoginConcurrency <= 0 {
		o.LoginConcurrency = 2
	}
	if o.LoginWait <= 0 {
		o.LoginWait = 2 * time.Second
	}
	if o.AccountsReloadInterval <= 0 {
		o.AccountsReloadInterval = 2 * time.Second
	}
	var accountsSum [32]byte
	if o.AccountsFile != "" {
		loaded, sum, err := readAccountsFile(o.AccountsFile, true)
		if err != nil {
			return nil, err
		}
		if o.Accounts == nil {
			o.Accounts = loaded
		} else {
			o.Accounts.replace(loaded)
		}
		accountsSum = sum
	}
	if o.ExternalURL == "" {
		o.ExternalURL = "http://127.0.0.1:9464"
	}
	u, err := url.Parse(o.ExternalURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("web: external URL %q is not an http(s) URL", o.ExternalURL)
	}
	s := &Server{
		o:         o,
		log:       o.Logger,
		sessions:  newSessions(o.SessionTTL, o.IdleTimeout, o.Now),
		throttle:  newThrottle(throttleBase, throttleWindow, o.Now),
		hashSlots: make(chan struct{}, o.LoginConcurrency),
		secure:    u.Scheme == "https",
		orgs:      map[string]Org{},
		exports:   newExportJobs(o.Now),

		accountsSum: accountsSum, accountsSeen: accountsSum,
	}
	s.cookie = "dpiawatch_session"
	if s.secure {
		s.cookie = "__Host-dpiawatch_session" // Secure, Path=/, no Domain: not settable by a sibling host
	}
	for _, org := range o.Orgs {
		if org.Location == nil {
			org.Location, _ = time.LoadLocation("Europe/London")
		}
		s.orgs[org.ID] = org
	}
	if s.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	s.m = newMetrics(o.Registerer, s.sessions)
	if o.OIDC != nil {
		if s.oidc, err = newOIDCFlow(ctx, *o.OIDC, strings.TrimSuffix(o.ExternalURL, "/")+"/auth/oidc/callback", o.Now); err != nil {
			return nil, err
		}
	}
	if o.Accounts != nil {
		s.verify = o.Accounts.Authenticate
	}
	if o.OnTriage != nil {
		s.SetOnTriage(o.OnTriage)
	}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", cacheStatic(http.StripPrefix("/static/", files)))
	// GOV.UK Frontend's CSS refers to /assets/… by absolute path.
	govuk, _ := fs.Sub(assets, "static/govuk")
	mux.Handle("GET /assets/", cacheStatic(http.FileServerFS(govuk)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginSubmit)
	mux.HandleFunc("GET /auth/oidc/login", s.oidcLogin)
	mux.HandleFunc("GET /auth/oidc/callback", s.oidcCallback)

	mux.Handle("POST /logout", s.authed(s.logout))
	mux.Handle("GET /{$}", s.authed(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/overview", http.StatusSeeOther)
	}))
	mux.Handle("GET /overview", s.authed(s.overview))
	mux.Handle("GET /alerts", s.authed(s.queue))
	mux.Handle("GET /alerts.csv", s.authed(s.exportCSV))
	mux.Handle("GET /alerts/{id}", s.authed(s.alertPage))
	mux.Handle("POST /alerts/{id}/triage", s.authed(s.triage))
	mux.Handle("POST /alerts/{id}/resend", s.authed(s.resend))
	mux.Handle("POST /alerts/{id}/note", s.authed(s.addNote))
	mux.Handle("GET /actors/{org}/{actor}", s.authed(s.actorPage))
	mux.Handle("GET /audit/views", s.authed(s.viewLog))
	mux.Handle("GET /audit/routine", s.authed(s.routineIndex))
	mux.Handle("GET /audit/routine/{org}/{team}/{period}", s.authed(s.samplePage))
	mux.Handle("POST /audit/routine/{org}/{team}/{period}", s.authed(s.review))
	mux.Handle("GET /evidence", s.authed(s.exportForm))
	mux.Handle("POST /evidence", s.authed(s.export))
	mux.Handle("GET /evidence/jobs/{id}", s.authed(s.exportJob))
	mux.Handle("GET /evidence/jobs/{id}/download", s.authed(s.exportDownload))
	// Any other address: the not-found page, in the layout (signed in or
	// not), never the mux's plain text; it echoes nothing of the path.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var ss *session
		if c, err := r.Cookie(s.cookie); err == nil {
			ss, _ = s.sessions.get(c.Value)
		}
		s.notFound(w, r, ss)
	})
	s.mux = mux

	// Go's cross-origin protection refuses unsafe cross-site requests by
	// Sec-Fetch-Site/Origin before any handler runs; the synchronizer token
	// (checked in authed and loginSubmit) is the second, independent layer.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.m.csrfRejected.Inc()
		s.errorPage(w, r, nil, http.StatusForbidden, errorData{Heading: "Request refused",
			Message: "The form was sent from another site. Nothing was changed."})
	}))
	s.handler = s.securityHeaders(cop.Handler(s.instrument(mux)))
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// csp allows scripts, styles, fonts and images from this origin only: no
// inline script or style anywhere (the heatmap SVG uses attributes, not
// style), no framing, forms post only here.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func (s *Server) securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if s.secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") && !strings.HasPrefix(r.URL.Path, "/assets/") {
			hd.Set("Cache-Control", "no-store") // pages hold personal data: keep them out of caches
		}
		if !canonicalPath(r.URL.Path) {
			// ServeMux would redirect to the cleaned path, echoing it; the
			// not-found page says nothing of it and no page has such a link.
			s.notFound(w, r, nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type authedHandler func(w http.ResponseWriter, r *http.Request, ss *session)

// authed runs h for a live session, checking the CSRF token on every
// state-changing request; without a session it redirects to the login page
// (and says nothing else).
func (s *Server) authed(h authedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookie)
		var ss *session
		if err == nil {
			ss, _ = s.sessions.get(c.Value)
		}
		if ss != nil {
			if why := s.accountChange(ss); why != "" {
				// The account changed since this login: sign in again.
				if s.sessions.delete(ss.id) {
					s.m.sessionsEnded.WithLabelValues(why).Inc()
					s.log.Info("web session ended", "reason", why)
				}
				ss = nil
			}
		}
		if ss == nil {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.errorPage(w, r, nil, http.StatusForbidden, errorData{Heading: "You are signed out",
					Message: "Your session ended before this was sent, so nothing was changed. Sign in and try again."})
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ss.csrf)) != 1 {
				s.m.csrfRejected.Inc()
				s.errorPage(w, r, ss, http.StatusForbidden, errorData{Heading: "Your page had expired",
					Message: "The form was too old, or came from another page, so nothing was changed. Go back, reload the page and try again."})
				return
			}
		}
		h(w, r, ss)
	})
}

func (s *Server) setSessionCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	})
}

func canonicalPath(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// clientIP is the client's address: the connection's, unless that is one
// of Options.TrustedProxies, in which case it is the right-most
// X-Forwarded-For entry that is not a trusted proxy (entries to its left
// are whatever the client chose to send). A malformed entry ends the walk
// at the last trusted hop. Without trusted proxies X-Forwarded-For is
// ignored: a client could forge it to escape the per-client throttle.
func (s *Server) clientIP(r *http.Request) string {
	a := parseHop(r.RemoteAddr)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	if !s.trustedProxy(a) {
		return a.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h := parseHop(strings.TrimSpace(hops[i]))
		if !h.IsValid() {
			break
		}
		a = h
		if !s.trustedProxy(h) {
			break
		}
	}
	return a.String()
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.o.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads an address with or without a port ("192.0.2.1",
// "192.0.2.1:443", "[2001:db8::1]:443"); invalid when it is neither.
func parseHop(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// throttleClient is the throttle's key for a client address: an IPv6
// client commonly holds a whole /64, so that is what is counted.
func throttleClient(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() {
		return addr
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
