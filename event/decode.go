package event

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json/jsontext"
	json "github.com/goccy/go-json/v2"

	"github.com/dpiawatch/dpiawatch/visible"
)

// Format is the wire format of an access event.
type Format string

// The formats a Decoder reads.
const (
	// FormatAuto reads FHIR when the message has a top-level
	// "resourceType" member, native JSON otherwise. FHIR is read fastest
	// when "resourceType" is the first member, as FHIR servers write it.
	FormatAuto Format = "auto"
	// FormatNative is the JSON object of CONTRACT §1.
	FormatNative Format = "native"
	// FormatFHIR is a FHIR R4 or R5 AuditEvent resource, or a Bundle of
	// them (see fhir.go).
	FormatFHIR Format = "fhir"
)

// ParseFormat returns the Format named s; the empty string means FormatAuto,
// so that a configuration may leave it out.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "":
		return FormatAuto, nil
	case FormatAuto, FormatNative, FormatFHIR:
		return f, nil
	}
	return "", fmt.Errorf("unknown event format %q (want %s, %s or %s)", s, FormatAuto, FormatNative, FormatFHIR)
}

// DefaultMaxBytes is the largest message a Decoder accepts when
// DecoderOptions.MaxBytes is zero. A native event is a few hundred bytes and
// a FHIR AuditEvent a few kilobytes.
const DefaultMaxBytes = 64 << 10

// DecoderOptions configure a Decoder. The zero value decodes either format
// with the default size limit.
type DecoderOptions struct {
	// Format of the messages; "" means FormatAuto.
	Format Format
	// Org and System are given to FHIR events, which carry neither. Native
	// events must carry their own; these are not applied to them.
	Org, System string
	// MaxBytes is the largest message accepted; 0 or less means
	// DefaultMaxBytes. A Bundle is one message.
	MaxBytes int
	// FHIR configures the FHIR mapping; it must pass FHIROptions.Validate.
	FHIR FHIROptions
}

// Decoder turns one message (a Kafka value, or one line of a JSON Lines file)
// into a valid Event. It holds no mutable state, so one Decoder may be shared
// by any number of goroutines.
type Decoder struct {
	format      Format
	org, system string
	maxBytes    int
	fhir        fhirMapping
}

// NewDecoder returns a Decoder for o. It panics if o.Format is not one of the
// Format constants or o.FHIR does not validate: both come from validated
// configuration, so another value is a programming error.
func NewDecoder(o DecoderOptions) *Decoder {
	f, err := ParseFormat(string(o.Format))
	if err != nil {
		panic("event: NewDecoder: " + err.Error())
	}
	m, err := newFHIRMapping(o.FHIR)
	if err != nil {
		panic("event: NewDecoder: " + err.Error())
	}
	d := &Decoder{format: f, org: o.Org, system: o.System, maxBytes: o.MaxBytes, fhir: m}
	if d.maxBytes <= 0 {
		d.maxBytes = DefaultMaxBytes
	}
	return d
}

// nativeWire is the native event plus the one member that tells a FHIR
// resource apart, so that auto-detection costs no second pass over native
// messages (the hot path).
type nativeWire struct {
	Event
	ResourceType string `json:"resourceType"`
}

// Decode decodes one message into *ev and validates it (Event.Validate). It
// returns nil or an *Error, whose Detail names the offending field but never
// holds a value from the message, since values may be personal data.
//
// *ev is overwritten whole, also on error; it must not be used after an
// error. Strings in *ev are copies: data may be reused once Decode returns.
//
// The JSON is read strictly (RFC 8259 as encoding/json/v2 reads it): member
// names match exactly (case-sensitive), a duplicated member name, invalid
// UTF-8, nesting deeper than 10000 levels or trailing data make the message
// malformed. Members the contract does not name are ignored. Times must be
// RFC 3339 with a UTC offset and are returned in UTC.
func (d *Decoder) Decode(data []byte, ev *Event) error {
	*ev = Event{}
	if len(data) > d.maxBytes {
		return reject(ReasonTooLarge, "message is larger than %d bytes", d.maxBytes)
	}
	if !isObject(data) {
		return reject(ReasonMalformed, "message is not a JSON object")
	}
	if rt, _ := resourceTypeOf(data); rt == "Bundle" && d.format != FormatNative {
		return rejectAt(ReasonUnsupported, "Bundle", "a Bundle holds several events: it is read by DecodeAll")
	}
	if err := d.decodeOne(data, ev); err != nil {
		return err
	}
	return finish(ev)
}

