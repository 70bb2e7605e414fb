package evidence_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/dpiawatch/dpiawatch/evidence"
)

// signedManifest is a small manifest signed with testKey, as Export writes
// it: manifest.json's bytes and manifest.sig's.
func signedManifest(t testing.TB) (raw, sig []byte) {
	t.Helper()
	m := evidence.Manifest{Format: evidence.ManifestFormat, DPIA: "st-martins-webster-court", From: "2026-03-01", To: "2026-03-31",
		GeneratedAt: "2026-04-02T09:30:00Z", Generator: "dpiawatch test", Store: "embedded",
		Files: []evidence.ManifestFile{{Path: "risks.csv", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Bytes: 4}}}
	raw, sig, err := m.Sign(testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return raw, sig
}

// FuzzVerifyManifest: whatever the manifest's and the signature file's
// bytes, VerifyManifest does not panic, and it finds no problem only for
// exactly the bytes that were signed (and the signature as written, with
// or without its newline). Without a trusted key it always finds one. The
// seeds (run by go test) are the signed manifest and edits that keep its
// meaning to a JSON decoder: a duplicate key, a key's case, white space.
func FuzzVerifyManifest(f *testing.F) {
	raw, sig := signedManifest(f)
	trusted := testKey(f).Public().(ed25519.PublicKey)
	f.Add(raw, sig)
	f.Add(raw, bytes.TrimSuffix(sig, []byte("\n")))
	f.Add(bytes.Replace(raw, []byte("{\n"), []byte("{\n  \"dpia\": \"another-dpia\",\n"), 1), sig)
	f.Add(bytes.Replace(raw, []byte(`"dpia":`), []byte(`"DPIA":`), 1), sig)
	f.Add(bytes.Replace(raw, []byte(`"identities": false`), []byte(`"Identities": false`), 1), sig)
	f.Add(bytes.Replace(raw, []byte("\n"), []byte("\r\n"), -1), sig)
	f.Add(append(bytes.Clone(raw), ' '), sig)
	f.Add(bytes.TrimSuffix(raw, []byte("\n")), sig)
	f.Add(raw, append(bytes.Clone(bytes.TrimSuffix(sig, []byte("\n"))), " \n"...))
	f.Add(raw, []byte{})
	f.Add([]byte(`{"format":"dpiawatch-evidence-manifest/1","signature":"AAAA"}`), sig)
	f.Add([]byte("null"), sig)
	f.Fuzz(func(t *testing.T, raw2, sig2 []byte) {
		m, problems := evidence.VerifyManifest(raw2, sig2, trusted)
		same := bytes.Equal(raw2, raw) && (bytes.Equal(sig2, sig) || bytes.Equal(sig2, bytes.TrimSuffix(sig, []byte("\n"))))
		if same != (len(problems) == 0) {
			t.Fatalf("same bytes as signed: %v, problems: %v", same, problems)
		}
		if same && (m.DPIA != "st-martins-webster-court" || len(m.Files) != 1) {
			t.Fatalf("decoded %+v", m)
		}
		if _, problems := evidence.VerifyManifest(raw2, sig2, nil); len(problems) == 0 {
			t.Fatal("verified without a trusted key")
		}
	})
}
