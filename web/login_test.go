package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/web"
)

// loginStep is n login attempts, each through the handler with the given
// connection address and X-Forwarded-For ("%d" in either is the attempt's
// number), after advancing the clock by advance.
type loginStep struct {
	n          int
	remote     string
	xff        string
	user, pass string
	advance    time.Duration
	want       int
	retryMax   int // when > 0: Retry-After of a 429 is at most this many seconds
	retryMin   int // and at least this many
}

const wrong = "not the password at all"

// tryLogin posts the login form straight to the handler, so that the test
// chooses the connection's address.
func (f *fixture) tryLogin(t *testing.T, remote, xff, user, pass string) *httptest.ResponseRecorder {
	t.Helper()
	form := url.Values{"csrf": {"tok"}, "username": {user}, "password": {pass}}
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "dpiawatch_login", Value: "tok"})
	r.RemoteAddr = bracketed(remote) + ":40000"
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	w := httptest.NewRecorder()
	f.web.ServeHTTP(w, r)
	return w
}

func bracketed(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}

func spray(n int, remote, xff string, users []string, want int) []loginStep {
	var out []loginStep
	for _, u := range users {
		out = append(out, loginStep{n: n, remote: remote, xff: xff, user: u, pass: wrong, want: want})
	}
	return out
}

// TestLoginThrottleKeys: attempts are throttled per account from a client,
// per client and per account, so that one address's failures never lock
// out everybody, and X-Forwarded-For is believed only from trusted proxies.
func TestLoginThrottleKeys(t *testing.T) {
	five := []string{"ig", "mgr-a", "mgr-none", "dpo", "admin"}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name  string
		steps []loginStep
	}{
		{"an account's failures from one address do not block its right password from another", []loginStep{
			{n: 5, remote: "192.0.2.1", user: "ig", pass: wrong, want: 401},
			{n: 1, remote: "192.0.2.1", user: "ig", pass: password, want: 429, retryMax: 2},
			{n: 1, remote: "192.0.2.2", user: "ig", pass: password, want: 303},
		}},
		{"a client spraying accounts is slowed, other clients are not", append(spray(4, "192.0.2.1", "", five, 401),
			loginStep{n: 1, remote: "192.0.2.1", user: "other-org", pass: password, want: 429},
			loginStep{n: 1, remote: "192.0.2.2", user: "other-org", pass: password, want: 303},
		)},
		{"behind a trusted proxy each forwarded client has its own budget", append(spray(4, "10.0.0.1", "192.0.2.1", five, 401),
			loginStep{n: 1, remote: "10.0.0.1", xff: "192.0.2.1", user: "other-org", pass: password, want: 429},
			loginStep{n: 1, remote: "10.0.0.1", xff: "192.0.2.2", user: "other-org", pass: password, want: 303},
			loginStep{n: 1, remote: "10.0.0.1", xff: "192.0.2.3", user: "ig", pass: password, want: 303},
		)},
		{"X-Forwarded-For from an untrusted client is ignored", []loginStep{
			{n: 5, remote: "192.0.2.9", xff: "203.0.113.%d", user: "ig", pass: wrong, want: 401},
			{n: 1, remote: "192.0.2.9", xff: "203.0.113.200", user: "ig", pass: password, want: 429},
		}},
		{"entries the client wrote left of the proxy's are not believed", []loginStep{
			{n: 5, remote: "10.0.0.1", xff: "203.0.113.%d, 192.0.2.50", user: "ig", pass: wrong, want: 401},
			{n: 1, remote: "10.0.0.1", xff: "203.0.113.99, 192.0.2.50", user: "ig", pass: password, want: 429},
			{n: 1, remote: "10.0.0.1", xff: "192.0.2.51", user: "ig", pass: password, want: 303},
		}},
		{"the right-most address that is not a trusted proxy is the client", []loginStep{
			{n: 5, remote: "10.0.0.1", xff: "192.0.2.60, 10.0.0.2", user: "ig", pass: wrong, want: 401},
			{n: 1, remote: "10.0.0.1", xff: "192.0.2.60,10.9.9.9", user: "ig", pass: password, want: 429},
			{n: 1, remote: "10.0.0.1", xff: "192.0.2.61, 10.0.0.2", user: "ig", pass: password, want: 303},
		}},
		{"an IPv6 client is counted by its /64", []loginStep{
			{n: 5, remote: "2001:db8:1:2::%d", user: "ig", pass: wrong, want: 401},
			{n: 1, remote: "2001:db8:1:2::ffff", user: "ig", pass: password, want: 429},
			{n: 1, remote: "2001:db8:ffff::1", xff: "[2001:db8:1:3::1]:5555", user: "ig", pass: password, want: 303},
		}},
		{"a correct password is never locked out for more than a minute by guesses from everywhere", []loginStep{
			{n: 30, remote: "198.51.100.%d", user: "ig", pass: wrong, advance: 61 * time.Second, want: 401},
			{n: 1, remote: "192.0.2.70", user: "ig", pass: password, want: 429, retryMax: 61},
			{n: 1, remote: "192.0.2.70", user: "ig", pass: password, advance: 61 * time.Second, want: 303},
		}},
		{"the wait from one client is exponential and capped at 15 minutes", []loginStep{
			{n: 5, remote: "192.0.2.80", user: "ig", pass: wrong, want: 401},
			{n: 1, remote: "192.0.2.80", user: "ig", pass: wrong, advance: time.Second, want: 401},
			{n: 1, remote: "192.0.2.80", user: "ig", pass: password, advance: 1500 * time.Millisecond, want: 429, retryMax: 2},
			{n: 11, remote: "192.0.2.80", user: "ig", pass: wrong, advance: 16 * time.Minute, want: 401},
			// 17 failures would be 2^12 s; the wait is 15 minutes.
			{n: 1, remote: "192.0.2.80", user: "ig", pass: password, want: 429, retryMin: 15 * 60, retryMax: 15*60 + 1},
			{n: 1, remote: "192.0.2.80", user: "ig", pass: password, advance: 15 * time.Minute, want: 303},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{trustedProxies: proxies})
			for si, s := range tc.steps {
				for i := range s.n {
					f.now.Add(s.advance)
					sub := func(v string) string {
						if strings.Contains(v, "%d") {
							return fmt.Sprintf(v, i+1)
						}
						return v
					}
					w := f.tryLogin(t, sub(s.remote), sub(s.xff), s.user, s.pass)
					if w.Code != s.want {
						t.Fatalf("step %d attempt %d (%s via %s, %s): %d, want %d\n%s", si, i+1, s.user, sub(s.remote), sub(s.xff), w.Code, s.want, w.Body)
					}
					if w.Code == http.StatusTooManyRequests {
						ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
						if err != nil || ra < max(1, s.retryMin) || (s.retryMax > 0 && ra > s.retryMax) {
							t.Fatalf("step %d: Retry-After %q, want %d–%d", si, w.Header().Get("Retry-After"), max(1, s.retryMin), s.retryMax)
						}
					}
				}
			}
		})
	}
}

