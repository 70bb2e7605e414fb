package event

// FHIR R4 AuditEvent → Event (CONTRACT §1, IHE Basic Audit Log Patterns).
//
// Only the elements below are read; every other element is ignored. A full
// R4 model library was not used: it would make a whole resource fail over
// elements we never read and decodes far slower than these few structs.
//
//	Event field     AuditEvent element(s)
//	--------------  ---------------------------------------------------------------
//	(check)         resourceType must be "AuditEvent", else ReasonUnsupported
//	id              id (resource id); required
//	time            recorded (instant, RFC 3339 with offset); required; kept in UTC
//	org, system     DecoderOptions.Org, .System (the consumer's configuration)
//	action          1. subtype or type DICOM 110122 Login  → login
//	                   (login_failed when outcome ≠ "0"), 110123 Logout → logout
//	                2. type DICOM 110114 User Authentication without either
//	                   subtype → ReasonUnsupported
//	                3. type DICOM 110106 Export → export
//	                4. action C → create, R → view, U → update, D → delete,
//	                   E → search when it is a query (type or subtype DICOM 110112
//	                   Query; subtype restful-interaction search, search-type,
//	                   search-system; or an entity with a query), else view;
//	                   absent → ReasonMissingField, other → ReasonUnknownAction
//	outcome         absent or "0" → success; any other code (4, 8, 12) → failure
//	actor.id        the first agent with requestor = true: who.identifier.value,
//	                else the id of who.reference ("Practitioner/u-17" → "u-17");
//	                no requestor agent → ReasonMissingField
//	actor.role      that agent's first role[].coding[].code. agent.type is NOT
//	                used: it is the participation type (e.g. "humanuser",
//	                "IRCP"), not a job role, and would defeat role-based policy.
//	actor.org       that agent's who.identifier.assigner.identifier.value (the
//	                organisation that issued the user's identity: a partner
//	                agency for portal users); else empty
//	actor.team      not carried by FHIR; empty
//	session.ip      network.address of the requestor agent, or else of the agent
//	                of type DICOM 110153 Source Role ID (BALP puts the client's
//	                address there), when network.type is 2 (IP) or absent
//	session.device  the same network.address when network.type is 1 (machine
//	                name). source.observer is NOT used: it is the system that
//	                recorded the event, the same for every user, and would make
//	                every access look like one shared device.
//	session.id/mfa  R4 has no element for them; empty
//	subject.id      the first entity whose what.reference is Patient/{id} → id;
//	                else the first entity with type code 1 (Person) or
//	                "Patient", or role code 1 (Patient): the id of its
//	                what.reference, else what.identifier.value. The reference
//	                (the system's record id) is preferred over the identifier,
//	                which is often a national number the reference data does not
//	                use.
//	record.type/id  the first entity whose what.reference is any other resource
//	                but a person, organisation, device or place: type in
//	                kebab-case ("DocumentReference/d-1" → "document-reference",
//	                "d-1"), matching the native record types ("care-plan")
//	subject.sensitivity  not mapped (security labels are not the org's
//	                sensitivity categories)
//
// A reference's id is its last path segment after a resource type, with any
// "/_history/{version}" removed; absolute URLs work, "#contained" and
// "urn:uuid:" references carry no usable id.

import (
	"errors"
	"strings"
	"time"

	json "github.com/goccy/go-json/v2"
)

// Code systems the mapping looks at. An absent system is accepted too: many
// producers send bare codes.
const (
	systemDICOM       = "http://dicom.nema.org/resources/ontology/DCM"
	systemRESTful     = "http://hl7.org/fhir/restful-interaction"
	systemEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	systemObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	systemResourceTyp = "http://hl7.org/fhir/resource-types"
)

// DICOM codes used by the mapping.
const (
	dcmExport         = "110106"
	dcmQuery          = "110112"
	dcmUserAuth       = "110114"
	dcmLogin          = "110122"
	dcmLogout         = "110123"
	dcmSourceRoleID   = "110153"
	networkMachine    = "1"
	networkIP         = "2"
	entityTypePerson  = "1"
	objectRolePatient = "1"
)

type fhirCoding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type fhirCodeableConcept struct {
	Coding []fhirCoding `json:"coding"`
}

type fhirIdentifier struct {
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
}

type fhirAgent struct {
	Type      fhirCodeableConcept   `json:"type"`
	Role      []fhirCodeableConcept `json:"role"`
	Who       fhirReference         `json:"who"`
	Requestor bool                  `json:"requestor"`
	Network   struct {
		Address string `json:"address"`
		Type    string `json:"type"`
	} `json:"network"`
}

type fhirEntity struct {
	What fhirReference `json:"what"`
	Type fhirCoding    `json:"type"`
	Role fhirCoding    `json:"role"`
	// Query is only tested for presence; its content (base64 search
	// parameters) is never kept.
	Query string `json:"query"`
}

// fhirAuditEvent holds the elements of an R4 AuditEvent that the mapping
// reads.
type fhirAuditEvent struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Type         fhirCoding   `json:"type"`
	Subtype      []fhirCoding `json:"subtype"`
	Action       string       `json:"action"`
	Recorded     time.Time    `json:"recorded"`
	Outcome      string       `json:"outcome"`
	Agent        []fhirAgent  `json:"agent"`
	Entity       []fhirEntity `json:"entity"`
}

