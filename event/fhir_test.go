package event

import (
	"bytes"
	stdjson "encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fhirOptions are the topic settings the FHIR fixtures are decoded with.
var fhirOptions = DecoderOptions{Org: "st-martins", System: "fhir-gateway"}

// fhirFixtures returns the fixtures in testdata/<dir> (not their golden
// files).
func fhirFixtures(t testing.TB, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".golden.json") {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no fixtures in testdata/%s", dir)
	}
	return out
}

// goldenResult is what a fixture decodes to: an event or a rejection (of
// a Bundle's entry Entry).
type goldenResult struct {
	Entry  *int                `json:"entry,omitempty"`
	Event  *stdjson.RawMessage `json:"event,omitempty"`
	Reason Reason              `json:"reason,omitempty"`
	Detail string              `json:"detail,omitempty"`
	Path   string              `json:"path,omitempty"`
}

// resultOf is the golden form of a decoded event or of err.
func resultOf(t testing.TB, ev *Event, err error) goldenResult {
	t.Helper()
	var res goldenResult
	if err != nil {
		e := err.(*Error)
		res.Reason, res.Detail, res.Path = reasonOf(t, err), e.Detail, e.Path
		return res
	}
	b, encErr := Encode(ev)
	if encErr != nil {
		t.Fatal(encErr)
	}
	raw := stdjson.RawMessage(b)
	res.Event = &raw
	return res
}

// TestFHIRGolden decodes each fixture in testdata/fhir and compares the
// result with its .golden.json (go test -update rewrites them). Fixtures
// named err-* must be rejected, all others accepted. Auto-detection must give
// the same result as the FHIR format.
func TestFHIRGolden(t *testing.T) {
	for _, path := range fhirFixtures(t, "fhir") {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			o := fhirOptions
			o.Format = FormatFHIR
			var ev Event
			derr := NewDecoder(o).Decode(in, &ev)
			if wantErr := strings.HasPrefix(name, "err-"); wantErr != (derr != nil) {
				t.Errorf("error = %v, want an error: %v", derr, wantErr)
			}
			res := resultOf(t, &ev, derr)
			got, err := stdjson.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(path, ".json")+".golden.json", append(got, '\n'))

			o.Format = FormatAuto
			var auto Event
			aerr := NewDecoder(o).Decode(in, &auto)
			if !reflect.DeepEqual(aerr, derr) || !reflect.DeepEqual(auto, ev) {
				t.Errorf("auto format: %v %+v; fhir format: %v %+v", aerr, auto, derr, ev)
			}
		})
	}
}

