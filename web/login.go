package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// loginCookie carries the login form's CSRF token (double submit: before
// login there is no session to hold it).
func (s *Server) loginCookie() string {
	if s.secure {
		return "__Host-dpiawatch_login"
	}
	return "dpiawatch_login"
}

func (s *Server) setLoginCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.loginCookie(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	})
}

type loginData struct {
	page
	Local    bool
	OIDC     bool
	Username string
	Error    string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, "", "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, username, msg string) {
	token := randomToken()
	s.setLoginCookie(w, token, 600)
	d := loginData{page: page{Title: "Sign in", CSRF: token}, Local: s.o.Accounts != nil, OIDC: s.oidc != nil, Username: username, Error: msg}
	s.render(w, r, code, "login", d)
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, err := r.Cookie(s.loginCookie())
	form := r.PostFormValue("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		s.m.csrfRejected.Inc()
		s.errorPage(w, r, nil, http.StatusForbidden, errorData{Heading: "Your sign-in page had expired",
			Message: "The sign-in form was too old, or came from another page. Nothing was sent: open the sign-in page and try again."})
		return
	}
	if s.o.Accounts == nil {
		s.errorPage(w, r, nil, http.StatusNotFound, errorData{Heading: "Local accounts are not enabled",
			Message: "Sign in with your organisation's account instead."})
		return
	}
	user, pass := r.PostFormValue("username"), r.PostFormValue("password")
	if user == "" || pass == "" || len(user) > 64 || len(pass) > 1024 {
		s.renderLogin(w, r, http.StatusBadRequest, "", "Enter your username and password")
		return
	}
	remote := s.clientIP(r)
	account, client := strings.ToLower(user), throttleClient(remote)
	keys := []throttleKey{
		{"p:" + account + "\x00" + client, pairLimit},
		{"c:" + client, clientLimit},
		{"a:" + account, accountLimit},
	}
	if wait := s.throttle.reserve(keys...); wait > 0 {
		s.tooMany(w, r, wait, fmt.Sprintf("Too many failed sign-in attempts. Try again in %s.", roundUp(wait)))
		return
	}
	acct, ok, busy := s.authenticate(r.Context(), user, pass)
	if busy {
		s.throttle.refund(keys...) // the password was not checked
		s.tooMany(w, r, time.Second, "Too many people are signing in at once. Try again in a few seconds.")
		return
	}
	if !ok {
		s.m.logins.WithLabelValues("local", loginFailure).Inc()
		s.log.Warn("web login failed", "method", "local", "remote", remote)
		s.renderLogin(w, r, http.StatusUnauthorized, "", "The username or password is not right")
		return
	}
	s.throttle.reset(keys[0], keys[2])
	s.throttle.refund(keys[1]) // an office's sign-ins do not use up its address's budget
	p := Principal{User: acct.Username, Role: acct.Role, Teams: acct.Teams, Method: "local"}
	if len(acct.Orgs) > 0 {
		p.Orgs = acct.Orgs
	}
	s.startSession(w, r, p, acct.stamp())
}

func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, msg string) {
	s.m.logins.WithLabelValues("local", loginThrottled).Inc()
	w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
	s.renderLogin(w, r, http.StatusTooManyRequests, "", msg)
}

// authenticate checks the password holding one of the hashing slots: each
// argon2id verification takes 64 MiB, so at most cap(s.hashSlots) run at
// once whatever arrives. A request that gets no slot within
// Options.LoginWait, or finds too many already waiting, is busy: it is not
// checked, and never queues without bound.
func (s *Server) authenticate(ctx context.Context, user, pass string) (acct Account, ok, busy bool) {
	if s.hashWaiters.Add(1) > int64(4*cap(s.hashSlots)) {
		s.hashWaiters.Add(-1)
		return Account{}, false, true
	}
	t := time.NewTimer(s.o.LoginWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		s.hashWaiters.Add(-1)
	case <-t.C:
		s.hashWaiters.Add(-1)
		return Account{}, false, true
	case <-ctx.Done():
		s.hashWaiters.Add(-1)
		return Account{}, false, true
	}
	defer func() { <-s.hashSlots }()
	acct, ok = s.verify(user, pass)
	return acct, ok, false
}

func roundUp(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(d.Seconds())+1)
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes())+1)
}

