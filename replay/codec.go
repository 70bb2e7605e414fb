package replay

import (
	"encoding/binary"
	"errors"
	"strings"
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
// every other string, length-prefixed; the sensitivity count and entries;
// the MFA flag (0 absent, 1 false, 2 true).

var errNotUTF8 = errors.New("a field is not valid UTF-8")

// fieldsOf lists ev's strings after the key, in the codec's order.
func fieldsOf(ev *event.Event) [13]*string {
	return [...]*string{
		(*string)(&ev.Action), &ev.Actor.ID, &ev.Actor.Role, &ev.Actor.Team, &ev.Actor.Org, (*string)(&ev.Actor.Kind),
		&ev.Subject.ID, &ev.Record.Type, &ev.Record.ID, &ev.Session.ID, &ev.Session.Device, &ev.Session.IP,
		(*string)(&ev.Outcome),
	}
}

// encodeEvent appends ev's spill encoding to b.
func encodeEvent(b []byte, ev *event.Event) ([]byte, error) {
	for _, s := range [...]string{ev.ID, ev.Org, ev.System} {
		if !utf8.ValidString(s) {
			return nil, errNotUTF8
		}
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, ev.Time.Unix())
	b = binary.AppendUvarint(b, uint64(ev.Time.Nanosecond()))
	for _, p := range fieldsOf(ev) {
		if !utf8.ValidString(*p) {
			return nil, errNotUTF8
		}
		b = appendString(b, *p)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Subject.Sensitivity)))
	for _, s := range ev.Subject.Sensitivity {
		if !utf8.ValidString(s) {
			return nil, errNotUTF8
		}
		b = appendString(b, s)
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

// eventDecoder decodes spill encodings. Fields with few distinct values
// (org, action, role, team…) are interned, so that decoding them
// allocates nothing; the others share one allocation per event.
//
// Actor and device ids are interned too, in a table of their own: the
// checks key their state by them, and a map finds a key whose string is the
// very one it holds without reading its bytes, which for a county's ten
// thousand staff are seldom in the cache.
type eventDecoder struct {
	intern map[string]string
	ids    map[string]string
}

// maxInterned bounds the interned strings, whatever the input holds;
// maxInternedIDs the actor and device ids.
const (
	maxInterned    = 1 << 14
	maxInternedIDs = 1 << 17
)

func newEventDecoder() *eventDecoder {
	return &eventDecoder{intern: map[string]string{}, ids: map[string]string{}}
}

// knownIDs interns ids first, up to the bound (Options.KnownIDs).
func (d *eventDecoder) knownIDs(ids []string) {
	for _, id := range ids {
		if len(d.ids) >= maxInternedIDs {
			return
		}
		if id != "" {
			d.ids[id] = id
		}
	}
}

// internedID is interned for actor and device ids.
func (d *eventDecoder) internedID(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.ids[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.ids) < maxInternedIDs {
		d.ids[s] = s
	}
	return s
}

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
	ev.Action = event.Action(d.interned(c.bytes()))
	ev.Actor.ID = d.internedID(c.bytes())
	ev.Actor.Role = d.interned(c.bytes())
	ev.Actor.Team = d.interned(c.bytes())
	ev.Actor.Org = d.interned(c.bytes())
	ev.Actor.Kind = event.ActorKind(d.interned(c.bytes()))
	take(1) // subject.id
	ev.Record.Type = d.interned(c.bytes())
	take(2) // record.id
	take(3) // session.id
	ev.Session.Device = d.internedID(c.bytes())
	take(4) // session.ip
	ev.Outcome = event.Outcome(d.interned(c.bytes()))
	if n := c.uvarint(); n > 0 && !c.bad {
		if n > uint64(len(c.b)) {
			return errCorrupt
		}
		ev.Subject.Sensitivity = make([]string, n)
		for i := range ev.Subject.Sensitivity {
			ev.Subject.Sensitivity[i] = d.interned(c.bytes())
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
