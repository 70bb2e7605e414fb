package replay

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/event"
)

// The spill codec: how a replay holds a decoded event in its arena and
// runs. It is private to a replay (never stored, never sent), so it is a
// plain binary layout rather than the native JSON: encoding and decoding
// it cost a third of a JSON round trip, and it is a quarter to a third of
// the size to write and read.
// Decoding gives exactly what event.Decode(event.Encode(ev)) gives for an
// event the decoder accepted (TestSpillCodecEqualsNativeRoundTrip): time
// in UTC, an empty sensitivity list as nil, and a string that is not
// valid UTF-8 refused as Encode refuses it.
//
// Layout: the key first (id, org, system), so that keyOf reads it without
// decoding the rest; then the time (seconds and nanoseconds, varints); then
// every other string: those with few distinct values (action, actor and
// device ids, role, team, kind, record type, outcome, sensitivity) as a word
// of the replay's dictionary (uvarint n+1 for its word n, or 0 and the
// string itself once the dictionary is full), the others length-prefixed;
// the sensitivity count and entries; the MFA flag (0 absent, 1 false, 2
// true).
//
// The dictionary makes a county event a half smaller to write and read back
// (a third of what the machine spends writing runs is the kernel's copy),
// checks each distinct string once rather than at every event, and gives
// every event the one string of each word, so that the checks' maps find
// their keys by pointer.

var errNotUTF8 = errors.New("a field is not valid UTF-8")

// fieldsOf lists ev's strings after the key, in the codec's order;
// isWord tells which of them are words of the dictionary.
func fieldsOf(ev *event.Event) [13]*string {
	return [...]*string{
		(*string)(&ev.Action), &ev.Actor.ID, &ev.Actor.Role, &ev.Actor.Team, &ev.Actor.Org, (*string)(&ev.Actor.Kind),
		&ev.Subject.ID, &ev.Record.Type, &ev.Record.ID, &ev.Session.ID, &ev.Session.Device, &ev.Session.IP,
		(*string)(&ev.Outcome),
	}
}

var isWord = [13]bool{true, true, true, true, true, true, false, true, false, false, true, false, true}

// maxWords bounds a replay's dictionary, whatever the input holds: beyond
// it, strings are written whole.
const maxWords = 1 << 17

// dictionary is a replay's words: one for every encoder, then, once
// reading is done, every decoder's.
type dictionary struct {
	mu    sync.Mutex
	index map[string]uint32
	words []string
}

// newDictionary starts a dictionary with seed (Options.KnownIDs): the
// events then hold the reference data's very strings.
func newDictionary(seed []string) *dictionary {
	d := &dictionary{index: make(map[string]uint32, len(seed))}
	for _, s := range seed {
		if len(d.words) == maxWords {
			break
		}
		if _, ok := d.index[s]; !ok && utf8.ValidString(s) {
			d.index[s] = uint32(len(d.words))
			d.words = append(d.words, s)
		}
	}
	return d
}

// word returns s's word, adding it; false when the dictionary is full.
func (d *dictionary) word(s string) (uint32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.index[s]; ok {
		return n, true
	}
	if len(d.words) == maxWords {
		return 0, false
	}
	s = strings.Clone(s) // not a slice of a line or of a larger string
	n := uint32(len(d.words))
	d.index[s] = n
	d.words = append(d.words, s)
	return n, true
}

// spillEncoder encodes events for one goroutine: it keeps the words it has
// met, and asks the dictionary only for new ones.
type spillEncoder struct {
	dict  *dictionary
	local map[string]uint32
}

func (d *dictionary) encoder() *spillEncoder {
	return &spillEncoder{dict: d, local: map[string]uint32{}}
}

// decoder returns a decoder of what the encoders wrote; it must be made
// once they are done.
func (d *dictionary) decoder() *eventDecoder {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &eventDecoder{intern: map[string]string{}, words: d.words[:len(d.words):len(d.words)]}
}

// appendWord appends s as a word, or whole when the dictionary is full.
func (e *spillEncoder) appendWord(b []byte, s string) ([]byte, error) {
	n, ok := e.local[s]
	if !ok {
		if !utf8.ValidString(s) {
			return nil, errNotUTF8
		}
		if n, ok = e.dict.word(s); !ok {
			return appendString(append(b, 0), s), nil
		}
		e.local[s] = n
	}
	return binary.AppendUvarint(b, uint64(n)+1), nil
}

// encode appends ev's spill encoding to b.
func (e *spillEncoder) encode(b []byte, ev *event.Event) ([]byte, error) {
	for _, s := range [...]string{ev.ID, ev.Org, ev.System} {
		if !utf8.ValidString(s) {
			return nil, errNotUTF8
		}
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, ev.Time.Unix())
	b = binary.AppendUvarint(b, uint64(ev.Time.Nanosecond()))
	var err error
	for i, p := range fieldsOf(ev) {
		if isWord[i] {
			if b, err = e.appendWord(b, *p); err != nil {
				return nil, err
			}
			continue
		}
		if !utf8.ValidString(*p) {
			return nil, errNotUTF8
		}
		b = appendString(b, *p)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Subject.Sensitivity)))
	for _, s := range ev.Subject.Sensitivity {
		if b, err = e.appendWord(b, s); err != nil {
			return nil, err
		}
	}
	mfa := byte(0)
	if ev.Session.MFA != nil {
		mfa = 1
		if *ev.Session.MFA {
			mfa = 2
		}
	}
	return append(b, mfa), nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errCorrupt = errors.New("replay: corrupt spilled event")

