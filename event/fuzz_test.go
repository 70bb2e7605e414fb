package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// checkDecoded is the property every fuzz input must have: Decode returns
// either nil and an event that validates and survives a round trip, or an
// *Error with a Reason from Reasons.
func checkDecoded(t *testing.T, d *Decoder, data []byte) {
	var ev Event
	err := d.Decode(data, &ev)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is a %T, not an *Error", err, err)
		}
		if !slices.Contains(Reasons, e.Reason) || e.Detail == "" {
			t.Fatalf("error %q has reason %q outside Reasons or no detail", e.Error(), e.Reason)
		}
		return
	}
	checkEvent(t, &ev)
}

// checkEvent asserts what every accepted event must be: valid, free of
// hidden characters, and unchanged by a round trip.
func checkEvent(t *testing.T, ev *Event) {
	if err := ev.Validate(); err != nil {
		t.Fatalf("accepted an event that does not validate: %v", err)
	}
	if err := checkControl(ev); err != nil {
		t.Fatalf("accepted an event with a control character: %v", err)
	}
	b, err := Encode(ev)
	if err != nil {
		t.Fatalf("cannot encode an accepted event: %v", err)
	}
	var again Event
	if err := NewDecoder(DecoderOptions{Format: FormatNative}).Decode(b, &again); err != nil {
		t.Fatalf("re-decoding %s: %v", b, err)
	}
	if !reflect.DeepEqual(again, *ev) {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", again, ev)
	}
	// A republished event is a duplicate, never a conflict with itself
	// (issue 16, item 5): Diff must see no difference after a round trip.
	if diff := Diff(ev, &again); diff != nil {
		t.Fatalf("a round trip differs from itself in %v", diff)
	}
}

func FuzzDecodeNative(f *testing.F) {
	file, err := os.Open(filepath.Join("testdata", "native", "events.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		contractExample, `{}`, `null`, `{"id":"a","id":"b"}`, `{"x":[[[[[]]]]]}`,
		`{"time":"2026-03-02T21:14:05"}`, "{\"id\":\"\xff\"}", `{"id":"\u0000"}`,
		`{"session":{"mfa":1e999}}`, `{"resourceType":"AuditEvent"}`,
	} {
		f.Add([]byte(s))
	}
	d := NewDecoder(DecoderOptions{Format: FormatNative})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, d, data)
	})
}

// FuzzDecodeFHIR is best run with -fuzzminimizetime=2s: minimizing a
// resource of several kilobytes otherwise holds the fuzzer up for a minute
// at each new input.
func FuzzDecodeFHIR(f *testing.F) {
	addFHIRSeeds(f, "fhir")
	// Small resources too: mutations of a large one rarely stay valid JSON.
	for _, s := range []string{
		`{"resourceType":"AuditEvent","id":"a","recorded":"2026-03-02T21:14:05Z","action":"R","agent":[{"who":{"reference":"Practitioner/u"},"requestor":true,"network":{"address":"10.0.0.1","type":"2"}}],"entity":[{"what":{"reference":"Patient/c/_history/1"}},{"what":{"reference":"CarePlan/p"}}]}`,
		`{"resourceType":"AuditEvent","id":"a","recorded":"2026-03-02T21:14:05+01:00","outcome":"4","type":{"code":"110114"},"subtype":[{"code":"110122"}],"agent":[{"who":{"identifier":{"value":"u","assigner":{"identifier":{"value":"o"}}}},"role":[{"coding":[{"code":"r"}]}],"requestor":true}]}`,
		`{"resourceType":"AuditEvent","id":"a","recorded":"2026-03-02T21:14:05Z","action":"E","subtype":[{"code":"search-type"}],"agent":[{"who":{"reference":"Practitioner/u"},"requestor":true}],"entity":[{"what":{"identifier":{"value":"c"}},"role":{"code":"1"}},{"query":"eA=="}]}`,
		`{"resourceType":"Patient","id":"c"}`,
	} {
		f.Add([]byte(s))
	}
	fhir := NewDecoder(DecoderOptions{Format: FormatFHIR, Org: "st-martins", System: "fhir-gateway"})
	auto := NewDecoder(DecoderOptions{Org: "st-martins", System: "fhir-gateway"})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, fhir, data)
		checkDecoded(t, auto, data)
	})
}