// startSession signs p in; stamp is a local account's Account.stamp.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, p Principal, stamp [32]byte) {
	if c, err := r.Cookie(s.cookie); err == nil {
		s.sessions.delete(c.Value) // never carry an old session across a login
	}
	ss := s.sessions.create(p, stamp)
	s.setSessionCookie(w, ss.id, 0)
	s.setLoginCookie(w, "", -1)
	s.m.logins.WithLabelValues(p.Method, loginSuccess).Inc()
	s.log.Info("web login", "method", p.Method, "role", p.Role)
	http.Redirect(w, r, "/overview", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	s.sessions.delete(ss.id)
	s.setSessionCookie(w, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// OIDCConfig configures login through an OpenID Connect provider.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string // default openid, profile, email
	RolesClaim   string   // default groups
	TeamsClaim   string   // default teams
	OrgsClaim    string   // default orgs
	OrgsDefault  []string
	// RoleMap maps a RolesClaim value to a role. When a user's values map
	// to several roles the first in Roles order wins.
	RoleMap map[string]string
	// HTTPClient reaches the provider; nil: http.DefaultClient.
	HTTPClient *http.Client
}

type oidcFlow struct {
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	now      func() time.Time
	// sealer encrypts a pending sign-in into the browser's cookie: the
	// server keeps nothing per sign-in, so anonymous starts cost it
	// nothing and can never crowd out a real one.
	sealer cipher.AEAD
}

// pendingLogin is a sign-in between its start and the provider's callback,
// held sealed in the browser's OIDC cookie.
type pendingLogin struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Expires  time.Time `json:"e"`
}

// pendingLoginTTL is how long a user has at the identity provider.
const pendingLoginTTL = 10 * time.Minute

func newOIDCFlow(ctx context.Context, cfg OIDCConfig, redirect string, now func() time.Time) (*oidcFlow, error) {
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("web: OIDC discovery: %w", err)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	for _, c := range []*string{&cfg.RolesClaim, &cfg.TeamsClaim, &cfg.OrgsClaim} {
		if *c == "" {
			*c = map[*string]string{&cfg.RolesClaim: "groups", &cfg.TeamsClaim: "teams", &cfg.OrgsClaim: "orgs"}[c]
		}
	}
	return &oidcFlow{
		cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: redirect, Scopes: cfg.Scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: now}),
		now:      now,
		sealer:   newSealer(),
	}, nil
}

// newSealer returns AES-256-GCM under a key made for this process: a
// sign-in started before a restart has to start again, as sessions do.
func newSealer() cipher.AEAD {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("web: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("web: " + err.Error()) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("web: " + err.Error())
	}
	return aead
}

// seal encrypts and authenticates pl, binding it to the cookie's name.
func (f *oidcFlow) seal(pl pendingLogin, name string) string {
	b, _ := json.Marshal(pl) // strings and a time: cannot fail
	nonce := make([]byte, f.sealer.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("web: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(f.sealer.Seal(nonce, nonce, b, []byte(name)))
}

// open reverses seal; false for anything this process did not seal.
func (f *oidcFlow) open(value, name string) (pendingLogin, bool) {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < f.sealer.NonceSize() {
		return pendingLogin{}, false
	}
	n := f.sealer.NonceSize()
	plain, err := f.sealer.Open(nil, b[:n], b[n:], []byte(name))
	if err != nil {
		return pendingLogin{}, false
	}
	var pl pendingLogin
	if err := json.Unmarshal(plain, &pl); err != nil {
		return pendingLogin{}, false
	}
	return pl, true
}

func (f *oidcFlow) ctx(ctx context.Context) context.Context {
	if f.cfg.HTTPClient != nil {
		return oidc.ClientContext(ctx, f.cfg.HTTPClient)
	}
	return ctx
}

// oidcCookie carries the pending OIDC sign-in (state, nonce and PKCE
// verifier, sealed): its own cookie, so that opening the login page in
// another tab does not break a sign-in under way.
func (s *Server) oidcCookie() string {
	if s.secure {
		return "__Host-dpiawatch_oidc"
	}
	return "dpiawatch_oidc"
}

func (s *Server) setOIDCCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.oidcCookie(), Value: value, Path: "/", MaxAge: maxAge,
		// Lax: the provider's redirect back is a top-level GET, which
		// carries it; a cross-site POST or subresource does not.
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	})
}

