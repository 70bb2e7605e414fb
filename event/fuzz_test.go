package event

import (
	"bufio"
	"bytes"
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
	if err := ev.Validate(); err != nil {
		t.Fatalf("accepted an event that does not validate: %v", err)
	}
	if err := checkControl(&ev); err != nil {
		t.Fatalf("accepted an event with a control character: %v", err)
	}
	b, err := Encode(&ev)
	if err != nil {
		t.Fatalf("cannot encode an accepted event: %v", err)
	}
	var again Event
	if err := NewDecoder(DecoderOptions{Format: FormatNative}).Decode(b, &again); err != nil {
		t.Fatalf("re-decoding %s: %v", b, err)
	}
	if !reflect.DeepEqual(again, ev) {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", again, ev)
	}
	// A republished event is a duplicate, never a conflict with itself
	// (issue 16, item 5): Diff must see no difference after a round trip.
	if diff := Diff(&ev, &again); diff != nil {
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
	paths, err := filepath.Glob(filepath.Join("testdata", "fhir", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
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
