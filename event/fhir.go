package event

// FHIR AuditEvent (R4 and R5) and Bundles of them → Event (CONTRACT §1, IHE
// Basic Audit Log Patterns). docs/fhir.md maps each BALP pattern and each
// HL7 example to what is stored and judged.
//
// Only the elements below are read; every other element is ignored. A full
// FHIR model library was not used: it would make a whole resource fail over
// elements we never read and decodes far slower than these few structs. R4
// and R5 are read by the same structs: where R5 renamed an element both
// names are read, and where it changed a type (outcome, entity.role) the
// struct accepts both shapes.
//
//	Event field     AuditEvent element(s)
//	--------------  ---------------------------------------------------------------
//	(check)         resourceType "AuditEvent"; "Bundle": see Bundles below;
//	                anything else → unsupported
//	id              id; required (missing_field AuditEvent.id)
//	time            recorded (instant, RFC 3339 with offset); required; in UTC
//	org, system     DecoderOptions.Org, .System (the consumer's configuration)
//	action          the codes of R4 type and subtype[], R5 category[] and
//	                code decide where they say more than action C/R/U/D/E
//	                (first matching row wins; system DICOM unless named):
//	                  110122 Login            → login (login_failed on failure)
//	                  110123 Logout           → logout
//	                  110114 User Authentication (neither of the two) → unsupported
//	                  110100 Application Activity, 110120 Application Start,
//	                  110121 Application Stop, 110101 Audit Log Used,
//	                  110107 Import, 110108 Network Entry, 110113 Security
//	                  Alert, "poke" (any system: RFC 1438-style liveness
//	                  pings some producers log), restful-interaction
//	                  capabilities           → unsupported (no record access)
//	                  iso-21089-lifecycle disclose or transmit, or the HIPAA
//	                  "Disclosure" code (no system)   → share
//	                  110106 Export          → export
//	                  110112 Query; restful-interaction search, search-type,
//	                  search-system, history-type, history-system → search
//	                  110105 DICOM Study Deleted; restful-interaction delete;
//	                  iso-21089-lifecycle destroy   → delete
//	                  restful-interaction create; iso-21089-lifecycle
//	                  originate              → create
//	                  restful-interaction update, patch; iso-21089-lifecycle
//	                  amend                  → update
//	                  restful-interaction read, vread, history-instance;
//	                  iso-21089-lifecycle access   → view
//	                else action C → create, R → view, U → update, D → delete,
//	                E → search when an entity carries a query, else view;
//	                absent → missing_field, other → unknown_action
//	outcome         R4 code string, R5 outcome.code.code: absent or "0" →
//	                success; any other code (4, 8, 12) → failure
//	actor           the first agent with requestor = true (none → missing_field
//	                AuditEvent.agent). Its id from, in the topic's order of
//	                preference (FHIROptions.ActorFrom; default identifier,
//	                reference, display): who.identifier (see Identifiers),
//	                the id of who.reference ("Practitioner/u-17" → "u-17"),
//	                who.display. None usable → missing_field
//	                AuditEvent.agent[i].who
//	actor.kind      who.reference Patient, or agent.type v3-RoleClass PAT →
//	                patient; RelatedPerson (or PRS) → related-person; Device or
//	                Organization → system; else staff (absent in JSON)
//	actor.role      that agent's first role[].coding[].code. agent.type is NOT
//	                used: it is the participation type (e.g. "humanuser",
//	                "IRCP"), not a job role, and would defeat role-based policy.
//	actor.org       who.identifier.assigner.identifier.value (the organisation
//	                that issued the user's identity: a partner agency for
//	                portal users); else empty
//	actor.team      not carried by FHIR; empty
//	session.ip,     the requestor agent's address, else that of the agent the
//	session.device  data flowed to or from on the client's side: for view,
//	                search, export and share (data flows to the client) the
//	                DICOM 110152 Destination, then 110153 Source; for the
//	                others 110153 then 110152; else any agent with one. R4
//	                network.address with type 2 (IP) or absent → ip, type 1
//	                (machine name) → device, other types unused; R5
//	                networkString → ip when it parses as an IP address, else
//	                device. source.observer is NOT used: it is the system
//	                that recorded the event, the same for every user.
//	session.id/mfa  no element for them; empty
//	subject.id      R5 patient (a Patient reference); else the first entity
//	                whose what.reference is Patient/{id}; else the first entity
//	                of R4 type 1 (Person) or "Patient", or role 1 (Patient):
//	                the id of its what.reference, else its what.identifier
//	                (see Identifiers). Optional for search and for failures
//	                (CONTRACT §1: a query without a patient, a refused create)
//	record.type/id  the first entity whose what.reference is any other resource
//	                but a person, organisation, device or place: type in
//	                kebab-case ("DocumentReference/d-1" → "document-reference",
//	                "d-1"), matching the native record types ("care-plan")
//	subject.sensitivity  not mapped (security labels are not the org's
//	                sensitivity categories)
//
// Identifiers (actor and subject): an HL7 v2 CX value
// ("e3cdfc81a0d24bd^^^&2.16.840.1.113883.4.2&ISO") is its first component,
// with the assigning authority (CX.4: an ISO universal id becomes
// "urn:oid:…") as its system, which wins over identifier.system. When the
// topic maps identifier systems (FHIROptions.IdentifierSystems: system →
// template with "{value}"), a mapped system's value becomes the template
// filled in, and a value of any other system becomes "system|value" (the
// FHIR token form), so that it can never be taken for an id of the
// reference data. With no mapping the value is used as it is.
//
// Bundles (any type: searchset, batch, transaction, collection, history, …)
// are unwrapped: each entry.resource that is an AuditEvent becomes an event
// or a rejection of its own, its paths starting "Bundle.entry[i].resource";
// its id is resource.id, else the id in entry.fullUrl ("urn:uuid:X" → X). An
// entry with no resource (a history deletion, a response) and search.mode
// include or outcome entries are skipped; any other resource is
// unsupported. A Bundle inside a Bundle is unsupported.
//
// A reference's id is its last path segment after a resource type, with any
// "/_history/{version}" removed; absolute URLs work, "#contained" and
// "urn:uuid:" references carry no usable id.

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json/jsontext"
	json "github.com/goccy/go-json/v2"
)