// checkDecodedAll is checkDecoded for DecodeAll: every event of a message
// has the properties of one Decode gives, Bundle entries come in order
// with their own JSON, and a message that is not a Bundle gives exactly
// what Decode gives.
func checkDecodedAll(t *testing.T, d *Decoder, data []byte) {
	res := d.DecodeAll(data, nil)
	last := -2
	for i := range res {
		r := &res[i]
		if r.Entry <= last && r.Entry >= 0 {
			t.Fatalf("entries out of order: %d after %d", r.Entry, last)
		}
		last = r.Entry
		if r.Entry >= 0 && r.Err != nil && !json.Valid(r.Resource) || r.Err == nil && r.Resource != nil {
			t.Fatalf("entry %d: resource %q is not the refused entry's JSON", r.Entry, r.Resource)
		}
		if r.Err == nil {
			checkEvent(t, &r.Event)
			continue
		}
		var e *Error
		if !errors.As(r.Err, &e) || !slices.Contains(Reasons, e.Reason) || e.Detail == "" {
			t.Fatalf("error %v is not an *Error with a known reason and a detail", r.Err)
		}
		if e.Path != "" && !strings.HasPrefix(e.Detail, e.Path+": ") {
			t.Fatalf("path %q is not at the start of detail %q", e.Path, e.Detail)
		}
	}
	if rt, _ := resourceTypeOf(data); rt != "Bundle" && !isBundle(data) || len(data) > d.maxBytes {
		if len(res) != 1 || res[0].Entry != -1 {
			t.Fatalf("%d results for one resource", len(res))
		}
		var ev Event
		err := d.Decode(data, &ev)
		if !reflect.DeepEqual(err, res[0].Err) || err == nil && !reflect.DeepEqual(ev, res[0].Event) {
			t.Fatalf("DecodeAll %v differs from Decode %v", res[0].Err, err)
		}
	}
}

// addFHIRSeeds adds the fixtures of testdata/<dir> to f's corpus.
func addFHIRSeeds(f *testing.F, dir string) {
	for _, p := range fhirFixtures(f, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeFHIRR5 fuzzes the R5 shapes: outcome as an object, category
// and code, entity.role as a CodeableConcept, patient, networkString.
func FuzzDecodeFHIRR5(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"AuditEvent","id":"a","category":[{"coding":[{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110114"}]}],"code":{"coding":[{"code":"110122"}]},"action":"E","recorded":"2026-03-02T09:00:00Z","outcome":{"code":{"code":"4"}},"agent":[{"who":{"identifier":{"value":"u"}},"requestor":true,"networkString":"10.0.0.1"}]}`,
		`{"resourceType":"AuditEvent","id":"a","code":{"coding":[{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}]},"action":"R","recorded":"2026-03-02T09:00:00Z","outcome":{"code":{"code":"0"}},"patient":{"reference":"Patient/c"},"agent":[{"who":{"display":"u"},"requestor":true,"networkString":"host-1"}],"entity":[{"what":{"reference":"CarePlan/p"},"role":{"coding":[{"code":"4"}]}}]}`,
		`{"resourceType":"AuditEvent","id":"a","code":{"coding":[{"code":"search"}]},"action":"E","recorded":"2026-03-02T09:00:00Z","outcome":null,"agent":[{"who":{"reference":"Patient/c"},"requestor":true}],"entity":[{"what":{"identifier":{"value":"c^^^&1.2.3&ISO"}},"role":{"coding":[{"code":"1"}]}}]}`,
	} {
		f.Add([]byte(s))
	}
	for _, p := range []string{"balp-r5-read.json", "balp-r5-login-failed.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fhir", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	d := NewDecoder(DecoderOptions{Format: FormatFHIR, Org: "st-martins", System: "fhir-gateway",
		FHIR: FHIROptions{ActorFrom: []ActorSource{ActorFromDisplay, ActorFromReference}, IdentifierSystems: map[string]string{"1.2.3": "c-{value}"}}})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, d, data)
		checkDecodedAll(t, d, data)
	})
}

// FuzzDecodeFHIRBundle fuzzes Bundle unwrapping.
func FuzzDecodeFHIRBundle(f *testing.F) {
	addFHIRSeeds(f, "fhir-bundle")
	for _, s := range []string{
		`{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":"urn:uuid:x","resource":{"resourceType":"AuditEvent","recorded":"2026-03-02T09:00:00Z","action":"C","outcome":"8","agent":[{"who":{"reference":"Practitioner/u"},"requestor":true}]}},{"resource":{"resourceType":"Patient"}},{"resource":[]},{}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Bundle","entry":[]}},{"search":{"mode":"include"},"resource":{"resourceType":"Patient"}}]}`,
		`{"resourceType":"Bundle","entry":null}`,
	} {
		f.Add([]byte(s))
	}
	d := NewDecoder(DecoderOptions{Format: FormatAuto, Org: "st-martins", System: "fhir-gateway"})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodedAll(t, d, data)
	})
}
