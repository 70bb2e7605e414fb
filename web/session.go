package web

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"sync"
	"time"
)

// Principal is who is logged in, and what they may see.
type Principal struct {
	User   string   // account name or the identity provider's e-mail/subject
	Role   string   // one of Roles
	Orgs   []string // nil: every org
	Teams  []string // managers only: their teams
	Method string   // local or oidc
}

// allOrgs reports whether p is limited to no org.
func (p Principal) allOrgs() bool { return p.Orgs == nil }

// scope returns the org and team scope of p's queries. A manager without
// teams gets an empty, non-nil list: they see nothing rather than everything.
func (p Principal) scope() (orgs, teams []string) {
	orgs = p.Orgs
	if p.Role == RoleManager {
		teams = p.Teams
		if teams == nil {
			teams = []string{}
		}
	}
	return orgs, teams
}

// canTriage, seesSubjects and so on are the role table of docs/web.md.
func (p Principal) canTriage() bool     { return p.Role == RoleIGTeam }
func (p Principal) seesSubjects() bool  { return p.Role == RoleIGTeam || p.Role == RoleDPO }
func (p Principal) seesViewLog() bool   { return p.Role == RoleDPO }
func (p Principal) canExport() bool     { return p.Role == RoleDPO }
func (p Principal) seesActorPage() bool { return p.Role != RoleAdmin }
func (p Principal) canNote() bool       { return p.Role == RoleManager }

// inScope reports whether an item of org and team is within p's scope.
func (p Principal) inScope(org, team string) bool {
	if !p.allOrgs() && !slices.Contains(p.Orgs, org) {
		return false
	}
	if p.Role == RoleManager {
		return team != "" && slices.Contains(p.Teams, team)
	}
	return true
}

// session is one login, held on the server; the browser holds only its
// random id.
type session struct {
	id       string
	csrf     string
	p        Principal
	stamp    [32]byte // a local account's Account.stamp at login
	created  time.Time
	lastSeen time.Time
}

// sessions is the server-side session store: in memory, so a restart logs
// everyone out (acceptable for a monitoring UI, and nothing to leak on disk).
type sessions struct {
	mu   sync.Mutex
	m    map[string]*session
	ttl  time.Duration // absolute
	idle time.Duration
	now  func() time.Time
}

func newSessions(ttl, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, ttl: ttl, idle: idle, now: now}
}

// randomToken returns 32 random bytes, URL-safe base64.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("web: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for p under a fresh id (never one the browser
// offered: no session fixation).
func (s *sessions) create(p Principal, stamp [32]byte) *session {
	now := s.now()
	ss := &session{id: randomToken(), csrf: randomToken(), p: p, stamp: stamp, created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	s.m[ss.id] = ss
	return ss
}

// get returns the live session with id and marks it used.
func (s *sessions) get(id string) (*session, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[id]
	if !ok {
		return nil, false
	}
	if s.expiredLocked(ss, now) {
		delete(s.m, id)
		return nil, false
	}
	ss.lastSeen = now
	c := *ss
	return &c, true
}

// delete ends the session id, reporting whether it was live.
func (s *sessions) delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	delete(s.m, id)
	return ok
}

// endWhere ends every session for which why gives a reason, and counts
// them by reason.
func (s *sessions) endWhere(why func(*session) string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ended := map[string]int{}
	for id, ss := range s.m {
		if r := why(ss); r != "" {
			delete(s.m, id)
			ended[r]++
		}
	}
	return ended
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	return len(s.m)
}

func (s *sessions) expiredLocked(ss *session, now time.Time) bool {
	return now.Sub(ss.created) >= s.ttl || now.Sub(ss.lastSeen) >= s.idle
}

func (s *sessions) sweepLocked(now time.Time) {
	for id, ss := range s.m {
		if s.expiredLocked(ss, now) {
			delete(s.m, id)
		}
	}
}