// Code systems the mapping looks at. An absent system is accepted too: many
// producers send bare codes.
const (
	systemDICOM       = "http://dicom.nema.org/resources/ontology/DCM"
	systemRESTful     = "http://hl7.org/fhir/restful-interaction"
	systemISO21089    = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
	systemEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	systemObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	systemResourceTyp = "http://hl7.org/fhir/resource-types"
	systemRoleClass   = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
	systemAny         = "*" // matches any system
)

// DICOM codes used by the mapping.
const (
	dcmSourceRoleID   = "110153"
	dcmDestRoleID     = "110152"
	networkMachine    = "1"
	networkIP         = "2"
	entityTypePerson  = "1"
	objectRolePatient = "1"
)

// ActorSource is an element an actor id may be taken from.
type ActorSource string

// The actor sources of FHIROptions.ActorFrom.
const (
	ActorFromIdentifier ActorSource = "identifier" // agent.who.identifier
	ActorFromReference  ActorSource = "reference"  // agent.who.reference
	ActorFromDisplay    ActorSource = "display"    // agent.who.display
)

// DefaultActorFrom is the order of preference when none is configured.
var DefaultActorFrom = []ActorSource{ActorFromIdentifier, ActorFromReference, ActorFromDisplay}

// FHIROptions configure how one topic's (or file's) FHIR AuditEvents map.
type FHIROptions struct {
	// ActorFrom lists where the actor id is taken from, in order of
	// preference; empty means DefaultActorFrom.
	ActorFrom []ActorSource
	// IdentifierSystems maps an identifier system (a URI; an OID written
	// "urn:oid:1.2.3" or "1.2.3") to the template of the id reference data
	// uses, "{value}" standing for the identifier's value: for example
	// "https://fhir.nhs.uk/Id/nhs-number" → "nhs-{value}". See the mapping
	// table (Identifiers).
	IdentifierSystems map[string]string
}

// ParseActorSource returns the ActorSource named s.
func ParseActorSource(s string) (ActorSource, error) {
	switch a := ActorSource(s); a {
	case ActorFromIdentifier, ActorFromReference, ActorFromDisplay:
		return a, nil
	}
	return "", errors.New("unknown actor source " + strconv.Quote(s) + " (want identifier, reference or display)")
}

// normalSystem writes a bare OID as the URI FHIR uses for it.
func normalSystem(s string) string {
	if s != "" && strings.Trim(s, "0123456789.") == "" {
		return "urn:oid:" + s
	}
	return s
}

