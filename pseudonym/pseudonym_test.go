package pseudonym_test

import (
	"testing"

	"github.com/dpiawatch/dpiawatch/pseudonym"
)

// The pseudonyms are pinned: they appear in Slack threads, web pages and
// signed evidence packs already issued, so a change of scheme would make the
// same person look like two. The values were computed by the two copies
// this package replaces (alerting.Pseudonymizer for subjects, the evidence
// export's account hash in cli and daemon).
func TestPseudonymsArePinned(t *testing.T) {
	p := pseudonym.New([]byte("test-key-not-secret"))
	for _, tc := range []struct {
		kind, id, want string
	}{
		{"subject", "NHS-943 476 5919", "subj-a8296f9500c9"},
		{"subject", "c-0001", "subj-a541d7eca11c"},
		{"actor", "u-jsmith", "acct-5351a625ab2e"},
		{"actor", "svc:batch", "acct-d707941fcfae"},
		{"subject", "", ""},
		{"actor", "", ""},
	} {
		if got := p.Of(tc.kind, tc.id); got != tc.want {
			t.Errorf("Of(%q, %q) = %q, want %q", tc.kind, tc.id, got, tc.want)
		}
	}
	if got := p.Subject("c-0001"); got != "subj-a541d7eca11c" {
		t.Errorf("Subject = %q", got)
	}
	if got := p.Actor("u-jsmith"); got != "acct-5351a625ab2e" {
		t.Errorf("Actor = %q", got)
	}
}

func TestPseudonymsHideWithoutKey(t *testing.T) {
	for name, p := range map[string]*pseudonym.Pseudonymizer{"nil": nil, "empty key": pseudonym.New(nil)} {
		if s, a := p.Subject("c-1"), p.Actor("u-1"); s != "" || a != "" {
			t.Errorf("%s: Subject %q, Actor %q; want both hidden", name, s, a)
		}
	}
}

func TestPseudonymsAreStableAndSeparate(t *testing.T) {
	a, b := pseudonym.New([]byte("k1")), pseudonym.New([]byte("k2"))
	if a.Subject("c-1") != pseudonym.New([]byte("k1")).Subject("c-1") {
		t.Error("not stable")
	}
	if a.Subject("c-1") == a.Subject("c-2") || a.Subject("c-1") == b.Subject("c-1") {
		t.Error("collides across subjects or keys")
	}
	if a.Subject("x")[5:] == a.Actor("x")[5:] {
		t.Error("an account and a subject with the same id share a hash")
	}
}