// decodeOne decodes one native event or one AuditEvent, without the
// checks of finish.
func (d *Decoder) decodeOne(data []byte, ev *Event) *Error {
	switch d.format {
	case FormatNative:
		return decodeNative(data, ev, nil)
	case FormatFHIR:
		return d.decodeFHIR(data, ev)
	}
	if startsWithResourceType(data) {
		// FHIR as FHIR servers write it: one pass instead of two.
		return d.decodeFHIR(data, ev)
	}
	var rt string
	if err := decodeNative(data, ev, &rt); err != nil || rt == "" {
		return err
	}
	if rt != "AuditEvent" {
		*ev = Event{}
		return rejectAt(ReasonUnsupported, "resourceType", "resourceType is not AuditEvent")
	}
	return d.decodeFHIR(data, ev)
}

// finish applies the rules every decoded event must pass.
func finish(ev *Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	return checkControl(ev)
}

// Decoded is one event of a message, or why it was refused.
type Decoded struct {
	Event Event
	// Err is nil or an *Error; Event must not be used when it is set.
	Err error
	// Entry is the index of the Bundle entry the event came from, or -1
	// when the message is one event (or a Bundle refused whole).
	Entry int
	// Resource is the JSON of a refused entry's resource, for its dead
	// letter; nil otherwise (a kept entry's dead letter, should it prove
	// a conflicting duplicate, holds the whole message).
	Resource []byte
}

// DecodeAll decodes one message that may hold several events — a FHIR
// Bundle, each entry on its own (fhir.go) — and appends one Decoded per
// event to out. Any other message gives exactly one, as Decode does. A
// Bundle with no AuditEvent gives none.
func (d *Decoder) DecodeAll(data []byte, out []Decoded) []Decoded {
	if d.format != FormatNative && len(data) <= d.maxBytes {
		if rt, _ := resourceTypeOf(data); rt == "Bundle" {
			return d.decodeBundle(data, out)
		}
	}
	out = append(out, Decoded{Entry: -1})
	r := &out[len(out)-1]
	if err := d.Decode(data, &r.Event); err != nil {
		r.Err = err
		// A Bundle whose resourceType is not its first member is only
		// known once it fails as an AuditEvent.
		var e *Error
		if errors.As(err, &e) && e.Reason == ReasonUnsupported && d.format != FormatNative && isBundle(data) {
			return d.decodeBundle(data, out[:len(out)-1])
		}
	}
	return out
}

// isBundle reports whether data is an object whose resourceType is Bundle.
func isBundle(data []byte) bool {
	var rt struct {
		ResourceType string `json:"resourceType"`
	}
	return json.Unmarshal(data, &rt) == nil && rt.ResourceType == "Bundle"
}