// fhirMapping is FHIROptions prepared for decoding.
type fhirMapping struct {
	actorFrom []ActorSource
	systems   map[string]string // normalised system → template
}

// Validate reports whether o can be used: known actor sources, and
// templates that use the value.
func (o FHIROptions) Validate() error {
	_, err := newFHIRMapping(o)
	return err
}

func newFHIRMapping(o FHIROptions) (fhirMapping, error) {
	m := fhirMapping{actorFrom: o.ActorFrom}
	if len(m.actorFrom) == 0 {
		m.actorFrom = DefaultActorFrom
	}
	for _, a := range m.actorFrom {
		if _, err := ParseActorSource(string(a)); err != nil {
			return m, err
		}
	}
	if len(o.IdentifierSystems) > 0 {
		m.systems = make(map[string]string, len(o.IdentifierSystems))
		for s, tmpl := range o.IdentifierSystems {
			if s == "" || !strings.Contains(tmpl, "{value}") {
				return m, errors.New("identifier system " + strconv.Quote(s) + ": the template must contain {value}")
			}
			m.systems[normalSystem(s)] = tmpl
		}
	}
	return m, nil
}

type fhirCoding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// fhirConcept is a Coding (R4) or a CodeableConcept (R5) where R5 changed
// one into the other: both are objects, so one struct reads either.
type fhirConcept struct {
	System string       `json:"system"`
	Code   string       `json:"code"`
	Coding []fhirCoding `json:"coding"`
}

// has reports whether c has code in system (or in no system).
func (c *fhirConcept) has(system, code string) bool {
	if c.Code == code && systemMatches(c.System, system) {
		return true
	}
	return hasCode(c.Coding, system, code)
}

type fhirIdentifier struct {
	System   string `json:"system"`
	Value    string `json:"value"`
	Assigner struct {
		Identifier struct {
			Value string `json:"value"`
		} `json:"identifier"`
	} `json:"assigner"`
}

type fhirReference struct {
	Reference  string         `json:"reference"`
	Identifier fhirIdentifier `json:"identifier"`
	Display    string         `json:"display"`
}

type fhirAgent struct {
	Type      fhirConcept   `json:"type"`
	Role      []fhirConcept `json:"role"`
	Who       fhirReference `json:"who"`
	Requestor bool          `json:"requestor"`
	Network   struct {      // R4
		Address string `json:"address"`
		Type    string `json:"type"`
	} `json:"network"`
	NetworkString string `json:"networkString"` // R5
}

type fhirEntity struct {
	What fhirReference `json:"what"`
	Type fhirCoding    `json:"type"` // R4 only
	Role fhirConcept   `json:"role"` // R4 Coding, R5 CodeableConcept
	// Query is only tested for presence; its content (base64 search
	// parameters) is never kept.
	Query string `json:"query"`
}

// fhirAuditEvent holds the elements of an R4 or R5 AuditEvent that the
// mapping reads.
type fhirAuditEvent struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Type         fhirCoding    `json:"type"`     // R4
	Subtype      []fhirCoding  `json:"subtype"`  // R4
	Category     []fhirConcept `json:"category"` // R5
	Code         fhirConcept   `json:"code"`     // R5
	Action       string        `json:"action"`
	Recorded     time.Time     `json:"recorded"`
	// Outcome is a code string in R4 and an object in R5 (outcomeCode).
	Outcome jsontext.Value `json:"outcome"`
	Patient fhirReference  `json:"patient"` // R5
	Agent   []fhirAgent    `json:"agent"`
	Entity  []fhirEntity   `json:"entity"`
}

// find returns the element of ae whose codes hold code in system
// (systemAny: any system; else that system or none) — "type", "subtype",
// "category" or "code", with its index in an array (else -1) — or "".
func (ae *fhirAuditEvent) find(system, code string) (string, int) {
	if ae.Type.Code == code && systemMatches(ae.Type.System, system) {
		return "type", -1
	}
	for i, c := range ae.Subtype {
		if c.Code == code && systemMatches(c.System, system) {
			return "subtype", i
		}
	}
	for i := range ae.Category {
		if ae.Category[i].has(system, code) {
			return "category", i
		}
	}
	if ae.Code.has(system, code) {
		return "code", -1
	}
	return "", -1
}

func systemMatches(got, want string) bool {
	return want == systemAny || got == want || got == ""
}

