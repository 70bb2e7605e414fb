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

// ManifestFormat names the manifest's layout.
const ManifestFormat = "dpiawatch-evidence-manifest/1"

// Manifest lists every file of a pack with its SHA-256, and is signed with
// Ed25519 over its own JSON encoding without the signature (see
// signedBytes). It is the only file that holds the generation time.
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
	Signature   string         `json:"signature,omitempty"`
}

// ManifestFile is one file of the pack.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// signedBytes is what the signature covers: the manifest's JSON without
// its signature. Verify decodes strictly (unknown fields refused), so
// re-encoding reproduces exactly what was signed.
func (m Manifest) signedBytes() ([]byte, error) {
	m.Signature = ""
	return json.MarshalIndent(m, "", "  ")
}

// KeyID is a short fingerprint of a public key.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Sign fills in the key and signature.
func (m *Manifest) Sign(key ed25519.PrivateKey) error {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return errors.New("evidence: not an Ed25519 key")
	}
	m.PublicKey, m.KeyID = base64.StdEncoding.EncodeToString(pub), KeyID(pub)
	b, err := m.signedBytes()
	if err != nil {
		return err
	}
	m.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, b))
	return nil
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

// OK reports whether the pack is intact and its signature valid.
func (r VerifyResult) OK() bool { return len(r.Problems) == 0 }

// Verify checks the pack in dir: the manifest's signature (against trusted
// when not nil, else against the key the manifest names), then every
// file's SHA-256; files missing from dir, changed, or present but not in
// the manifest are each named.
func Verify(dir string, trusted ed25519.PublicKey) (VerifyResult, error) {
	var res VerifyResult
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return res, fmt.Errorf("evidence: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res.Manifest); err != nil {
		res.Problems = append(res.Problems, Problem{Kind: "manifest", Path: ManifestName, Text: "not a valid manifest: " + err.Error()})
		return res, nil
	}
	m := res.Manifest
	if m.Format != ManifestFormat {
		res.Problems = append(res.Problems, Problem{Kind: "manifest", Path: ManifestName, Text: fmt.Sprintf("unknown format %q", m.Format)})
	}
	res.Problems = append(res.Problems, checkSignature(m, trusted)...)
	res.Trusted = trusted != nil

	listed := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		listed[f.Path] = true
		if !fs.ValidPath(f.Path) || strings.Contains(f.Path, "/") {
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

func checkSignature(m Manifest, trusted ed25519.PublicKey) []Problem {
	if m.Signature == "" {
		return []Problem{{Kind: "signature", Path: ManifestName, Text: "the manifest is not signed"}}
	}
	pubBytes, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(pubBytes) != ed25519.PublicKeySize {
		return []Problem{{Kind: "signature", Path: ManifestName, Text: "the manifest's public key is malformed"}}
	}
	pub := ed25519.PublicKey(pubBytes)
	if trusted != nil && !pub.Equal(trusted) {
		return []Problem{{Kind: "key", Path: ManifestName, Text: fmt.Sprintf("signed with key %s, not the trusted key %s", KeyID(pub), KeyID(trusted))}}
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return []Problem{{Kind: "signature", Path: ManifestName, Text: "the signature is malformed"}}
	}
	b, err := m.signedBytes()
	if err != nil || !ed25519.Verify(pub, b, sig) {
		return []Problem{{Kind: "signature", Path: ManifestName, Text: "the signature does not match the manifest: it was changed after signing"}}
	}
	return nil
}