// decodeFHIR decodes one AuditEvent into *ev (see the table above).
func (d *Decoder) decodeFHIR(data []byte, ev *Event) *Error {
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
				return reject(ReasonUnsupported, "resourceType is not AuditEvent")
			}
		}
		return jsonError(err, "recorded")
	}
	if ae.ResourceType != "AuditEvent" {
		return reject(ReasonUnsupported, "resourceType is not AuditEvent")
	}
	switch {
	case ae.ID == "":
		return reject(ReasonMissingField, "id is required")
	case ae.Recorded.IsZero():
		return reject(ReasonMissingField, "recorded is required")
	}
	ev.ID = ae.ID
	var ok bool
	if ev.Time, ok = inUTC(ae.Recorded); !ok {
		return reject(ReasonInvalidField, "recorded is outside the years 0000 to 9999 in UTC")
	}
	ev.Org, ev.System = d.org, d.system
	ev.Outcome = OutcomeSuccess
	if ae.Outcome != "" && ae.Outcome != "0" {
		ev.Outcome = OutcomeFailure
	}
	action, err := fhirAction(&ae, ev.Outcome)
	if err != nil {
		return err
	}
	ev.Action = action

	requestor := -1
	for i := range ae.Agent {
		if ae.Agent[i].Requestor {
			requestor = i
			break
		}
	}
	if requestor < 0 {
		return reject(ReasonMissingField, "agent with requestor true is required")
	}
	a := &ae.Agent[requestor]
	ev.Actor.ID = a.Who.Identifier.Value
	if ev.Actor.ID == "" {
		_, ev.Actor.ID = splitReference(a.Who.Reference)
	}
	ev.Actor.Org = a.Who.Identifier.Assigner.Identifier.Value
role:
	for _, r := range a.Role {
		for _, c := range r.Coding {
			if c.Code != "" {
				ev.Actor.Role = c.Code
				break role
			}
		}
	}
	if !setNetwork(ev, a) {
		for i := range ae.Agent {
			if i != requestor && hasCode(ae.Agent[i].Type.Coding, systemDICOM, dcmSourceRoleID) && setNetwork(ev, &ae.Agent[i]) {
				break
			}
		}
	}
	mapEntities(ev, ae.Entity)
	return nil
}

// fhirAction maps type, subtype and action to an Action (see the table).
func fhirAction(ae *fhirAuditEvent, outcome Outcome) (Action, *Error) {
	switch {
	case ae.is(systemDICOM, dcmLogin):
		if outcome == OutcomeFailure {
			return ActionLoginFailed, nil
		}
		return ActionLogin, nil
	case ae.is(systemDICOM, dcmLogout):
		return ActionLogout, nil
	case ae.is(systemDICOM, dcmUserAuth):
		return "", reject(ReasonUnsupported, "user authentication event without a login or logout subtype")
	case ae.is(systemDICOM, dcmExport):
		return ActionExport, nil
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
		if isQuery(ae) {
			return ActionSearch, nil
		}
		return ActionView, nil
	case "":
		return "", reject(ReasonMissingField, "action is required")
	}
	return "", reject(ReasonUnknownAction, "action is not one of C, R, U, D, E")
}

func isQuery(ae *fhirAuditEvent) bool {
	if ae.is(systemDICOM, dcmQuery) ||
		ae.is(systemRESTful, "search") ||
		ae.is(systemRESTful, "search-type") ||
		ae.is(systemRESTful, "search-system") {
		return true
	}
	for i := range ae.Entity {
		if ae.Entity[i].Query != "" {
			return true
		}
	}
	return false
}

// is reports whether the type or a subtype of ae has code in system (or in
// no system).
func (ae *fhirAuditEvent) is(system, code string) bool {
	return hasCode([]fhirCoding{ae.Type}, system, code) || hasCode(ae.Subtype, system, code)
}

// hasCode reports whether one of cs has code and either system or none.
func hasCode(cs []fhirCoding, system, code string) bool {
	for _, c := range cs {
		if c.Code == code && (c.System == system || c.System == "") {
			return true
		}
	}
	return false
}

// setNetwork maps a's network address to the session; it reports whether a
// had one it could use.
func setNetwork(ev *Event, a *fhirAgent) bool {
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

// mapEntities finds the subject and the record among the entities.
func mapEntities(ev *Event, es []fhirEntity) {
	subject := -1
	for i := range es {
		if t, id := splitReference(es[i].What.Reference); t == "Patient" && id != "" {
			ev.Subject.ID, subject = id, i
			break
		}
	}
	if subject < 0 {
		for i := range es {
			e := &es[i]
			if !isPatientEntity(e) {
				continue
			}
			if _, id := splitReference(e.What.Reference); id != "" {
				ev.Subject.ID = id
			} else {
				ev.Subject.ID = e.What.Identifier.Value
			}
			if ev.Subject.ID != "" {
				subject = i
				break
			}
		}
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
	t, r := e.Type, e.Role
	return (t.Code == entityTypePerson && (t.System == systemEntityType || t.System == "")) ||
		(t.Code == "Patient" && (t.System == systemResourceTyp || t.System == "")) ||
		(r.Code == objectRolePatient && (r.System == systemObjectRole || r.System == ""))
}

// notRecord are resource types that name a party or a place, not a part of
// the subject's file.
var notRecord = map[string]bool{
	"Patient": true, "Practitioner": true, "PractitionerRole": true, "RelatedPerson": true,
	"Person": true, "Organization": true, "Device": true, "Location": true,
	"Endpoint": true, "Group": true, "HealthcareService": true, "CareTeam": true,
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
