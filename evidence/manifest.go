package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ManifestName is the manifest's file name in a pack.
const ManifestName = "manifest.json"

// SignatureName is the file, beside the manifest, that holds its Ed25519
// signature: the base64 of the signature of manifest.json's exact bytes, on
// one line.
const SignatureName = "manifest.sig"

// ManifestFormat names the manifest's layout. Format /1 embedded its
// signature, made over a re-encoding of the manifest, so that edits which
// kept its meaning (a duplicate key, a key's case) still verified; /2 is
// signed as written, in SignatureName.
const ManifestFormat = "dpiawatch-evidence-manifest/2"

const legacyManifestFormat = "dpiawatch-evidence-manifest/1"

// Manifest lists every file of a pack with its SHA-256. It is the only file
// that holds the generation time. It is signed with Ed25519 over its exact
// bytes as written (Sign), and the signature is kept in SignatureName.
type Manifest struct {
	Format      string         `json:"format"`
	DPIA        string         `json:"dpia"`
	From        string         `json:"from"`
	To          string         `json:"to"`
	GeneratedAt string         `json:"generated_at"`
	Generator   string         `json:"generator"`
	Store       string         `json:"store"`
	Identities  bool           `json:"identities"`
	RequestedBy string         `json:"identities_requested_by,omitempty"`
	AuditLogged bool           `json:"identities_audit_logged,omitempty"`
	Files       []ManifestFile `json:"files"`
	PublicKey   string         `json:"public_key"` // base64 of the 32-byte Ed25519 key
	KeyID       string         `json:"key_id"`     // first 16 hex digits of SHA-256(public key)
}

// ManifestFile is one file of the pack.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// KeyID is a short fingerprint of a public key.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Sign fills in the key and returns the two files to write: manifest.json
// (as Encode renders it) and SignatureName, the signature of exactly those
// bytes.
func (m *Manifest) Sign(key ed25519.PrivateKey) (manifest, signature []byte, err error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, nil, errors.New("evidence: not an Ed25519 key")
	}
	m.PublicKey, m.KeyID = base64.StdEncoding.EncodeToString(pub), KeyID(pub)
	if manifest, err = m.Encode(); err != nil {
		return nil, nil, err
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, manifest))
	return manifest, []byte(sig + "\n"), nil
}

// Encode renders the manifest as written to manifest.json.
func (m Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func hashFile(f File) ManifestFile {
	h := sha256.Sum256(f.Data)
	return ManifestFile{Path: f.Name, SHA256: hex.EncodeToString(h[:]), Bytes: int64(len(f.Data))}
}

// ParsePrivateKey reads an Ed25519 private key: a PEM "PRIVATE KEY" block
// (PKCS#8), or the 32-byte seed as 64 hexadecimal characters or base64.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("evidence: signing key: %w", err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("evidence: signing key is %T, not Ed25519", k)
		}
		return ek, nil
	}
	seed, err := decodeKeyBytes(s, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("evidence: signing key: %w (want PEM PKCS#8, or a 32-byte seed in hex or base64)", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey reads an Ed25519 public key: a PEM "PUBLIC KEY" block
// (PKIX), or the 32 bytes in hex or base64.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("evidence: public key: %w", err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("evidence: public key is %T, not Ed25519", k)
		}
		return ek, nil
	}
	b, err := decodeKeyBytes(s, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("evidence: public key: %w (want PEM, or 32 bytes in hex or base64)", err)
	}
	return ed25519.PublicKey(b), nil
}

func decodeKeyBytes(s string, n int) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == n {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == n {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not %d bytes in hex or base64", n)
}

// GenerateKey returns a new key pair as PEM: the private key (PKCS#8) and
// the public key (PKIX).
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	px, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: px}), nil
}

// Problem is one finding of Verify.
type Problem struct {
	Kind string // altered, missing, extra, signature, manifest, key
	Path string
	Text string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Kind + ": " + p.Text
	}
	return p.Kind + ": " + p.Path + ": " + p.Text
}

// VerifyResult is the outcome of Verify; OK when Problems is empty.
type VerifyResult struct {
	Manifest Manifest
	Problems []Problem
	// Trusted: the signature was checked against a key the caller gave,
	// not only the one the manifest carries.
	Trusted bool
}

// OK reports whether the pack is intact and signed by the trusted key.
func (r VerifyResult) OK() bool { return len(r.Problems) == 0 }

