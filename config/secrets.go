package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
)

// secretRef is one Secret written in the file, at its key path.
type secretRef struct {
	path string
	s    *Secret
}

// optionalSecrets turn a feature on only when they resolve (documented so):
// one that does not is a warning, not an error.
var optionalSecrets = map[string]string{
	"alerting.slack.token": "the built-in Slack receiver is off (it is on only when its token resolves)",
}

// secretGroupMode is the part of a file's mode that lets others than its
// owner read or change it.
const secretGroupMode = 0o077

// resolveSecrets reads every written secret as the daemon will, reporting
// each that would fail at its key, never with its value. API tokens must
// also differ from one another: a client is known only by its token.
func (v *Validator) resolveSecrets(c *Config) {
	apiTokens := map[[sha256.Size]byte]string{}
	for _, ref := range v.secrets {
		s := *ref.s
		if s.IsZero() || (s.Env != "" && s.File != "") || v.hasFailed(ref.path) {
			continue // nothing to read, or reported already
		}
		s.File = c.abs(s.File)
		value, err := v.readSecret(ref.path, s)
		if err != nil {
			if why, ok := optionalSecrets[ref.path]; ok {
				v.Warnf(ref.path, "%v: %s", err, why)
			} else {
				v.Errorf(ref.path, "%v", err)
			}
			continue
		}
		if ref.path == "alerting.api.token" || (strings.HasPrefix(ref.path, "alerting.api.clients[") && strings.HasSuffix(ref.path, "].token")) {
			sum := sha256.Sum256([]byte(value))
			if first, ok := apiTokens[sum]; ok {
				v.Errorf(ref.path, "%s gives the same token as %s: each API client needs a token of its own, or it cannot be told apart", s, first)
				continue
			}
			apiTokens[sum] = ref.path
		}
	}
}

// readSecret reads s as Secret.Resolve does, with messages that name the
// variable or file and why; a file others may read is warned about at path.
func (v *Validator) readSecret(path string, s Secret) (string, error) {
	if s.Env != "" {
		val, ok := os.LookupEnv(s.Env)
		switch {
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		case strings.TrimSpace(val) == "":
			return "", fmt.Errorf("environment variable %s is empty", s.Env)
		}
		return strings.TrimSpace(val), nil
	}
	fi, err := os.Stat(s.File)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file %s: %v", s.File, unwrapPath(err))
	}
	if fi.IsDir() {
		return "", fmt.Errorf("secret file %s is a directory", s.File)
	}
	if m := fi.Mode().Perm(); m&secretGroupMode != 0 {
		v.Warnf(path, "secret file %s has mode %04o: users other than its owner may read or change it (chmod 600 it, owned by the daemon's user)", s.File, m)
	}
	b, err := os.ReadFile(s.File)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file %s: %v", s.File, unwrapPath(err))
	}
	val := strings.TrimSpace(string(b))
	if val == "" {
		return "", fmt.Errorf("secret file %s is empty", s.File)
	}
	return val, nil
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
