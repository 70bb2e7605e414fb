package web

import (
	"math"
	"sync"
	"time"
)

// Login throttling. Every attempt at a password is counted before it is
// hashed, against three keys, each with its own budget of free failures
// within throttleWindow; past the budget each further attempt must wait
// throttleBase·2^(n−free), capped:
//
//   - the account from this client (pairLimit): one client guessing one
//     account gets 5 tries, then 1 s, 2 s, 4 s … up to 15 minutes;
//   - the client, whatever the account (clientLimit): one client spraying a
//     password over many accounts gets 20. Behind a reverse proxy the client
//     is the forwarded address, but only from Options.TrustedProxies;
//   - the account, whatever the client (accountLimit): guesses spread over
//     many addresses get 10, then waits capped at one minute.
//
// The trade-off: the account-wide key is the only one an attacker can fill
// from elsewhere, so it alone could keep the right password out; capping
// its wait at a minute means the owner is never refused for more than a
// minute at a time (from their own address, their pair and client keys are
// clean), at the price of letting an attacker with many addresses try about
// 60 passwords an hour against one account — against argon2id hashes of
// passwords of 12 or more characters. A per-client lockout never blocks an
// account's correct password from another client, and every wait ends.
const (
	throttleBase   = time.Second
	throttleWindow = time.Hour // failures are forgotten this long after the last
)

type limit struct {
	free int           // failures within the window before waits begin
	max  time.Duration // the longest wait
}

var (
	pairLimit    = limit{free: 5, max: 15 * time.Minute}
	clientLimit  = limit{free: 20, max: 15 * time.Minute}
	accountLimit = limit{free: 10, max: time.Minute}
)

// throttleKey is one key an attempt is counted against, with its limit.
type throttleKey struct {
	key string
	lim limit
}

type throttle struct {
	mu     sync.Mutex
	m      map[string]*failures
	base   time.Duration
	window time.Duration
	now    func() time.Time
}

type failures struct {
	n    int // attempts counted and not yet forgiven
	last time.Time
}

func newThrottle(base, window time.Duration, now func() time.Time) *throttle {
	return &throttle{m: map[string]*failures{}, base: base, window: window, now: now}
}

// waitLocked is how long key must still wait before its next attempt.
func (t *throttle) waitLocked(k throttleKey, now time.Time) time.Duration {
	f, ok := t.m[k.key]
	if !ok {
		return 0
	}
	if now.Sub(f.last) >= t.window {
		delete(t.m, k.key)
		return 0
	}
	if f.n < k.lim.free {
		return 0
	}
	d := t.base * time.Duration(math.Pow(2, float64(min(f.n-k.lim.free, 20))))
	d = min(d, k.lim.max)
	return max(f.last.Add(d).Sub(now), 0)
}

// reserve counts an attempt against every key at once, before the password
// is checked, so that parallel attempts cannot all pass a check made before
// any of them failed. When a key must still wait it counts nothing and
// returns the longest wait.
func (t *throttle) reserve(keys ...throttleKey) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range keys {
		wait = max(wait, t.waitLocked(k, now))
	}
	if wait > 0 {
		return wait
	}
	if len(t.m) > 100_000 { // bound memory under a spray of addresses
		for k, f := range t.m {
			if now.Sub(f.last) >= t.window {
				delete(t.m, k)
			}
		}
	}
	for _, k := range keys {
		f, ok := t.m[k.key]
		if !ok {
			f = &failures{}
			t.m[k.key] = f
		}
		f.n++
		f.last = now
	}
	return 0
}

// refund forgives one reserved attempt per key: the password was never
// checked (no hashing slot), or it was right and the key is the client's.
func (t *throttle) refund(keys ...throttleKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if f, ok := t.m[k.key]; ok {
			if f.n--; f.n <= 0 {
				delete(t.m, k.key)
			}
		}
	}
}

// reset forgets key's failures: the right password was given.
func (t *throttle) reset(keys ...throttleKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.m, k.key)
	}
}
