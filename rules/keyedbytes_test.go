package rules

import (
	"testing"
	"time"
)

// TestKeyedBytes: the Bytes methods find, store and forget the keys the
// string ones do, in the env's org only, and keep no reference to the
// caller's buffer.
func TestKeyedBytes(t *testing.T) {
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	k := NewKeyed[int]("n", time.Hour)
	k.bind("rules/test/")
	o, other := &Env{org: &orgRuntime{id: "o"}, watermark: at}, &Env{org: &orgRuntime{id: "p"}, watermark: at}
	buf := []byte("s\x00sys\x00u-1")
	k.PutBytes(o, buf, at, 1)
	copy(buf, "XXXXXXXX") // the caller reuses its buffer
	if v, ok := k.Get(o, "s\x00sys\x00u-1"); !ok || v != 1 {
		t.Fatalf("Get after PutBytes = %d, %v; want 1, true", v, ok)
	}
	if _, ok := k.GetBytes(other, []byte("s\x00sys\x00u-1")); ok {
		t.Fatal("another org's key found")
	}
	k.PutBytes(o, []byte("s\x00sys\x00u-1"), at.Add(time.Minute), 2)
	if v, ok := k.GetBytes(o, []byte("s\x00sys\x00u-1")); !ok || v != 2 || k.Len() != 1 {
		t.Fatalf("GetBytes after a second PutBytes = %d, %v (%d keys); want 2, true, 1 key", v, ok, k.Len())
	}
	out, err := k.drain(nil, false)
	if err != nil || len(out) != 1 || out[0].Key != "rules/test/n/o/s%00sys%00u-1" {
		t.Fatalf("drain = %v, %v; want the key's one entry", out, err)
	}
	if _, ok := k.GetBytes(&Env{org: o.org, watermark: at.Add(2 * time.Hour)}, []byte("s\x00sys\x00u-1")); ok {
		t.Fatal("a key idle beyond its horizon found")
	}
	k.DeleteBytes(o, []byte("s\x00sys\x00u-1"))
	if _, ok := k.Get(o, "s\x00sys\x00u-1"); ok || k.Len() != 0 {
		t.Fatalf("key found after DeleteBytes (%d keys)", k.Len())
	}
	out, err = k.drain(nil, false)
	if err != nil || len(out) != 1 || out[0].Value != nil {
		t.Fatalf("drain after DeleteBytes = %v, %v; want one deletion", out, err)
	}
}
