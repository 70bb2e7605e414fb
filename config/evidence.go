package config

import (
	"fmt"
	"time"
)

// Evidence configures the DPO's evidence packs (`dpiawatch evidence export`,
// package evidence).
type Evidence struct {
	// SigningKey is the Ed25519 private key that signs each pack's
	// manifest.json: a PEM "PRIVATE KEY" block (PKCS#8, as written by
	// `dpiawatch evidence keygen` or `openssl genpkey -algorithm ed25519`),
	// or the 32-byte seed written as 64 hexadecimal characters or in
	// base64. Unset: packs are exported unsigned (verify then reports them
	// so and fails unless told --unsigned-ok).
	SigningKey Secret `yaml:"signing_key"`
	// PublicKey is the PEM public key that `dpiawatch evidence verify`
	// checks signatures against when no --public-key is given. Relative to
	// this file. Empty and no --public-key: verify checks nothing and
	// exits 1, because the key a manifest carries proves only that the
	// files are unchanged since someone signed them, not who signed them.
	PublicKey string `yaml:"public_key"`
	// LateAfter: an event stored more than this after its event time is
	// late data in the coverage section. Default 1h. Only stores that
	// record arrival time (ClickHouse) can report it.
	LateAfter Duration `yaml:"late_after"`
}

// DefaultEvidenceLateAfter is Evidence.LateAfter's default.
const DefaultEvidenceLateAfter = Duration(time.Hour)

func (e *Evidence) validate(v *Validator, p string) {
	e.SigningKey.validate(v, p+".signing_key")
	if v.Set(p+".late_after") && e.LateAfter <= 0 {
		v.Errorf(p+".late_after", "must be longer than 0s")
	}
	if e.LateAfter > Duration(30*24*time.Hour) {
		v.Errorf(p+".late_after", "%s is longer than 30 days", e.LateAfter)
	}
}

func (e *Evidence) setDefaults(c *Config) {
	e.SigningKey.File = c.abs(e.SigningKey.File)
	e.PublicKey = c.abs(e.PublicKey)
	if e.LateAfter == 0 {
		e.LateAfter = DefaultEvidenceLateAfter
	}
}

// String describes the section without any secret (for logs).
func (e Evidence) String() string {
	return fmt.Sprintf("signing_key=%s public_key=%q late_after=%s", e.SigningKey, e.PublicKey, e.LateAfter)
}