// oidcLogin starts the authorisation code flow with PKCE. The state, nonce
// and verifier live only in this browser's sealed cookie, so a callback
// carrying someone else's code (login CSRF) fails, and the server holds
// nothing an anonymous client could fill.
func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		http.NotFound(w, r)
		return
	}
	f := s.oidc
	pl := pendingLogin{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Expires: f.now().Add(pendingLoginTTL)}
	s.setOIDCCookie(w, f.seal(pl, s.oidcCookie()), int(pendingLoginTTL.Seconds()))
	http.Redirect(w, r, f.oauth.AuthCodeURL(pl.State, oidc.Nonce(pl.Nonce), oauth2.S256ChallengeOption(pl.Verifier)), http.StatusFound)
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		http.NotFound(w, r)
		return
	}
	f := s.oidc
	state := r.URL.Query().Get("state")
	var (
		pl pendingLogin
		ok bool
	)
	if c, err := r.Cookie(s.oidcCookie()); err == nil {
		pl, ok = f.open(c.Value, s.oidcCookie())
	}
	s.setOIDCCookie(w, "", -1) // single use, whatever happens next
	if state == "" || !ok || subtle.ConstantTimeCompare([]byte(pl.State), []byte(state)) != 1 {
		s.m.logins.WithLabelValues("oidc", loginFailure).Inc()
		s.errorPage(w, r, nil, http.StatusBadRequest, errorData{Heading: "Sign-in failed",
			Message: "This sign-in was not started in this browser. Start again from the sign-in page."})
		return
	}
	if f.now().After(pl.Expires) {
		s.m.logins.WithLabelValues("oidc", loginFailure).Inc()
		s.errorPage(w, r, nil, http.StatusBadRequest, errorData{Heading: "Sign-in failed",
			Message: "The sign-in expired before it finished. Start again from the sign-in page."})
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		s.m.logins.WithLabelValues("oidc", loginFailure).Inc()
		s.errorPage(w, r, nil, http.StatusForbidden, errorData{Heading: "Sign-in was refused",
			Message: "Your organisation's identity provider refused the sign-in."})
		return
	}
	p, err := f.exchange(r.Context(), r.URL.Query().Get("code"), pl)
	if err != nil {
		s.m.logins.WithLabelValues("oidc", loginFailure).Inc()
		s.log.Warn("web login failed", "method", "oidc", "err", err)
		s.errorPage(w, r, nil, http.StatusForbidden, errorData{Heading: "Sign-in failed",
			Message: "Your account has no dpiawatch role, or the identity provider's answer was not valid. Ask your administrator for access."})
		return
	}
	s.startSession(w, r, p, [32]byte{})
}

var errNoRole = errors.New("no role maps from the token's claims")

func (f *oidcFlow) exchange(ctx context.Context, code string, pl pendingLogin) (Principal, error) {
	ctx, cancel := context.WithTimeout(f.ctx(ctx), 15*time.Second)
	defer cancel()
	tok, err := f.oauth.Exchange(ctx, code, oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		return Principal{}, fmt.Errorf("code exchange: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return Principal{}, errors.New("no id_token in the token response")
	}
	idt, err := f.verifier.Verify(ctx, raw)
	if err != nil {
		return Principal{}, fmt.Errorf("id token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pl.Nonce)) != 1 {
		return Principal{}, errors.New("id token: nonce mismatch")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("id token claims: %w", err)
	}
	p := Principal{Method: "oidc", User: idt.Subject}
	for _, k := range []string{"email", "preferred_username"} {
		if v, ok := claims[k].(string); ok && v != "" {
			p.User = v
			break
		}
	}
	mapped := map[string]bool{}
	for _, g := range claimStrings(claims[f.cfg.RolesClaim]) {
		if r, ok := f.cfg.RoleMap[g]; ok {
			mapped[r] = true
		}
	}
	for _, r := range Roles {
		if mapped[r] {
			p.Role = r
			break
		}
	}
	if p.Role == "" {
		return Principal{}, errNoRole
	}
	p.Teams = claimStrings(claims[f.cfg.TeamsClaim])
	if orgs := claimStrings(claims[f.cfg.OrgsClaim]); len(orgs) > 0 {
		p.Orgs = orgs
	} else if len(f.cfg.OrgsDefault) > 0 {
		p.Orgs = f.cfg.OrgsDefault
	}
	return p, nil
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