// floodClient fetches the login form's token for one parallel attempt.
func floodClient(t *testing.T, f *fixture) (*http.Client, string) {
	c := f.client(t)
	_, body := get(t, c, f.srv.URL+"/login")
	return c, csrfOf(t, body)
}

type floodResult struct {
	codes   map[int]int
	elapsed time.Duration
}

// flood sends n parallel logins over loopback, all released at once; xff
// and user may hold "%d", the attempt's number.
func flood(t *testing.T, f *fixture, n int, xff, user string) floodResult {
	t.Helper()
	type prepared struct {
		c    *http.Client
		csrf string
	}
	ps := make([]prepared, n)
	for i := range ps {
		ps[i].c, ps[i].csrf = floodClient(t, f)
	}
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i, p := range ps {
		wg.Go(func() {
			form := url.Values{"csrf": {p.csrf}, "username": {strings.ReplaceAll(user, "%d", strconv.Itoa(i))}, "password": {wrong}}
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if xff != "" {
				req.Header.Set("X-Forwarded-For", strings.ReplaceAll(xff, "%d", strconv.Itoa(i)))
			}
			<-start
			resp, err := p.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return floodResult{codes: codes, elapsed: time.Since(t0)}
}

// countVerify counts password verifications and the most running at once;
// slow makes each take at least that long, so that they overlap.
type countVerify struct {
	calls, inFlight, most atomic.Int64
}

func (cv *countVerify) wrap(slow time.Duration, fake bool) func(next func(string, string) (web.Account, bool)) func(string, string) (web.Account, bool) {
	return func(next func(string, string) (web.Account, bool)) func(string, string) (web.Account, bool) {
		return func(u, p string) (web.Account, bool) {
			cv.calls.Add(1)
			n := cv.inFlight.Add(1)
			defer cv.inFlight.Add(-1)
			for {
				m := cv.most.Load()
				if n <= m || cv.most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(slow) // a slow password check: the behaviour under test, not a wait
			if fake {
				return web.Account{}, false
			}
			return next(u, p)
		}
	}
}

// TestLoginFlood: parallel wrong logins over loopback never run more than
// two password hashes at once, are counted before hashing, get 429 with
// Retry-After rather than queueing, and keep memory flat.
func TestLoginFlood(t *testing.T) {
	t.Run("one username from one client", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{})
		var cv countVerify
		web.WrapVerify(f.web, cv.wrap(30*time.Millisecond, false))
		r := flood(t, f, 32, "", "ig")
		t.Logf("codes %v in %s; %d verifications, at most %d at once", r.codes, r.elapsed, cv.calls.Load(), cv.most.Load())
		if m := cv.most.Load(); m > 2 {
			t.Errorf("%d password hashes at once, want at most 2", m)
		}
		if c := cv.calls.Load(); c > 5 {
			t.Errorf("%d passwords hashed, want at most the 5 the budget allows", c)
		}
		if r.codes[http.StatusUnauthorized] > 5 || r.codes[http.StatusTooManyRequests] < 27 || r.codes[http.StatusUnauthorized]+r.codes[http.StatusTooManyRequests] != 32 {
			t.Errorf("codes %v: want at most 5 × 401 and the rest 429", r.codes)
		}
		if r.elapsed > 5*time.Second {
			t.Errorf("took %s", r.elapsed)
		}
	})
	t.Run("many usernames from many clients", func(t *testing.T) {
		// Nothing the throttle counts repeats: only the bound on hashing
		// stands between the flood and memory.
		f := newFixture(t, fixtureOpts{trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		var cv countVerify
		web.WrapVerify(f.web, cv.wrap(100*time.Millisecond, true))
		r := flood(t, f, 32, "198.51.100.%d", "nobody-%d")
		t.Logf("codes %v in %s; %d verifications, at most %d at once", r.codes, r.elapsed, cv.calls.Load(), cv.most.Load())
		if m := cv.most.Load(); m > 2 {
			t.Errorf("%d password hashes at once, want at most 2", m)
		}
		if r.codes[http.StatusTooManyRequests] < 32-2-8 || r.codes[http.StatusUnauthorized]+r.codes[http.StatusTooManyRequests] != 32 {
			t.Errorf("codes %v: want at least 22 × 429 (2 hashing, at most 8 waiting), the rest 401", r.codes)
		}
		if r.elapsed > 5*time.Second {
			t.Errorf("took %s", r.elapsed)
		}
	})
	t.Run("memory stays flat", func(t *testing.T) {
		// An account hashed with 16 MiB: 32 parallel hashes would hold
		// 512 MiB; two at a time hold 32 MiB.
		heavy, err := web.HashPassword(password, web.PasswordParams{Memory: 16 << 10, Time: 1, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, fixtureOpts{
			trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			accounts:       []web.Account{{Username: "heavy", Role: web.RoleIGTeam, Password: heavy}},
		})
		defer debug.SetGCPercent(debug.SetGCPercent(20))
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Go(func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		})
		r := flood(t, f, 32, "198.51.100.%d", "heavy")
		close(stop)
		sampler.Wait()
		grew := int64(peak.Load()) - int64(base.HeapInuse)
		t.Logf("codes %v in %s; heap in use grew by at most %d MiB", r.codes, r.elapsed, grew>>20)
		if grew > 128<<20 {
			t.Errorf("heap in use grew by %d MiB under 32 parallel logins, want under 128 MiB", grew>>20)
		}
		if r.codes[http.StatusTooManyRequests] == 0 {
			t.Errorf("codes %v: no 429", r.codes)
		}
	})
}
