package web

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/argon2"
)

// Roles of the web UI.
const (
	RoleIGTeam  = "ig-team" // every alert, triage
	RoleManager = "manager" // their own teams' alerts and workers only, pseudonymous subjects
	RoleDPO     = "dpo"     // everything, read only, the view log, export
	RoleAdmin   = "admin"   // runs the service: overview and queue, pseudonymous subjects
)

// Roles lists every role.
var Roles = []string{RoleIGTeam, RoleManager, RoleDPO, RoleAdmin}

// Account is one local account as stored in the accounts file.
type Account struct {
	Username string   `yaml:"username"`
	Role     string   `yaml:"role"`
	Orgs     []string `yaml:"orgs,omitempty"`  // empty: every org
	Teams    []string `yaml:"teams,omitempty"` // a manager's teams
	Password string   `yaml:"password"`        // argon2id PHC string, never the password
	// Disabled refuses the account's logins and ends its sessions, keeping
	// it in the file (`dpiawatch user disable`/`enable`).
	Disabled bool `yaml:"disabled,omitempty"`
}

// stamp summarises what a session of a is granted by: a session started
// under one stamp ends when the account's changes (see Server.accountChange).
func (a Account) stamp() [32]byte {
	h := sha256.New()
	for _, f := range [][]string{{a.Password, a.Role}, a.Orgs, a.Teams} {
		for _, v := range f {
			fmt.Fprintf(h, "%d:%s,", len(v), v)
		}
		h.Write([]byte{0})
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

type accountsFile struct {
	Users []Account `yaml:"users"`
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Validate reports what is wrong with a.
func (a Account) Validate() error {
	switch {
	case !usernamePattern.MatchString(a.Username):
		return fmt.Errorf("username %q: use 1–64 letters, digits, '.', '_', '@' or '-'", a.Username)
	case !slices.Contains(Roles, a.Role):
		return fmt.Errorf("user %s: unknown role %q (%s)", a.Username, a.Role, strings.Join(Roles, ", "))
	case a.Role == RoleManager && len(a.Teams) == 0:
		return fmt.Errorf("user %s: a manager needs at least one team", a.Username)
	case !strings.HasPrefix(a.Password, "$argon2id$"):
		return fmt.Errorf("user %s: password is not an argon2id hash", a.Username)
	}
	return nil
}

// Accounts is the set of local accounts, loaded from a YAML file.
type Accounts struct {
	mu    sync.RWMutex
	users map[string]Account
}

// LoadAccounts reads the accounts file at path strictly. A missing file is
// an empty set (so that `dpiawatch user add` can create it).
func LoadAccounts(path string) (*Accounts, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Accounts{users: map[string]Account{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("web: accounts: %w", err)
	}
	return ParseAccounts(b)
}

// ParseAccounts decodes an accounts file.
func ParseAccounts(b []byte) (*Accounts, error) {
	a, err := parseAccounts(b)
	if err != nil && !errors.Is(err, errNoDocument) {
		return nil, fmt.Errorf("web: accounts: %w", err)
	}
	return a, nil
}

// errNoDocument is parseAccounts' error for a file with nothing in it.
var errNoDocument = errors.New("the file is empty")

// parseAccounts decodes an accounts file; one with no YAML document at all
// (empty, or only comments) gives an empty set and errNoDocument.
func parseAccounts(b []byte) (*Accounts, error) {
	var f accountsFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); errors.Is(err, io.EOF) {
		return &Accounts{users: map[string]Account{}}, errNoDocument
	} else if err != nil {
		return nil, err
	}
	a := &Accounts{users: map[string]Account{}}
	for _, u := range f.Users {
		if err := u.Validate(); err != nil {
			return nil, err
		}
		key := strings.ToLower(u.Username)
		if _, dup := a.users[key]; dup {
			return nil, fmt.Errorf("user %s appears twice", u.Username)
		}
		a.users[key] = u
	}
	return a, nil
}

// ErrNoAccount is returned for a username the accounts do not hold.
var ErrNoAccount = errors.New("no such account")

// Remove deletes the account username.
func (a *Accounts) Remove(username string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := strings.ToLower(username)
	if _, ok := a.users[key]; !ok {
		return fmt.Errorf("%w: %s", ErrNoAccount, username)
	}
	delete(a.users, key)
	return nil
}

// SetDisabled disables or enables the account username.
func (a *Accounts) SetDisabled(username string, disabled bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := strings.ToLower(username)
	u, ok := a.users[key]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoAccount, username)
	}
	u.Disabled = disabled
	a.users[key] = u
	return nil
}

// Lookup returns the account username as it is now.
func (a *Accounts) Lookup(username string) (Account, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	u, ok := a.users[strings.ToLower(username)]
	return u, ok
}

// replace puts next's accounts in force in place of a's: whoever holds a
// (the login handler) sees them at once.
func (a *Accounts) replace(next *Accounts) {
	next.mu.RLock()
	users := next.users
	next.mu.RUnlock()
	a.mu.Lock()
	a.users = users
	a.mu.Unlock()
}

// Put adds or replaces an account.
func (a *Accounts) Put(u Account) error {
	if err := u.Validate(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users[strings.ToLower(u.Username)] = u
	return nil
}

// Len is the number of accounts.
func (a *Accounts) Len() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.users)
}