// TestFHIRMapping checks single rules of the mapping on small resources.
func TestFHIRMapping(t *testing.T) {
	const (
		user    = `{"who":{"reference":"Practitioner/u-17"},"requestor":true}`
		patient = `{"what":{"reference":"Patient/secret-c-1"}}`
	)
	ae := func(action, outcome, head string, agents, entities string) string {
		s := `{"resourceType":"AuditEvent","id":"ae-1","recorded":"2026-03-02T21:14:05Z"`
		if action != "" {
			s += `,"action":"` + action + `"`
		}
		if outcome != "" {
			s += `,"outcome":"` + outcome + `"`
		}
		if head != "" {
			s += "," + head
		}
		return s + `,"agent":[` + agents + `],"entity":[` + entities + `]}`
	}
	const (
		login  = `"type":{"code":"110114"},"subtype":[{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110122"}]`
		logout = `"type":{"code":"110114"},"subtype":[{"code":"110123"}]`
	)
	tests := []struct {
		name  string
		in    string
		want  Reason
		check func(t *testing.T, ev *Event)
	}{
		{"C is create", ae("C", "", "", user, patient), "", wantAction(ActionCreate, OutcomeSuccess)},
		{"R is view", ae("R", "0", "", user, patient), "", wantAction(ActionView, OutcomeSuccess)},
		{"U is update", ae("U", "", "", user, patient), "", wantAction(ActionUpdate, OutcomeSuccess)},
		{"D is delete", ae("D", "", "", user, patient), "", wantAction(ActionDelete, OutcomeSuccess)},
		{"E is view", ae("E", "", "", user, patient), "", wantAction(ActionView, OutcomeSuccess)},
		{"E with query subtype is search", ae("E", "", `"subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"search-system"}]`, user, patient), "", wantAction(ActionSearch, OutcomeSuccess)},
		{"E with a query entity is search", ae("E", "", "", user, patient+`,{"query":"eD0x"}`), "", wantAction(ActionSearch, OutcomeSuccess)},
		{"query code of another system is not a query", ae("E", "", `"type":{"system":"urn:other","code":"110112"}`, user, patient), "", wantAction(ActionView, OutcomeSuccess)},
		{"outcome 4 is failure", ae("R", "4", "", user, patient), "", wantAction(ActionView, OutcomeFailure)},
		{"outcome 12 is failure", ae("R", "12", "", user, patient), "", wantAction(ActionView, OutcomeFailure)},
		{"login", ae("E", "0", login, user, ""), "", wantAction(ActionLogin, OutcomeSuccess)},
		{"failed login", ae("E", "4", login, user, ""), "", wantAction(ActionLoginFailed, OutcomeFailure)},
		{"logout", ae("E", "", logout, user, ""), "", wantAction(ActionLogout, OutcomeSuccess)},
		{"failed logout stays logout", ae("E", "8", logout, user, ""), "", wantAction(ActionLogout, OutcomeFailure)},
		{"login subtype wins over action", ae("R", "", login, user, ""), "", wantAction(ActionLogin, OutcomeSuccess)},
		{"action missing", ae("", "", "", user, patient), ReasonMissingField, nil},
		{"action lower case", ae("r", "", "", user, patient), ReasonUnknownAction, nil},
		{"record action without patient", ae("R", "", "", user, `{"what":{"reference":"CarePlan/cp-1"}}`), ReasonMissingField, nil},
		{"first requestor is the actor", ae("R", "", "", `{"who":{"reference":"Device/d"}},`+user+`,{"who":{"reference":"Practitioner/u-2"},"requestor":true}`, patient),
			"", func(t *testing.T, ev *Event) {
				if ev.Actor.ID != "u-17" {
					t.Errorf("actor = %q", ev.Actor.ID)
				}
			}},
		{"identifier wins over reference", ae("R", "", "", `{"who":{"reference":"Practitioner/p-9","identifier":{"value":"u-17"}},"requestor":true}`, patient),
			"", func(t *testing.T, ev *Event) {
				if ev.Actor.ID != "u-17" {
					t.Errorf("actor = %q", ev.Actor.ID)
				}
			}},
		{"agent.type is not the role", ae("R", "", "", `{"type":{"coding":[{"code":"humanuser"}]},"who":{"reference":"Practitioner/u-17"},"requestor":true}`, patient),
			"", func(t *testing.T, ev *Event) {
				if ev.Actor.Role != "" {
					t.Errorf("role = %q", ev.Actor.Role)
				}
			}},
		{"contained reference has no id", ae("R", "", "", `{"who":{"reference":"#u1"},"requestor":true}`, patient), ReasonMissingField, nil},
		{"urn reference has no id", ae("R", "", "", user, `{"what":{"reference":"urn:uuid:9b3f5a1e-0000-4000-8000-000000000001"}}`), ReasonMissingField, nil},
		{"email network address is not used", ae("R", "", "", `{"who":{"reference":"Practitioner/u-17"},"requestor":true,"network":{"address":"a@b.example","type":"4"}}`, patient),
			"", func(t *testing.T, ev *Event) {
				if ev.Session != (Session{}) {
					t.Errorf("session = %+v", ev.Session)
				}
			}},
		{"control character in a reference id", ae("R", "", "", user, `{"what":{"reference":"Patient/c\u00001"}}`), ReasonInvalidField, nil},
		{"right-to-left override in the requestor (issue 16, item 10)", ae("R", "", "", `{"who":{"identifier":{"value":"u-\u202e71"}},"requestor":true}`, patient), ReasonInvalidField, nil},
		{"agent as object", strings.Replace(ae("R", "", "", user, patient), `"agent":[`+user+`]`, `"agent":`+user, 1), ReasonMalformed, nil},
		{"requestor as string", ae("R", "", "", `{"who":{"reference":"Practitioner/u-17"},"requestor":"true"}`, patient), ReasonMalformed, nil},
		{"recorded without offset", strings.Replace(ae("R", "", "", user, patient), "05Z", "05", 1), ReasonInvalidField, nil},
		{"recorded after year 9999 in UTC", strings.Replace(ae("R", "", "", user, patient), "2026-03-02T21:14:05Z", "9999-12-31T23:59:59-00:01", 1), ReasonInvalidField, nil},
		{"recorded as number", strings.Replace(ae("R", "", "", user, patient), `"2026-03-02T21:14:05Z"`, `1772486045`, 1), ReasonMalformed, nil},
		{"duplicate member", strings.Replace(ae("R", "", "", user, patient), `"id":"ae-1"`, `"id":"ae-1","id":"ae-2"`, 1), ReasonMalformed, nil},
		{"no resourceType", strings.Replace(ae("R", "", "", user, patient), `"resourceType":"AuditEvent",`, "", 1), ReasonUnsupported, nil},
	}
	d := NewDecoder(DecoderOptions{Format: FormatFHIR, Org: "o", System: "s"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := d.Decode([]byte(tc.in), &ev)
			if got := reasonOf(t, err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
			if err == nil {
				if ev.Org != "o" || ev.System != "s" || ev.ID != "ae-1" {
					t.Errorf("org, system, id = %q, %q, %q", ev.Org, ev.System, ev.ID)
				}
				if tc.check != nil {
					tc.check(t, &ev)
				}
			}
		})
	}
}

