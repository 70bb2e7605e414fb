package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/dpiawatch/dpiawatch/event"
	"github.com/dpiawatch/dpiawatch/simulate"
)

// codecSeeds are native lines the spill codec must carry exactly: every
// optional field absent and present, MFA false and true, an empty
// sensitivity list, nanoseconds, a time given with an offset, non-ASCII
// text, escapes.
var codecSeeds = []string{
	`{"id":"a","time":"2026-03-02T09:00:00Z","org":"o","system":"s","action":"login","actor":{"id":"u"}}`,
	`{"id":"b","time":"2026-03-02T09:00:00.123456789+01:00","org":"o","system":"s","action":"view","actor":{"id":"u","role":"r","team":"t","org":"p","kind":"staff"},"subject":{"id":"c","sensitivity":["mental-health","safeguarding"]},"record":{"type":"note","id":"n1"},"session":{"id":"s1","device":"d","ip":"10.0.0.1","mfa":true},"outcome":"success"}`,
	`{"id":"c","time":"2026-03-02T09:00:00-05:30","org":"o","system":"s","action":"view","actor":{"id":"u","kind":"patient"},"subject":{"id":"c","sensitivity":[]},"session":{"mfa":false},"outcome":"failure"}`,
	`{"id":"d\u00e9j\u00e0 vu \"q\"","time":"0001-01-01T00:00:01Z","org":"Orgé","system":"s/t","action":"search","actor":{"id":"ü"}}`,
	`{"id":"e","time":"9999-12-31T23:59:59.999999999Z","org":"o","system":"s","action":"export","actor":{"id":"u"},"subject":{"id":"x"}}`,
	`{"id":"f","time":"1969-12-31T23:59:59.5Z","org":"o","system":"s","action":"logout","actor":{"id":"u","kind":"system"}}`,
}

// FuzzSpillCodec: for any line the native decoder accepts, the spill
// codec gives back what a native round trip gives (event.Encode, then
// Decode), and a line Encode refuses the codec refuses too; the key read
// without decoding is the event's.
func FuzzSpillCodec(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	dec := event.NewDecoder(event.DecoderOptions{Format: event.FormatNative, MaxBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev event.Event
		if dec.Decode(line, &ev) != nil {
			return
		}
		checkCodec(t, dec, &ev)
	})
}

func checkCodec(t *testing.T, dec *event.Decoder, ev *event.Event) {
	t.Helper()
	for _, dict := range []*dictionary{newDictionary(nil), fullDictionary} {
		checkCodecWith(t, dec, dict, ev)
	}
}

// fullDictionary has no room for a new word: an event's words are then
// written whole.
var fullDictionary = func() *dictionary {
	seed := make([]string, maxWords)
	for i := range seed {
		seed[i] = fmt.Sprintf("w%d", i)
	}
	return newDictionary(seed)
}()