// cursor reads a spill encoding; a read past the end or a bad length sets
// bad instead of panicking.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) uvarint() uint64 {
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.bad, c.b = true, nil
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) varint() int64 {
	v, n := binary.Varint(c.b)
	if n <= 0 {
		c.bad, c.b = true, nil
		return 0
	}
	c.b = c.b[n:]
	return v
}

// bytes returns the next length-prefixed string, still in c's buffer.
func (c *cursor) bytes() []byte {
	n := c.uvarint()
	if n > uint64(len(c.b)) {
		c.bad, c.b = true, nil
		return nil
	}
	s := c.b[:n]
	c.b = c.b[n:]
	return s
}

// keyLen is the length of the key's part of a spill encoding.
func keyLen(b []byte) int {
	c := cursor{b: b}
	c.bytes()
	c.bytes()
	c.bytes()
	return len(b) - len(c.b)
}

// keyOf reads the key of a spill-encoded event; only needed when two key
// hashes are equal.
func keyOf(b []byte) event.Key {
	c := cursor{b: b}
	return event.Key{ID: string(c.bytes()), Org: string(c.bytes()), System: string(c.bytes())}
}

// compareKeys orders two spill-encoded events by key (org, system, id)
// without allocating.
func compareKeys(a, b []byte) int {
	ca, cb := cursor{b: a}, cursor{b: b}
	ida, orga, sysa := ca.bytes(), ca.bytes(), ca.bytes()
	idb, orgb, sysb := cb.bytes(), cb.bytes(), cb.bytes()
	if c := compareBytes(orga, orgb); c != 0 {
		return c
	}
	if c := compareBytes(sysa, sysb); c != 0 {
		return c
	}
	return compareBytes(ida, idb)
}

func compareBytes(a, b []byte) int {
	// string(a) in a comparison does not allocate.
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}

// eventDecoder decodes spill encodings (dictionary.decoder). The words are
// the dictionary's strings; org and system, of the key, are interned, so
// that decoding them allocates nothing; the other strings share one
// allocation per event.
type eventDecoder struct {
	intern map[string]string
	words  []string
}

// maxInterned bounds the interned strings, whatever the input holds.
const maxInterned = 1 << 14

func (d *eventDecoder) interned(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.intern[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(d.intern) < maxInterned {
		d.intern[s] = s
	}
	return s
}

// word reads a word, or a string written whole.
func (d *eventDecoder) word(c *cursor) string {
	n := c.uvarint()
	switch {
	case c.bad:
		return ""
	case n == 0:
		return string(c.bytes())
	case n-1 >= uint64(len(d.words)):
		c.bad, c.b = true, nil
		return ""
	}
	return d.words[n-1]
}

// decode fills ev from b, which it does not retain.
func (d *eventDecoder) decode(b []byte, ev *event.Event) error {
	*ev = event.Event{}
	c := cursor{b: b}
	// The strings of many values (event, subject, record and session ids, IPs) are cut from
	// one string: one allocation instead of five.
	var many [5][]byte
	total := 0
	take := func(i int) {
		many[i] = c.bytes()
		total += len(many[i])
	}
	take(0) // id
	ev.Org = d.interned(c.bytes())
	ev.System = d.interned(c.bytes())
	sec, nsec := c.varint(), c.uvarint()
	if nsec >= uint64(time.Second) {
		return errCorrupt
	}
	ev.Time = time.Unix(sec, int64(nsec)).UTC()
	ev.Action = event.Action(d.word(&c))
	ev.Actor.ID = d.word(&c)
	ev.Actor.Role = d.word(&c)
	ev.Actor.Team = d.word(&c)
	ev.Actor.Org = d.word(&c)
	ev.Actor.Kind = event.ActorKind(d.word(&c))
	take(1) // subject.id
	ev.Record.Type = d.word(&c)
	take(2) // record.id
	take(3) // session.id
	ev.Session.Device = d.word(&c)
	take(4) // session.ip
	ev.Outcome = event.Outcome(d.word(&c))
	if n := c.uvarint(); n > 0 && !c.bad {
		if n > uint64(len(c.b)) {
			return errCorrupt
		}
		ev.Subject.Sensitivity = make([]string, n)
		for i := range ev.Subject.Sensitivity {
			ev.Subject.Sensitivity[i] = d.word(&c)
		}
	}
	if c.bad || len(c.b) != 1 || c.b[0] > 2 {
		return errCorrupt
	}
	if c.b[0] > 0 {
		mfa := c.b[0] == 2
		ev.Session.MFA = &mfa
	}
	var all strings.Builder
	all.Grow(total)
	for _, f := range many {
		all.Write(f)
	}
	s := all.String()
	var cut [len(many)]string
	for i, f := range many {
		cut[i], s = s[:len(f)], s[len(f):]
	}
	ev.ID, ev.Subject.ID, ev.Record.ID = cut[0], cut[1], cut[2]
	ev.Session.ID, ev.Session.IP = cut[3], cut[4]
	return nil
}