// Verify checks the pack in dir: the signature in SignatureName over the
// exact bytes of the manifest, against trusted, then every file's SHA-256;
// files missing from dir, changed, or present but not in the manifest are
// each named. Without a trusted key (nil) the signature can only be checked
// against the key the manifest carries, which whoever altered the pack can
// replace: that is a problem too, so such a pack is never OK.
func Verify(dir string, trusted ed25519.PublicKey) (VerifyResult, error) {
	res := VerifyResult{Trusted: trusted != nil}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return res, fmt.Errorf("evidence: %w", err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, SignatureName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("evidence: %w", err)
	}
	var parsed bool
	res.Manifest, parsed, res.Problems = verifyManifest(raw, sig, trusted)
	if !parsed {
		return res, nil
	}
	m := res.Manifest

	listed := map[string]bool{ManifestName: true, SignatureName: true}
	for _, f := range m.Files {
		listed[f.Path] = true
		if !fs.ValidPath(f.Path) || strings.Contains(f.Path, "/") || f.Path == ManifestName || f.Path == SignatureName {
			res.Problems = append(res.Problems, Problem{Kind: "manifest", Path: f.Path, Text: "not a plain file name"})
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if errors.Is(err, fs.ErrNotExist) {
			res.Problems = append(res.Problems, Problem{Kind: "missing", Path: f.Path, Text: "listed in the manifest but not in the pack"})
			continue
		}
		if err != nil {
			return res, fmt.Errorf("evidence: %w", err)
		}
		got := hashFile(File{Name: f.Path, Data: b})
		if got.SHA256 != f.SHA256 || got.Bytes != f.Bytes {
			res.Problems = append(res.Problems, Problem{Kind: "altered", Path: f.Path, Text: "its SHA-256 differs from the manifest's"})
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return res, fmt.Errorf("evidence: %w", err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			res.Problems = append(res.Problems, Problem{Kind: "extra", Path: e.Name(), Text: "in the pack but not in the manifest"})
		}
	}
	slices.SortStableFunc(res.Problems, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	return res, nil
}

// VerifyManifest checks a manifest's bytes (manifest.json as read) and its
// signature file (SignatureName as read, nil when absent) against trusted,
// and decodes the manifest. No problems means: the signature is trusted's,
// over exactly these bytes, and they are the manifest as dpiawatch writes
// it. A nil trusted key is itself a problem (see Verify).
func VerifyManifest(raw, sig []byte, trusted ed25519.PublicKey) (Manifest, []Problem) {
	m, _, problems := verifyManifest(raw, sig, trusted)
	return m, problems
}

// verifyManifest is VerifyManifest; parsed says the manifest decoded, so
// that its file list can be checked.
func verifyManifest(raw, sig []byte, trusted ed25519.PublicKey) (m Manifest, parsed bool, problems []Problem) {
	bad := func(kind, text string) Problem { return Problem{Kind: kind, Path: ManifestName, Text: text} }
	var head struct {
		Format string `json:"format"`
	}
	if json.Unmarshal(raw, &head) == nil && head.Format == legacyManifestFormat {
		return m, false, []Problem{bad("manifest", "format "+legacyManifestFormat+" was signed over a re-encoding of the manifest, "+
			"which edits can keep valid; it is no longer accepted: export the pack again")}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, false, []Problem{bad("manifest", "not a valid manifest: "+err.Error())}
	}
	if m.Format != ManifestFormat {
		problems = append(problems, bad("manifest", fmt.Sprintf("unknown format %q", m.Format)))
	}
	if p := checkSignature(raw, m, sig, trusted); p != nil {
		return m, true, append(problems, *p)
	}
	if trusted == nil {
		problems = append(problems, bad("key", "no trusted public key was given: the signature was checked only against "+
			"the key the manifest carries, which whoever altered the pack can replace"))
	}
	// Signed as written; still, a manifest whose bytes are not what Encode
	// makes of them (duplicate or differently-cased keys, trailing data)
	// could be read differently by another reader than by this one.
	if enc, err := m.Encode(); err != nil || !bytes.Equal(enc, raw) {
		problems = append(problems, bad("manifest", "signed, but not in the form dpiawatch writes (duplicate or differently-cased keys, or other changes)"))
	}
	return m, true, problems
}

// checkSignature checks sig, the signature file, over raw, the manifest's
// exact bytes: against trusted when given (and the manifest must name that
// key), else against the key the manifest carries.
func checkSignature(raw []byte, m Manifest, sig []byte, trusted ed25519.PublicKey) *Problem {
	bad := func(kind, text string) *Problem { return &Problem{Kind: kind, Path: ManifestName, Text: text} }
	pubBytes, err := base64.StdEncoding.Strict().DecodeString(m.PublicKey)
	if err != nil || len(pubBytes) != ed25519.PublicKeySize {
		return bad("signature", "the manifest's public key is malformed")
	}
	pub := ed25519.PublicKey(pubBytes)
	if trusted != nil {
		if !pub.Equal(trusted) {
			return bad("key", fmt.Sprintf("signed with key %s, not the trusted key %s", KeyID(pub), KeyID(trusted)))
		}
		pub = trusted
	}
	if len(sig) == 0 {
		return bad("signature", "the manifest is not signed: "+SignatureName+" is missing or empty")
	}
	s, err := base64.StdEncoding.Strict().DecodeString(string(bytes.TrimSuffix(sig, []byte("\n"))))
	if err != nil || len(s) != ed25519.SignatureSize {
		return bad("signature", "the signature in "+SignatureName+" is malformed")
	}
	if !ed25519.Verify(pub, raw, s) {
		return bad("signature", "the signature does not match the manifest: it was changed after signing")
	}
	return nil
}