func checkCodecWith(t *testing.T, dec *event.Decoder, dict *dictionary, ev *event.Event) {
	t.Helper()
	native, nerr := event.Encode(ev)
	b, err := dict.encoder().encode(nil, ev)
	if (nerr == nil) != (err == nil) {
		t.Fatalf("native encoding error %v, spill encoding error %v", nerr, err)
	}
	if err != nil {
		return
	}
	var want, got event.Event
	if err := dec.Decode(native, &want); err != nil {
		t.Fatalf("native round trip: %v", err)
	}
	if err := dict.decoder().decode(b, &got); err != nil {
		t.Fatalf("spill decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) || got.Time.Location() != want.Time.Location() {
		t.Fatalf("spill round trip\n got %#v\nwant %#v", got, want)
	}
	if k := keyOf(b); k != ev.Key() {
		t.Fatalf("key %v, want %v", k, ev.Key())
	}
}

// TestSpillCodecEqualsNativeRoundTrip: the codec carries every event of
// the event package's fixtures and of a simulated week of both seed
// organisations exactly as the native JSON did before it.
func TestSpillCodecEqualsNativeRoundTrip(t *testing.T) {
	dec := event.NewDecoder(event.DecoderOptions{Format: event.FormatNative, MaxBytes: 1 << 20})
	n := 0
	fixtures, err := os.ReadFile(filepath.Join("..", "event", "testdata", "native", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(fixtures))
	for sc.Scan() {
		var ev event.Event
		if dec.Decode(sc.Bytes(), &ev) == nil {
			checkCodec(t, dec, &ev)
			n++
		}
	}
	for _, org := range []string{simulate.OrgStMartins, simulate.OrgWiltshire} {
		sim, err := simulate.New(simulate.Options{Org: org, From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Days: 1, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		err = sim.Run(context.Background(), func(ev *event.Event, _ *simulate.Label) error {
			checkCodec(t, dec, ev)
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 1000 {
		t.Fatalf("only %d events compared", n)
	}
}

// TestSpillCodecRefusesCorruptInput: a truncated or padded encoding is an
// error, never a panic or a silently wrong event.
func TestSpillCodecRefusesCorruptInput(t *testing.T) {
	var ev event.Event
	if err := event.NewDecoder(event.DecoderOptions{}).Decode([]byte(codecSeeds[1]), &ev); err != nil {
		t.Fatal(err)
	}
	dict := newDictionary(nil)
	b, err := dict.encoder().encode(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	d := dict.decoder()
	for i := range len(b) {
		if err := d.decode(b[:i], &event.Event{}); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", i, len(b))
		}
	}
	if err := d.decode(append(bytes.Clone(b), 0), &event.Event{}); err == nil {
		t.Error("a trailing byte: no error")
	}
	// A word the dictionary does not have: the action's, the first after
	// the key and the time.
	at := keyLen(b)
	c := cursor{b: b[at:]}
	c.varint()
	c.uvarint()
	at = len(b) - len(c.b)
	bad := append(append(bytes.Clone(b[:at]), binary.AppendUvarint(nil, uint64(len(d.words))+1)...), b[at+1:]...)
	if err := d.decode(bad, &event.Event{}); err == nil {
		t.Error("a word beyond the dictionary: no error")
	}
}

// TestSpillCodecKnownIDs: the events decoded hold the very strings the
// dictionary was seeded with (Options.KnownIDs), and new words found by
// several encoders at once are shared.
func TestSpillCodecKnownIDs(t *testing.T) {
	known := strings.Clone("u-17")
	dict := newDictionary([]string{known})
	ev := event.Event{ID: "e", Org: "o", System: "s", Time: time.Unix(1, 0).UTC(), Action: event.ActionView,
		Actor: event.Actor{ID: strings.Clone("u-17"), Team: "t"}}
	var encoded [4][]byte
	var wg sync.WaitGroup
	for i := range encoded {
		wg.Go(func() {
			b, err := dict.encoder().encode(nil, &ev)
			if err != nil {
				t.Error(err)
			}
			encoded[i] = b
		})
	}
	wg.Wait()
	d := dict.decoder()
	var first event.Event
	for i, b := range encoded {
		var got event.Event
		if err := d.decode(b, &got); err != nil {
			t.Fatal(err)
		}
		if unsafe.StringData(got.Actor.ID) != unsafe.StringData(known) {
			t.Errorf("encoder %d: the actor id is not the known id's string", i)
		}
		if i == 0 {
			first = got
		} else if unsafe.StringData(got.Actor.Team) != unsafe.StringData(first.Actor.Team) {
			t.Errorf("encoder %d: the team is another string than encoder 0's", i)
		}
	}
	seen := map[string]bool{}
	for _, w := range d.words {
		if seen[w] {
			t.Errorf("the word %q is in the dictionary twice", w)
		}
		seen[w] = true
	}
}

// BenchmarkSpillCodec is the cost of holding one county event: encoding
// it once read, decoding it once merged.
func BenchmarkSpillCodec(b *testing.B) {
	line := []byte(codecSeeds[1])
	var ev event.Event
	if err := event.NewDecoder(event.DecoderOptions{}).Decode(line, &ev); err != nil {
		b.Fatal(err)
	}
	dict := newDictionary(nil)
	enc := dict.encoder()
	if _, err := enc.encode(nil, &ev); err != nil { // the words
		b.Fatal(err)
	}
	d := dict.decoder()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = enc.encode(buf[:0], &ev)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.decode(buf, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