// hasCode reports whether one of cs has code and either system or none.
func hasCode(cs []fhirCoding, system, code string) bool {
	for _, c := range cs {
		if c.Code == code && systemMatches(c.System, system) {
			return true
		}
	}
	return false
}

// outcomeCode returns the outcome code of R4 ("4") or R5
// ({"code":{"code":"4"}}).
func outcomeCode(v jsontext.Value, path string) (string, *Error) {
	if len(v) == 0 {
		return "", nil
	}
	switch v[0] {
	case '"':
		// The R4 code as it is almost always written: no escapes, no
		// allocation.
		if len(v) >= 2 && v[len(v)-1] == '"' && bytes.IndexByte(v[1:len(v)-1], '\\') < 0 {
			if code := v[1 : len(v)-1]; len(code) == 1 && code[0] == '0' {
				return "0", nil
			}
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", rejectAt(ReasonMalformed, path+".outcome", "outcome is not a valid string")
		}
		return s, nil
	case '{':
		var o struct {
			Code fhirCoding `json:"code"`
		}
		if err := json.Unmarshal(v, &o); err != nil {
			return "", rejectAt(ReasonMalformed, path+".outcome.code", "outcome.code has the wrong JSON type")
		}
		return o.Code.Code, nil
	case 'n':
		return "", nil
	}
	return "", rejectAt(ReasonMalformed, path+".outcome", "outcome has the wrong JSON type")
}

// rejectAt is reject for a FHIR element: the detail starts with its path,
// which Error.Path holds too.
func rejectAt(r Reason, path, format string, args ...any) *Error {
	e := reject(r, path+": "+format, args...)
	e.Path = path
	return e
}