func wantAction(a Action, o Outcome) func(t *testing.T, ev *Event) {
	return func(t *testing.T, ev *Event) {
		t.Helper()
		if ev.Action != a || ev.Outcome != o {
			t.Errorf("action, outcome = %q, %q; want %q, %q", ev.Action, ev.Outcome, a, o)
		}
	}
}

func TestSplitReference(t *testing.T) {
	for _, tc := range []struct{ in, typ, id string }{
		{"Patient/c-1", "Patient", "c-1"},
		{"Patient/c-1/_history/3", "Patient", "c-1"},
		{"https://crm.example.org/fhir/CarePlan/cp-9", "CarePlan", "cp-9"},
		{"https://crm.example.org/fhir/CarePlan/cp-9/_history/1", "CarePlan", "cp-9"},
		{"Patient/", "", ""},
		{"/c-1", "", ""},
		{"c-1", "", ""},
		{"#contained", "", ""},
		{"urn:uuid:1234", "", ""},
		{"patient/c-1", "", ""},
		{"Pat1ent/c-1", "", ""},
		{"", "", ""},
	} {
		typ, id := splitReference(tc.in)
		if typ != tc.typ || id != tc.id {
			t.Errorf("splitReference(%q) = %q, %q; want %q, %q", tc.in, typ, id, tc.typ, tc.id)
		}
	}
}

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"CarePlan": "care-plan", "DocumentReference": "document-reference", "Observation": "observation",
		"QuestionnaireResponse": "questionnaire-response",
	} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFHIRFixturesAreJSON guards the fixtures themselves.
func TestFHIRFixturesAreJSON(t *testing.T) {
	for _, p := range fhirFixtures(t, "fhir") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !stdjson.Valid(b) || !bytes.Contains(b, []byte(`"resourceType"`)) {
			t.Errorf("%s is not a FHIR resource", p)
		}
	}
}

// TestFHIRBundleGolden unwraps each Bundle in testdata/fhir-bundle (one per
// Bundle type, with good and bad entries) and compares every entry's event
// or rejection with its .golden.json. A refused entry's Resource is the
// entry's own JSON (its dead letter), and auto-detection agrees with the
// FHIR format.
func TestFHIRBundleGolden(t *testing.T) {
	for _, path := range fhirFixtures(t, "fhir-bundle") {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			o := fhirOptions
			o.Format = FormatFHIR
			got := NewDecoder(o).DecodeAll(in, nil)
			o.Format = FormatAuto
			if auto := NewDecoder(o).DecodeAll(in, nil); !reflect.DeepEqual(auto, got) {
				t.Errorf("auto format differs from fhir format:\n%+v\n%+v", auto, got)
			}
			res := make([]goldenResult, 0, len(got))
			for _, d := range got {
				r := resultOf(t, &d.Event, d.Err)
				r.Entry = &d.Entry
				if (d.Entry >= 0 && d.Err != nil) != (d.Resource != nil) || d.Resource != nil && !stdjson.Valid(d.Resource) {
					t.Errorf("entry %d: resource %q is not the entry's JSON", d.Entry, d.Resource)
				}
				res = append(res, r)
			}
			b, err := stdjson.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(path, ".json")+".golden.json", append(b, '\n'))
		})
	}
}