// fhirBundle holds the elements of a Bundle that unwrapping reads.
type fhirBundle struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		FullURL  string         `json:"fullUrl"`
		Resource jsontext.Value `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// fhirBundleFast is a Bundle read in one pass, each entry straight into an
// AuditEvent: what almost every Bundle of AuditEvents is.
type fhirBundleFast struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource *fhirAuditEvent `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// decodeBundle unwraps a Bundle (see Bundles in fhir.go). It reads the
// Bundle once, each entry as an AuditEvent; only when an entry fails does
// it read the Bundle again entry by entry (decodeBundleEntries), for that
// entry's own JSON, which its dead letter holds. The two give the same
// events.
func (d *Decoder) decodeBundle(data []byte, out []Decoded) []Decoded {
	var b fhirBundleFast
	if json.UnmarshalOf(data, &b) != nil {
		return d.decodeBundleEntries(data, out)
	}
	start := len(out)
	for i := range b.Entry {
		e := &b.Entry[i]
		if e.Resource == nil || e.Search.Mode == "include" || e.Search.Mode == "outcome" {
			continue
		}
		out = append(out, Decoded{Entry: i})
		r := &out[len(out)-1]
		if d.mapAuditEvent(e.Resource, &r.Event, "", fullURLID(e.FullURL)) != nil || finish(&r.Event) != nil {
			return d.decodeBundleEntries(data, out[:start])
		}
	}
	return out
}

// decodeBundleEntries unwraps a Bundle entry by entry, keeping each
// entry's JSON.
func (d *Decoder) decodeBundleEntries(data []byte, out []Decoded) []Decoded {
	var b fhirBundle
	if err := json.UnmarshalOf(data, &b); err != nil {
		return append(out, Decoded{Entry: -1, Err: fhirJSONError(err, "Bundle")})
	}
	for i := range b.Entry {
		e := &b.Entry[i]
		if len(e.Resource) == 0 || string(e.Resource) == "null" || e.Search.Mode == "include" || e.Search.Mode == "outcome" {
			continue
		}
		path := "Bundle.entry[" + strconv.Itoa(i) + "].resource"
		out = append(out, Decoded{Entry: i, Resource: e.Resource})
		r := &out[len(out)-1]
		var err *Error
		switch rt, _ := resourceTypeOf(e.Resource); {
		case !isObject(e.Resource):
			err = rejectAt(ReasonMalformed, path, "the resource is not a JSON object")
		case rt == "Bundle":
			err = rejectAt(ReasonUnsupported, path+".resourceType", "a Bundle inside a Bundle is not read")
		default:
			err = d.decodeAuditEvent(e.Resource, &r.Event, path, fullURLID(e.FullURL))
		}
		if err != nil {
			r.Event, r.Err = Event{}, err
			continue
		}
		if err := finish(&r.Event); err != nil {
			r.Event, r.Err = Event{}, err
			continue
		}
		r.Resource = nil // as decodeBundle gives it
	}
	return out
}

// fullURLID is the id in a Bundle entry's fullUrl: a "urn:uuid:" or
// "urn:oid:" value, or a reference's id.
func fullURLID(u string) string {
	for _, p := range [...]string{"urn:uuid:", "urn:oid:"} {
		if strings.HasPrefix(u, p) {
			return u[len(p):]
		}
	}
	_, id := splitReference(u)
	return id
}

// decodeNative decodes the native format into *ev; when resourceType is not
// nil it receives the top-level "resourceType" member.
func decodeNative(data []byte, ev *Event, resourceType *string) *Error {
	var (
		w  nativeWire
		ok bool
	)
	if err := json.UnmarshalOf(data, &w); err != nil {
		return jsonError(err, "time")
	}
	*ev = w.Event
	if ev.Time, ok = inUTC(ev.Time); !ok {
		return reject(ReasonInvalidField, "time is outside the years 0000 to 9999 in UTC")
	}
	if len(ev.Subject.Sensitivity) == 0 {
		// [] and absent are the same, and compare equal after a round trip.
		ev.Subject.Sensitivity = nil
	}
	if resourceType != nil {
		*resourceType = w.ResourceType
	}
	return nil
}

// startsWithResourceType reports whether the first member of the object in
// data is "resourceType", as FHIR serialisations put it.
func startsWithResourceType(data []byte) bool {
	rest := bytes.TrimLeft(data, " \t\r\n")
	if len(rest) == 0 || rest[0] != '{' {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte(`"resourceType"`))
}

