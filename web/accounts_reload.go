package web

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"
)

// missingAccountsFile stands for the content of an accounts file that does
// not exist: while it stays missing, nothing changes.
var missingAccountsFile = sha256.Sum256([]byte("missing\x00"))

// readAccountsFile reads and parses the accounts file, returning also the
// digest of its content. A missing or empty file is an empty set when
// missingOK (the first load: `dpiawatch user add` creates it) and an error
// otherwise: a file that vanishes or empties under a running service is more
// likely an unmounted volume or a write caught half-way than a wish to lock
// everyone out (`users: []` does that).
func readAccountsFile(path string, missingOK bool) (*Accounts, [32]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if missingOK {
			a, err := ParseAccounts(nil)
			return a, missingAccountsFile, err
		}
		return nil, missingAccountsFile, fmt.Errorf("web: accounts file: %w", err)
	}
	if err != nil {
		return nil, sha256.Sum256([]byte("unreadable\x00" + err.Error())), fmt.Errorf("web: accounts file: %w", err)
	}
	sum := sha256.Sum256(b)
	a, err := parseAccounts(b)
	switch {
	case errors.Is(err, errNoDocument) && missingOK:
		return a, sum, nil
	case errors.Is(err, errNoDocument):
		// Most likely a file caught being rewritten in place: locking
		// everyone out takes `users: []`.
		return nil, sum, fmt.Errorf("web: accounts file %s: %w (write `users: []` to remove every account)", path, err)
	case err != nil:
		return nil, sum, fmt.Errorf("web: accounts file %s: %w", path, err)
	}
	return a, sum, nil
}

// Run looks at Options.AccountsFile every Options.AccountsReloadInterval,
// reloading it when its content changed (and then held still for one
// interval), and removes expired evidence export jobs, until ctx ends;
// then it ends the running exports and deletes every job's files (Close).
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	sweep := time.NewTicker(exportJobSweepEvery)
	defer sweep.Stop()
	var reload <-chan time.Time
	if s.o.AccountsFile != "" {
		t := time.NewTicker(s.o.AccountsReloadInterval)
		defer t.Stop()
		reload = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload:
			_ = s.ReloadAccounts() // logged and counted there
		case <-sweep.C:
			s.exports.sweep()
		}
	}
}

// Close ends the evidence exports still running, waits for them and
// deletes every export job's files; later exports are refused. Run calls
// it when it returns.
func (s *Server) Close() { s.exports.stop() }

// ReloadAccounts reads Options.AccountsFile and, when its content changed
// since it was last taken and is the same as at the previous call, puts the
// new accounts in force: new logins use
// them at once, and every session of a local account that is now removed,
// disabled, or has another password hash, role, orgs or teams is ended —
// the safer choice over carrying a demoted session on with its new role.
// A file that cannot be read or parsed changes nothing: the previous
// accounts stay in force, with an error logged and counted
// (dpiawatch_web_accounts_loads_total{outcome="failure"}) once per content.
func (s *Server) ReloadAccounts() error {
	if s.o.AccountsFile == "" {
		return nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	next, sum, err := readAccountsFile(s.o.AccountsFile, false)
	if sum == s.accountsSum { // the same content (or the same failure) is judged once
		s.accountsSeen = sum
		return nil
	}
	if sum != s.accountsSeen {
		// New content is taken once it is the same at two looks in a row:
		// a file written in place (not renamed) can be read empty or half
		// written, and half a file would end the sessions of everyone it
		// no longer lists.
		s.accountsSeen = sum
		return nil
	}
	s.accountsSum = sum
	if err != nil {
		s.m.accountsLoads.WithLabelValues("failure").Inc()
		s.log.Error("web accounts reload failed; keeping the previous accounts", "file", s.o.AccountsFile, "err", err)
		return err
	}
	s.o.Accounts.replace(next)
	ended := s.sessions.endWhere(s.accountChange)
	n := 0
	for why, c := range ended {
		s.m.sessionsEnded.WithLabelValues(why).Add(float64(c))
		n += c
	}
	s.m.accountsLoads.WithLabelValues("success").Inc()
	s.m.accountsLoaded.SetToCurrentTime()
	s.log.Info("web accounts reloaded", "file", s.o.AccountsFile, "accounts", next.Len(), "sessions_ended", n)
	return nil
}

// accountChange says why the local account ss signed in with no longer
// grants it ("" when it still does, and for single sign-on sessions).
func (s *Server) accountChange(ss *session) string {
	if ss.p.Method != "local" || s.o.Accounts == nil {
		return ""
	}
	a, ok := s.o.Accounts.Lookup(ss.p.User)
	switch {
	case !ok:
		return sessionEndRemoved
	case a.Disabled:
		return sessionEndDisabled
	case a.stamp() != ss.stamp:
		return sessionEndChanged
	}
	return ""
}