// resourceTypeOf returns the value of the first member of the object in
// data when that member is "resourceType" and a plain string, as FHIR
// serialisations put it; else "" and false.
func resourceTypeOf(data []byte) (string, bool) {
	rest := bytes.TrimLeft(data, " \t\r\n")
	if len(rest) == 0 || rest[0] != '{' {
		return "", false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if !bytes.HasPrefix(rest, []byte(`"resourceType"`)) {
		return "", false
	}
	rest = bytes.TrimLeft(rest[len(`"resourceType"`):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return "", false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return "", false
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 || bytes.IndexByte(rest[1:end+1], '\\') >= 0 {
		return "", false
	}
	return string(rest[1 : end+1]), true
}

// decodeFHIR decodes one AuditEvent into *ev (see the table above).
func (d *Decoder) decodeFHIR(data []byte, ev *Event) *Error {
	return d.decodeAuditEvent(data, ev, "AuditEvent", "")
}

// decodeAuditEvent decodes the AuditEvent in data; path names it in
// errors and fallbackID is its id when it has none (a Bundle entry's
// fullUrl).
func (d *Decoder) decodeAuditEvent(data []byte, ev *Event, path, fallbackID string) *Error {
	*ev = Event{}
	var ae fhirAuditEvent
	if err := json.UnmarshalOf(data, &ae); err != nil {
		// Another resource may clash with AuditEvent's types (a Bundle's
		// "type" is a string): it is unsupported, not malformed.
		var sem *json.SemanticError
		if errors.As(err, &sem) {
			var rt struct {
				ResourceType string `json:"resourceType"`
			}
			if json.Unmarshal(data, &rt) == nil && rt.ResourceType != "AuditEvent" {
				return rejectAt(ReasonUnsupported, path+".resourceType", "resourceType is not AuditEvent")
			}
		}
		return fhirJSONError(err, path)
	}
	return d.mapAuditEvent(&ae, ev, path, fallbackID)
}

// mapAuditEvent maps a decoded AuditEvent into *ev (see the table above).
func (d *Decoder) mapAuditEvent(ae *fhirAuditEvent, ev *Event, path, fallbackID string) *Error {
	if ae.ResourceType != "AuditEvent" {
		return rejectAt(ReasonUnsupported, path+".resourceType", "resourceType is not AuditEvent")
	}
	if ae.ID == "" {
		ae.ID = fallbackID
	}
	switch {
	case ae.ID == "":
		return rejectAt(ReasonMissingField, path+".id", "id is required")
	case ae.Recorded.IsZero():
		return rejectAt(ReasonMissingField, path+".recorded", "recorded is required")
	}
	ev.ID = ae.ID
	var ok bool
	if ev.Time, ok = inUTC(ae.Recorded); !ok {
		return rejectAt(ReasonInvalidField, path+".recorded", "recorded is outside the years 0000 to 9999 in UTC")
	}
	ev.Org, ev.System = d.org, d.system
	code, err := outcomeCode(ae.Outcome, path)
	if err != nil {
		return err
	}
	ev.Outcome = OutcomeSuccess
	if code != "" && code != "0" {
		ev.Outcome = OutcomeFailure
	}
	if ev.Action, err = fhirAction(ae, ev.Outcome, path); err != nil {
		return err
	}

	requestor := -1
	for i := range ae.Agent {
		if ae.Agent[i].Requestor {
			requestor = i
			break
		}
	}
	if requestor < 0 {
		return rejectAt(ReasonMissingField, path+".agent", "an agent with requestor true is required")
	}
	a := &ae.Agent[requestor]
	ev.Actor.ID = d.fhir.actorID(&a.Who)
	if ev.Actor.ID == "" {
		return rejectAt(ReasonMissingField, path+".agent["+strconv.Itoa(requestor)+"].who",
			"the requestor has no usable %s", actorSources(d.fhir.actorFrom))
	}
	ev.Actor.Kind = actorKind(a)
	ev.Actor.Org = a.Who.Identifier.Assigner.Identifier.Value
role:
	for _, r := range a.Role {
		if r.Code != "" {
			ev.Actor.Role = r.Code
			break
		}
		for _, c := range r.Coding {
			if c.Code != "" {
				ev.Actor.Role = c.Code
				break role
			}
		}
	}
	setSession(ev, ae.Agent, requestor)
	d.fhir.mapEntities(ev, ae)
	if ev.Subject.ID == "" && ev.Action.IsRecordAction() && ev.Action != ActionSearch && ev.Outcome != OutcomeFailure {
		// Validate's rule, said where a producer looks for it.
		return rejectAt(ReasonMissingField, path+".entity", "no Patient entity: a successful %s needs a subject", ev.Action)
	}
	return nil
}

// actorSources names the sources for a missing_field detail.
func actorSources(from []ActorSource) string {
	var b strings.Builder
	for i, a := range from {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(string(a))
	}
	return b.String()
}

// actorID takes the actor id from who, in the configured order.
func (m *fhirMapping) actorID(who *fhirReference) string {
	for _, src := range m.actorFrom {
		var id string
		switch src {
		case ActorFromIdentifier:
			id = m.identifier(&who.Identifier)
		case ActorFromReference:
			_, id = splitReference(who.Reference)
		case ActorFromDisplay:
			id = strings.TrimSpace(who.Display)
		}
		if id != "" {
			return id
		}
	}
	return ""
}

// identifier returns the id an identifier stands for (see Identifiers in
// the mapping table), or "" when it has no value.
func (m *fhirMapping) identifier(id *fhirIdentifier) string {
	value, system := id.Value, id.System
	if strings.IndexByte(value, '^') >= 0 {
		value, system = splitCX(value, system)
	}
	if value == "" || m.systems == nil {
		return value
	}
	system = normalSystem(system)
	if tmpl, ok := m.systems[system]; ok {
		return strings.ReplaceAll(tmpl, "{value}", value)
	}
	if system == "" {
		return value
	}
	return system + "|" + value
}

// splitCX splits an HL7 v2 CX value ("id^check^scheme^ns&oid&ISO") into the
// id and the system of its assigning authority (CX.4), keeping system when
// CX.4 names none.
func splitCX(cx, system string) (string, string) {
	parts := strings.SplitN(cx, "^", 5)
	if len(parts) < 4 || parts[3] == "" {
		return parts[0], system
	}
	hd := strings.SplitN(parts[3], "&", 3)
	switch {
	case len(hd) == 3 && hd[1] != "" && strings.EqualFold(hd[2], "ISO"):
		return parts[0], "urn:oid:" + hd[1]
	case len(hd) >= 2 && hd[1] != "":
		return parts[0], hd[1]
	case hd[0] != "":
		return parts[0], hd[0]
	}
	return parts[0], system
}

// actorKind tells a patient, a relative or a system acting from staff.
func actorKind(a *fhirAgent) ActorKind {
	switch t, _ := splitReference(a.Who.Reference); {
	case t == "Patient" || a.Type.has(systemRoleClass, "PAT"):
		return ActorPatient
	case t == "RelatedPerson" || a.Type.has(systemRoleClass, "PRS"):
		return ActorRelatedPerson
	case t == "Device" || t == "Organization":
		return ActorSystem
	}
	return ActorStaff
}

// codeRule is one row of the type/subtype table: a code that decides the
// action (or, with no action, makes the event unsupported).
type codeRule struct {
	system, code string
	action       Action
}

// codeRules is the type/subtype table of the mapping, in order.
var codeRules = []codeRule{
	{systemDICOM, "110122", ActionLogin},
	{systemDICOM, "110123", ActionLogout},
	{systemDICOM, "110114", ""},
	{systemDICOM, "110100", ""},
	{systemDICOM, "110120", ""},
	{systemDICOM, "110121", ""},
	{systemDICOM, "110101", ""},
	{systemDICOM, "110107", ""},
	{systemDICOM, "110108", ""},
	{systemDICOM, "110113", ""},
	{systemAny, "poke", ""},
	{systemRESTful, "capabilities", ""},
	{systemISO21089, "disclose", ActionShare},
	{systemISO21089, "transmit", ActionShare},
	{"", "Disclosure", ActionShare},
	{systemDICOM, "110106", ActionExport},
	{systemDICOM, "110112", ActionSearch},
	{systemRESTful, "search", ActionSearch},
	{systemRESTful, "search-type", ActionSearch},
	{systemRESTful, "search-system", ActionSearch},
	{systemRESTful, "history-type", ActionSearch},
	{systemRESTful, "history-system", ActionSearch},
	{systemDICOM, "110105", ActionDelete},
	{systemRESTful, "delete", ActionDelete},
	{systemISO21089, "destroy", ActionDelete},
	{systemRESTful, "create", ActionCreate},
	{systemISO21089, "originate", ActionCreate},
	{systemRESTful, "update", ActionUpdate},
	{systemRESTful, "patch", ActionUpdate},
	{systemISO21089, "amend", ActionUpdate},
	{systemRESTful, "read", ActionView},
	{systemRESTful, "vread", ActionView},
	{systemRESTful, "history-instance", ActionView},
	{systemISO21089, "access", ActionView},
}

// fhirAction maps type, subtype, category, code and action to an Action
// (see the table).
func fhirAction(ae *fhirAuditEvent, outcome Outcome, path string) (Action, *Error) {
	for _, r := range codeRules {
		elem, i := ae.find(r.system, r.code)
		if elem == "" {
			continue
		}
		switch r.action {
		case "":
			p := path + "." + elem
			if i >= 0 {
				p += "[" + strconv.Itoa(i) + "]"
			}
			return "", rejectAt(ReasonUnsupported, p, "code %s is not an access to a record or a session", r.code)
		case ActionLogin:
			if outcome == OutcomeFailure {
				return ActionLoginFailed, nil
			}
		}
		return r.action, nil
	}
	switch ae.Action {
	case "C":
		return ActionCreate, nil
	case "R":
		return ActionView, nil
	case "U":
		return ActionUpdate, nil
	case "D":
		return ActionDelete, nil
	case "E":
		for i := range ae.Entity {
			if ae.Entity[i].Query != "" {
				return ActionSearch, nil
			}
		}
		return ActionView, nil
	case "":
		return "", rejectAt(ReasonMissingField, path+".action", "action is required")
	}
	return "", rejectAt(ReasonUnknownAction, path+".action", "action is not one of C, R, U, D, E")
}

// setSession maps the network address of the requestor, or else of the
// agent on the client's side (see the table), to the session.
func setSession(ev *Event, agents []fhirAgent, requestor int) {
	if setNetwork(ev, &agents[requestor]) {
		return
	}
	first, second := dcmSourceRoleID, dcmDestRoleID
	switch ev.Action {
	case ActionView, ActionSearch, ActionExport, ActionShare:
		first, second = dcmDestRoleID, dcmSourceRoleID
	}
	for _, code := range [...]string{first, second, ""} {
		for i := range agents {
			if i == requestor || (code != "" && !agents[i].Type.has(systemDICOM, code)) {
				continue
			}
			if setNetwork(ev, &agents[i]) {
				return
			}
		}
	}
}

// setNetwork maps a's network address to the session; it reports whether a
// had one it could use.
func setNetwork(ev *Event, a *fhirAgent) bool {
	if a.NetworkString != "" {
		if _, err := netip.ParseAddr(a.NetworkString); err == nil {
			ev.Session.IP = a.NetworkString
		} else {
			ev.Session.Device = a.NetworkString
		}
		return true
	}
	if a.Network.Address == "" {
		return false
	}
	switch a.Network.Type {
	case networkIP, "":
		ev.Session.IP = a.Network.Address
	case networkMachine:
		ev.Session.Device = a.Network.Address
	default:
		return false // telephone, email, URI: not a place a session comes from
	}
	return true
}

// mapEntities finds the subject and the record.
func (m *fhirMapping) mapEntities(ev *Event, ae *fhirAuditEvent) {
	es := ae.Entity
	subject := -1
	if t, id := splitReference(ae.Patient.Reference); t == "Patient" && id != "" {
		ev.Subject.ID = id
	}
	for i := range es {
		if ev.Subject.ID != "" {
			break
		}
		if t, id := splitReference(es[i].What.Reference); t == "Patient" && id != "" {
			ev.Subject.ID, subject = id, i
		}
	}
	for i := range es {
		if ev.Subject.ID != "" {
			break
		}
		e := &es[i]
		if !isPatientEntity(e) {
			continue
		}
		if _, id := splitReference(e.What.Reference); id != "" {
			ev.Subject.ID = id
		} else {
			ev.Subject.ID = m.identifier(&e.What.Identifier)
		}
		subject = i
	}
	for i := range es {
		if i == subject {
			continue
		}
		t, id := splitReference(es[i].What.Reference)
		if id == "" || notRecord[t] {
			continue
		}
		ev.Record.Type, ev.Record.ID = kebab(t), id
		return
	}
}

func isPatientEntity(e *fhirEntity) bool {
	t := e.Type
	return (t.Code == entityTypePerson && (t.System == systemEntityType || t.System == "")) ||
		(t.Code == "Patient" && (t.System == systemResourceTyp || t.System == "")) ||
		e.Role.has(systemObjectRole, objectRolePatient)
}

// notRecord are resource types that name a party or a place, not a part of
// the subject's file.
var notRecord = map[string]bool{
	"Patient": true, "Practitioner": true, "PractitionerRole": true, "RelatedPerson": true,
	"Person": true, "Organization": true, "Device": true, "Location": true,
	"Endpoint": true, "Group": true, "HealthcareService": true, "CareTeam": true,
}

// fhirJSONError is jsonError for a FHIR resource: the path is the FHIR
// path of the element, indices included ("AuditEvent.agent[0].who").
func fhirJSONError(err error, path string) *Error {
	var sem *json.SemanticError
	if errors.As(err, &sem) {
		p := fhirPath(path, sem.JSONPointer)
		if strings.HasSuffix(p, ".recorded") && sem.JSONKind == jsontext.KindString {
			return rejectAt(ReasonInvalidField, p, "recorded must be an RFC 3339 time with a UTC offset")
		}
		return rejectAt(ReasonMalformed, p, "wrong JSON type")
	}
	e := jsonError(err, "")
	e.Detail = path + ": " + e.Detail
	e.Path = path
	return e
}

// fhirPath appends a JSON pointer's member names and indices to path,
// leaving out anything else: a detail must never carry text from the
// message.
func fhirPath(path string, p jsontext.Pointer) string {
	var b strings.Builder
	b.WriteString(path)
	for tok := range p.Tokens() {
		switch {
		case isIndex(tok):
			b.WriteString("[" + tok + "]")
		case isPlainName(tok):
			b.WriteString("." + tok)
		}
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// splitReference returns the resource type and id of a FHIR reference
// ("Patient/1", "https://host/fhir/Patient/1/_history/2"), or two empty
// strings when it has none.
func splitReference(ref string) (typ, id string) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndexByte(ref, '/')
	if slash <= 0 || slash == len(ref)-1 {
		return "", ""
	}
	id, rest := ref[slash+1:], ref[:slash]
	typ = rest[strings.LastIndexByte(rest, '/')+1:]
	if !isResourceType(typ) {
		return "", ""
	}
	return typ, id
}

// isResourceType reports whether s looks like a FHIR resource type name:
// an upper-case ASCII letter followed by ASCII letters.
func isResourceType(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// kebab turns a resource type into the native record type style:
// "DocumentReference" → "document-reference".
func kebab(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