// inUTC returns t in UTC, and whether it is still a time RFC 3339 can write:
// "0000-01-01T00:30:00+01:00" is a valid time whose UTC year is -1, which no
// store, alert or re-encoding could carry.
func inUTC(t time.Time) (time.Time, bool) {
	t = t.UTC()
	y := t.Year()
	return t, y >= 0 && y <= 9999
}

// isObject reports whether data starts, after JSON white space, with '{'.
// The JSON decoder would take null as an empty event and report it as a
// missing field, which hides that the producer sent no object at all.
func isObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// jsonError turns an error of the JSON decoder into an *Error. The decoder's
// own messages are not used: they may quote a value from the input. timeField
// is the member holding the event time, whose bad text is an invalid field
// rather than malformed JSON.
func jsonError(err error, timeField string) *Error {
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		what := "invalid JSON syntax"
		switch {
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			what = "truncated JSON"
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			what = "duplicate member name"
		case strings.Contains(syn.Err.Error(), "UTF-8"):
			// jsontext exports no sentinel for invalid UTF-8.
			what = "invalid UTF-8"
		case strings.Contains(syn.Err.Error(), "exceeded max depth"):
			what = "nesting too deep"
		}
		return reject(ReasonMalformed, "%s at byte %d", what, syn.ByteOffset)
	}
	var sem *json.SemanticError
	if errors.As(err, &sem) {
		field := fieldName(sem.JSONPointer)
		if field == timeField && sem.JSONKind == jsontext.KindString {
			return reject(ReasonInvalidField, "%s must be an RFC 3339 time with a UTC offset", field)
		}
		return reject(ReasonMalformed, "%s has the wrong JSON type", field)
	}
	return reject(ReasonMalformed, "not valid JSON")
}

// fieldName turns a JSON pointer to a decoded member ("/actor/id",
// "/agent/0/who") into the dotted name used in details ("actor.id",
// "agent.who"). The pointer only ever names members of our own structs, but
// anything that is not a plain name is left out all the same: a detail must
// never carry text from the message.
func fieldName(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if !isPlainName(tok) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "message"
	}
	return b.String()
}

func isPlainName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// checkControl rejects hidden characters (visible.Hidden: control and format
// characters, among them an escaped "\u0000", a newline and the Unicode
// bidirectional controls) in any text field. JSON allows them escaped, but in
// identifiers they only serve to break logs, CSV exports and C-string based
// tools downstream, to make two ids look alike, or to make an id read
// differently from what it is in the UI, Slack, a CSV or a PDF.
func checkControl(ev *Event) error {
	fields := [...]struct{ name, v string }{
		{"id", ev.ID}, {"org", ev.Org}, {"system", ev.System}, {"actor.id", ev.Actor.ID},
		{"actor.role", ev.Actor.Role}, {"actor.team", ev.Actor.Team}, {"actor.org", ev.Actor.Org},
		{"subject.id", ev.Subject.ID}, {"record.type", ev.Record.Type}, {"record.id", ev.Record.ID},
		{"session.id", ev.Session.ID}, {"session.device", ev.Session.Device}, {"session.ip", ev.Session.IP},
	}
	for _, f := range fields {
		if err := hiddenIn(f.name, f.v); err != nil {
			return err
		}
	}
	for _, s := range ev.Subject.Sensitivity {
		if err := hiddenIn("subject.sensitivity", s); err != nil {
			return err
		}
	}
	return nil
}

// hiddenIn names the first hidden character of v by its code point, which
// tells a producer what to fix without echoing the value.
func hiddenIn(field, v string) *Error {
	if i, r := visible.IndexHidden(v); i >= 0 {
		return reject(ReasonInvalidField, "%s contains the hidden character %U at byte %d", field, r, i)
	}
	return nil
}

// Encode returns ev in the native format of CONTRACT §1, compact, on one
// line. It does not validate ev (the simulator and tests also encode bad
// events on purpose) but fails on text that is not valid UTF-8. For a valid
// event, Decode(Encode(ev)) gives back ev with its time in UTC.
func Encode(ev *Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return b, nil
}
