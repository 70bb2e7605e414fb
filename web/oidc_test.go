package web_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dpiawatch/dpiawatch/web"
)

// provider is a tiny OpenID Connect provider on loopback: discovery, JWKS,
// an authorisation endpoint that signs in whoever the test chose, and a
// token endpoint that checks the client secret and PKCE.
type provider struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	signer jose.Signer

	mu     sync.Mutex
	codes  map[string]grant
	groups []string // claims of the next sign-in
	teams  []string
	nonce  string // overrides the nonce when set (a replayed token)
}

type grant struct{ nonce, challenge string }

func newProvider(t *testing.T) *provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{key: key, codes: map[string]grant{}}
	p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize", "token_endpoint": p.srv.URL + "/token",
			"jwks_uri": p.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "dpiawatch" || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
			http.Error(w, "bad authorize request", http.StatusBadRequest)
			return
		}
		code := strings.Repeat("c", 8) + q.Get("state")[:8]
		p.mu.Lock()
		p.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		if id != "dpiawatch" || secret != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		p.mu.Lock()
		g, ok := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		groups, teams, nonce := p.groups, p.teams, p.nonce
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		if nonce == "" {
			nonce = g.nonce
		}
		now := t0.Add(2 * time.Hour)
		tok, err := jwt.Signed(p.signer).Claims(jwt.Claims{Issuer: p.srv.URL, Subject: "idp-123", Audience: jwt.Audience{"dpiawatch"},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}).
			Claims(map[string]any{"nonce": nonce, "email": "ig.officer@example.org", "groups": groups, "teams": teams}).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": tok})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func TestOIDCLogin(t *testing.T) {
	p := newProvider(t)
	f := newFixture(t, fixtureOpts{oidc: &web.OIDCConfig{
		Issuer: p.srv.URL, ClientID: "dpiawatch", ClientSecret: "s3cret",
		RoleMap: map[string]string{"IG Team": web.RoleIGTeam, "Managers": web.RoleManager},
	}})
	signIn := func(groups, teams []string) (*http.Client, *http.Response, string) {
		p.mu.Lock()
		p.groups, p.teams = groups, teams
		p.mu.Unlock()
		c := f.client(t)
		c.CheckRedirect = nil // follow: app → provider → callback → overview
		resp, body := get(t, c, f.srv.URL+"/auth/oidc/login")
		return c, resp, body
	}

	_, resp, body := signIn([]string{"Everyone", "IG Team"}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "ig.officer@example.org") || !strings.Contains(body, "(ig-team") {
		t.Fatalf("ig-team sign-in: %s\n%s", resp.Status, body)
	}

	c, resp, body := signIn([]string{"Managers"}, []string{teamA})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "(manager: "+teamA) {
		t.Fatalf("manager sign-in: %s", resp.Status)
	}
	_, body = get(t, c, f.srv.URL+"/alerts")
	if !strings.Contains(body, alertA) || strings.Contains(body, alertB) {
		t.Error("an OIDC manager is not scoped to their team")
	}

	_, resp, body = signIn([]string{"Everyone"}, nil)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, alertA) {
		t.Errorf("no mapped group: %s", resp.Status)
	}

	// A token whose nonce is not this sign-in's is refused.
	p.mu.Lock()
	p.nonce = "replayed"
	p.mu.Unlock()
	_, resp, _ = signIn([]string{"IG Team"}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong nonce: %s", resp.Status)
	}
	p.mu.Lock()
	p.nonce = ""
	p.mu.Unlock()

	// A callback this browser did not start (login CSRF) is refused.
	c2 := f.client(t)
	resp, _ = get(t, c2, f.srv.URL+"/auth/oidc/callback?code=cccccccc12345678&state=12345678abcdef")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("foreign callback: %s", resp.Status)
	}
	if got := f.metric(t, "dpiawatch_web_logins_total"); got != 5 {
		t.Errorf("logins counted %v, want 5", got)
	}
}

// TestOIDCLoginFlood (issue 16, item 2): anonymous starts of an OIDC
// sign-in cost the server nothing, so a flood of them never refuses a real
// sign-in, and the server's memory does not grow with them.
func TestOIDCLoginFlood(t *testing.T) {
	p := newProvider(t)
	f := newFixture(t, fixtureOpts{oidc: &web.OIDCConfig{
		Issuer: p.srv.URL, ClientID: "dpiawatch", ClientSecret: "s3cret",
		RoleMap: map[string]string{"IG Team": web.RoleIGTeam},
	}})
	p.mu.Lock()
	p.groups = []string{"IG Team"}
	p.mu.Unlock()

	// A real sign-in starts before the flood and finishes after it.
	early := f.client(t)
	resp, err := early.Get(f.srv.URL + "/auth/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("start a sign-in: %s", resp.Status)
	}
	toProvider := resp.Header.Get("Location")

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	const flood = 20_000
	codes := map[int]int{}
	for i := range flood {
		r := httptest.NewRequest(http.MethodGet, "/auth/oidc/login", nil)
		r.RemoteAddr = "192.0.2.66:4000"
		w := httptest.NewRecorder()
		f.web.ServeHTTP(w, r)
		codes[w.Code]++
		if i == 0 && len(w.Result().Cookies()) == 0 {
			t.Fatal("the sign-in start set no cookie")
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if codes[http.StatusFound] != flood {
		t.Errorf("flood answers %v, want %d × 302", codes, flood)
	}
	// Each pending sign-in held on the server would take some hundreds of
	// bytes: 20,000 of them several MiB. A stateless start holds none.
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 1<<20 {
		t.Errorf("the heap grew by %d bytes over %d sign-in starts", grew, flood)
	}

	// The sign-in started before the flood still completes.
	early.CheckRedirect = nil
	resp, body := get(t, early, toProvider)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "(ig-team") {
		t.Fatalf("sign-in started before the flood: %s\n%s", resp.Status, body)
	}
	// So does one started after it.
	c := f.client(t)
	c.CheckRedirect = nil
	resp, body = get(t, c, f.srv.URL+"/auth/oidc/login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "(ig-team") {
		t.Fatalf("sign-in after the flood: %s\n%s", resp.Status, body)
	}

	// The cookie is the only state, so it must be the server's own, fresh,
	// and good once.
	start := func() (*http.Client, string) {
		c := f.client(t)
		resp, _ := get(t, c, f.srv.URL+"/auth/oidc/login")
		resp, _ = get(t, c, resp.Header.Get("Location")) // the provider answers with the callback
		return c, resp.Header.Get("Location")
	}
	c, callback := start()
	u, _ := url.Parse(f.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "dpiawatch_oidc" {
			flip := map[bool]string{true: "B", false: "A"}[ck.Value[0] == 'A']
			ck.Value = flip + ck.Value[1:] // tampered
			c.Jar.SetCookies(u, []*http.Cookie{ck})
		}
	}
	if resp, _ := get(t, c, callback); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a tampered sign-in cookie: %s", resp.Status)
	}
	c, callback = start()
	if resp, _ := get(t, c, callback); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %s", resp.Status)
	}
	if resp, _ := get(t, c, callback); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the same callback again: %s", resp.Status)
	}
	c, callback = start()
	f.now.Add(11 * time.Minute)
	if resp, body := get(t, c, callback); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired") {
		t.Errorf("a sign-in started 11 minutes ago: %s %s", resp.Status, body)
	}
}