// Save writes the accounts to path atomically (temporary file, then rename)
// with mode 0600: it holds password hashes.
func (a *Accounts) Save(path string) error {
	a.mu.RLock()
	f := accountsFile{}
	for _, u := range a.users {
		f.Users = append(f.Users, u)
	}
	a.mu.RUnlock()
	slices.SortFunc(f.Users, func(x, y Account) int { return strings.Compare(x.Username, y.Username) })
	b, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("web: accounts: %w", err)
	}
	b = append([]byte("# dpiawatch web accounts: argon2id password hashes. Edit with `dpiawatch user add`, `remove`, `disable` and `enable`.\n"), b...)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".accounts-*")
	if err != nil {
		return fmt.Errorf("web: accounts: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("web: accounts: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("web: accounts: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("web: accounts: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("web: accounts: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("web: accounts: %w", err)
	}
	return nil
}

// dummyHash is verified against when the username is unknown, so that a
// wrong username costs as long as a wrong password and does not reveal
// which accounts exist.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("not a password", DefaultPasswordParams)
	return h
})

// Authenticate returns the account when username and password match and
// the account is not disabled. A disabled account's password is checked all
// the same, so that the answer takes as long and says nothing more.
func (a *Accounts) Authenticate(username, password string) (Account, bool) {
	u, ok := a.Lookup(username)
	if !ok {
		_, _ = VerifyPassword(dummyHash(), password)
		return Account{}, false
	}
	match, err := VerifyPassword(u.Password, password)
	if err != nil || !match || u.Disabled {
		return Account{}, false
	}
	return u, true
}

// PasswordParams are argon2id's cost parameters.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultPasswordParams follow RFC 9106's second recommended option
// (64 MiB, three passes), with two lanes for small servers.
var DefaultPasswordParams = PasswordParams{Memory: 64 * 1024, Time: 3, Threads: 2}

// MinPasswordLen is the shortest password HashPassword accepts (NCSC advice:
// length over complexity rules).
const MinPasswordLen = 12

var b64 = base64.RawStdEncoding

// HashPassword returns an argon2id hash of password in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), with a random 16-byte salt.
func HashPassword(password string, p PasswordParams) (string, error) {
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("password too short: at least %d characters", MinPasswordLen)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC-format hash, in
// constant time.
func VerifyPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("unsupported argon2 version")
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, errors.New("bad argon2id parameters")
	}
	if p.Memory > 1<<22 || p.Time > 64 || p.Threads == 0 {
		return false, errors.New("argon2id parameters out of range") // a hostile file must not exhaust memory
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("bad argon2id salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, errors.New("bad argon2id hash")
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
