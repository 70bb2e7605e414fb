package kafkaref

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-json/jsontext"
	json "github.com/goccy/go-json/v2"

	"github.com/dpiawatch/dpiawatch/reference"
)

// Kind is one kind of reference row, and so one topic.
type Kind string

// The kinds of CONTRACT §2, one per CSV file.
const (
	KindStaff             Kind = "staff"
	KindRelationships     Kind = "relationships"
	KindShifts            Kind = "shifts"
	KindAbsences          Kind = "absences"
	KindDevices           Kind = "devices"
	KindSharingAgreements Kind = "sharing-agreements"
	// KindSubjects is subjects.csv's rows (beside CONTRACT §2): optional,
	// read only when its topic is configured.
	KindSubjects Kind = "subjects"
)

// Kinds returns every kind, in CONTRACT §2 order, then subjects.
func Kinds() []Kind {
	return []Kind{KindStaff, KindRelationships, KindShifts, KindAbsences, KindDevices, KindSharingAgreements, KindSubjects}
}

// DefaultTopic is the topic a kind is read from unless configured:
// dpiawatch-ref-<kind>.
func DefaultTopic(k Kind) string { return "dpiawatch-ref-" + string(k) }

// RowError is one message that is not a valid row. It names where the
// message is and which field is wrong, never a value: rows are personal data.
type RowError struct {
	Topic     string
	Partition int
	Offset    int64
	Field     string // empty for problems of the whole message
	Msg       string
}

func (e *RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s[%d]@%d: %s", e.Topic, e.Partition, e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s[%d]@%d: %s: %s", e.Topic, e.Partition, e.Offset, e.Field, e.Msg)
}

// fieldError is a RowError before its position is known.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func errf(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// The wire rows: the CSV's column names as keys. Fields whose JSON type
// may vary (lists, booleans) are kept raw and read by hand.
type (
	staffWire struct {
		ActorID    string         `json:"actor_id"`
		Org        string         `json:"org"`
		Role       string         `json:"role"`
		Team       string         `json:"team"`
		External   jsontext.Value `json:"external"`
		ActiveFrom string         `json:"active_from"`
		ActiveTo   string         `json:"active_to"`
	}
	relationshipWire struct {
		ActorID   string `json:"actor_id"`
		Team      string `json:"team"`
		SubjectID string `json:"subject_id"`
		Relation  string `json:"relation"`
		ValidFrom string `json:"valid_from"`
		ValidTo   string `json:"valid_to"`
		Org       string `json:"org,omitempty"` // optional (CONTRACT §2): empty applies in every org
	}
	intervalWire struct { // shifts and absences
		ActorID string `json:"actor_id"`
		Start   string `json:"start"`
		End     string `json:"end"`
		Kind    string `json:"kind"`
		Org     string `json:"org,omitempty"` // as relationshipWire.Org
	}
	deviceWire struct {
		DeviceID   string `json:"device_id"`
		Org        string `json:"org"`
		Kind       string `json:"kind"`
		AssignedTo string `json:"assigned_to"`
		Location   string `json:"location"`
	}
	subjectWire struct {
		SubjectID  string `json:"subject_id"`
		Org        string `json:"org"`
		DisplayRef string `json:"display_ref"`
	}
	sharingWire struct {
		PartnerOrg  string         `json:"partner_org"`
		Org         string         `json:"org"`
		RecordTypes jsontext.Value `json:"record_types"`
		Actions     jsontext.Value `json:"actions"`
		ValidFrom   string         `json:"valid_from"`
		ValidTo     string         `json:"valid_to"`
	}
)

// decoder turns message values into rows, sharing the storage of values
// that repeat across millions of rows (teams, roles, relation kinds).
type decoder struct{ strs map[string]string }

func newDecoder() *decoder { return &decoder{strs: map[string]string{}} }

func (d *decoder) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := d.strs[s]; ok {
		return v
	}
	d.strs[s] = s
	return s
}

// unmarshal decodes value into w, turning decoder errors into field
// errors that never quote the input.
func unmarshal[T any](value []byte, w *T) error {
	err := json.UnmarshalOf(value, w)
	if err == nil {
		return nil
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			return errf("", "duplicate member name at byte %d", syn.ByteOffset)
		}
		return errf("", "not valid JSON (at byte %d)", syn.ByteOffset)
	}
	var sem *json.SemanticError
	if errors.As(err, &sem) {
		if tok := strings.TrimPrefix(string(sem.JSONPointer), "/"); tok != "" && !strings.ContainsAny(tok, "/~") {
			return errf(tok, "has the wrong JSON type (want a string)")
		}
		return errf("", "not a JSON object")
	}
	return errf("", "not valid JSON")
}

func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return errf(field, "value is required")
	}
	return nil
}

// parseTime reads an RFC 3339 time; "" is the zero time, an error unless
// optional.
func parseTime(field, v string, optional bool) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		if optional {
			return time.Time{}, nil
		}
		return time.Time{}, errf(field, "value is required")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errf(field, "not an RFC 3339 time")
	}
	return t, nil
}

func window(fromField string, from time.Time, toField string, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return errf(toField, "is before %s", fromField)
	}
	return nil
}

// parseBool accepts a JSON boolean, null, or the CSV's spellings as a string.
func parseBool(field string, v jsontext.Value) (bool, error) {
	switch v.Kind() {
	case 0, 'n':
		return false, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "", "false", "no", "0":
				return false, nil
			case "true", "yes", "1":
				return true, nil
			}
		}
	}
	return false, errf(field, "not a boolean (true/false, yes/no, 1/0)")
}

// parseList accepts a JSON array of strings, a ";"-separated string, or null.
func (d *decoder) parseList(field string, v jsontext.Value) ([]string, error) {
	var parts []string
	switch v.Kind() {
	case 0, 'n':
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, errf(field, "not a string")
		}
		parts = strings.Split(s, ";")
	case '[':
		if err := json.Unmarshal(v, &parts); err != nil {
			return nil, errf(field, "not an array of strings")
		}
	default:
		return nil, errf(field, "not a list (an array of strings or a \";\"-separated string)")
	}
	if len(v) > reference.MaxListCellBytes {
		return nil, errf(field, "is longer than %d bytes", reference.MaxListCellBytes)
	}
	out := parts[:0]
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if msg := reference.CheckCell(p, reference.MaxCellBytes); msg != "" {
			return nil, errf(field, "%s", msg)
		}
		if p != "" {
			out = append(out, d.intern(p))
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return slices.Clip(out), nil
}

func (d *decoder) staff(key string, value []byte) (reference.Staff, error) {
	var w staffWire
	if err := unmarshal(value, &w); err != nil {
		return reference.Staff{}, err
	}
	if err := cells("actor_id", w.ActorID, "org", w.Org, "role", w.Role, "team", w.Team, "active_from", w.ActiveFrom, "active_to", w.ActiveTo); err != nil {
		return reference.Staff{}, err
	}
	s := reference.Staff{ActorID: strings.TrimSpace(w.ActorID), Org: d.intern(strings.TrimSpace(w.Org)),
		Role: d.intern(strings.TrimSpace(w.Role)), Team: d.intern(strings.TrimSpace(w.Team))}
	var errs [6]error
	errs[0] = required("actor_id", s.ActorID)
	errs[1] = required("org", s.Org)
	s.External, errs[2] = parseBool("external", w.External)
	s.ActiveFrom, errs[3] = parseTime("active_from", w.ActiveFrom, false)
	s.ActiveTo, errs[4] = parseTime("active_to", w.ActiveTo, true)
	if errs[0] == nil && errs[1] == nil && key != string(StaffKey(s)) {
		errs[5] = errf("key", `must be the row's ["org","actor_id"]`)
	}
	if err := first(errs[:]...); err != nil {
		return s, err
	}
	return s, window("active_from", s.ActiveFrom, "active_to", s.ActiveTo)
}

func (d *decoder) relationship(value []byte) (reference.Relationship, error) {
	var w relationshipWire
	if err := unmarshal(value, &w); err != nil {
		return reference.Relationship{}, err
	}
	if err := cells("actor_id", w.ActorID, "team", w.Team, "subject_id", w.SubjectID, "relation", w.Relation, "valid_from", w.ValidFrom, "valid_to", w.ValidTo, "org", w.Org); err != nil {
		return reference.Relationship{}, err
	}
	// Ids repeat too (ten rows a subject in a county): interned, a
	// row's strings are shared with every other row and with the Index.
	r := reference.Relationship{Org: d.intern(strings.TrimSpace(w.Org)), ActorID: d.intern(strings.TrimSpace(w.ActorID)), Team: d.intern(strings.TrimSpace(w.Team)),
		SubjectID: d.intern(strings.TrimSpace(w.SubjectID)), Relation: d.intern(strings.TrimSpace(w.Relation))}
	var errs [4]error
	errs[0] = required("subject_id", r.SubjectID)
	if (r.ActorID == "") == (r.Team == "") {
		errs[1] = errf("actor_id", "exactly one of actor_id and team must be set")
	}
	r.ValidFrom, errs[2] = parseTime("valid_from", w.ValidFrom, false)
	r.ValidTo, errs[3] = parseTime("valid_to", w.ValidTo, true)
	if err := first(errs[:]...); err != nil {
		return r, err
	}
	return r, window("valid_from", r.ValidFrom, "valid_to", r.ValidTo)
}

func (d *decoder) shift(value []byte) (reference.Shift, error) {
	var w intervalWire
	if err := unmarshal(value, &w); err != nil {
		return reference.Shift{}, err
	}
	if err := cells("actor_id", w.ActorID, "start", w.Start, "end", w.End, "org", w.Org); err != nil {
		return reference.Shift{}, err
	}
	s := reference.Shift{Org: d.intern(strings.TrimSpace(w.Org)), ActorID: d.intern(strings.TrimSpace(w.ActorID))}
	var errs [3]error
	errs[0] = required("actor_id", s.ActorID)
	s.Start, errs[1] = parseTime("start", w.Start, false)
	s.End, errs[2] = parseTime("end", w.End, false)
	if err := first(errs[:]...); err != nil {
		return s, err
	}
	if !s.End.After(s.Start) {
		return s, errf("end", "is not after start")
	}
	return s, nil
}

func (d *decoder) absence(value []byte) (reference.Absence, error) {
	var w intervalWire
	if err := unmarshal(value, &w); err != nil {
		return reference.Absence{}, err
	}
	if err := cells("actor_id", w.ActorID, "start", w.Start, "end", w.End, "kind", w.Kind, "org", w.Org); err != nil {
		return reference.Absence{}, err
	}
	a := reference.Absence{Org: d.intern(strings.TrimSpace(w.Org)), ActorID: d.intern(strings.TrimSpace(w.ActorID)), Kind: d.intern(strings.TrimSpace(w.Kind))}
	var errs [3]error
	errs[0] = required("actor_id", a.ActorID)
	a.Start, errs[1] = parseTime("start", w.Start, false)
	a.End, errs[2] = parseTime("end", w.End, true)
	if err := first(errs[:]...); err != nil {
		return a, err
	}
	return a, window("start", a.Start, "end", a.End)
}

func (d *decoder) device(key string, value []byte) (reference.Device, error) {
	var w deviceWire
	if err := unmarshal(value, &w); err != nil {
		return reference.Device{}, err
	}
	if err := cells("device_id", w.DeviceID, "org", w.Org, "kind", w.Kind, "assigned_to", w.AssignedTo, "location", w.Location); err != nil {
		return reference.Device{}, err
	}
	v := reference.Device{DeviceID: strings.TrimSpace(w.DeviceID), Org: d.intern(strings.TrimSpace(w.Org)),
		Kind: d.intern(strings.TrimSpace(w.Kind)), AssignedTo: d.intern(strings.TrimSpace(w.AssignedTo)),
		Location: d.intern(strings.TrimSpace(w.Location))}
	var errs [4]error
	errs[0] = required("device_id", v.DeviceID)
	errs[1] = required("org", v.Org)
	if errs[2] = required("kind", v.Kind); errs[2] == nil && !slices.Contains(reference.DeviceKinds, v.Kind) {
		errs[2] = errf("kind", "not a device kind (%s)", strings.Join(reference.DeviceKinds, ", "))
	}
	if errs[0] == nil && errs[1] == nil && key != string(DeviceKey(v)) {
		errs[3] = errf("key", `must be the row's ["org","device_id"]`)
	}
	return v, first(errs[:]...)
}

// subject reads a subjects row. Its display_ref is never interned (it is
// unique to a person) nor quoted in an error.
func (d *decoder) subject(key string, value []byte) (reference.Subject, error) {
	var w subjectWire
	if err := unmarshal(value, &w); err != nil {
		return reference.Subject{}, err
	}
	if err := cells("subject_id", w.SubjectID, "org", w.Org, "display_ref", w.DisplayRef); err != nil {
		return reference.Subject{}, err
	}
	v := reference.Subject{SubjectID: strings.TrimSpace(w.SubjectID), Org: d.intern(strings.TrimSpace(w.Org)), DisplayRef: strings.TrimSpace(w.DisplayRef)}
	var errs [4]error
	errs[0] = required("subject_id", v.SubjectID)
	errs[1] = required("org", v.Org)
	errs[2] = required("display_ref", v.DisplayRef)
	if errs[0] == nil && errs[1] == nil && key != string(SubjectKey(v)) {
		errs[3] = errf("key", `must be the row's ["org","subject_id"]`)
	}
	return v, first(errs[:]...)
}

func (d *decoder) sharingAgreement(value []byte) (reference.SharingAgreement, error) {
	var w sharingWire
	if err := unmarshal(value, &w); err != nil {
		return reference.SharingAgreement{}, err
	}
	if err := cells("partner_org", w.PartnerOrg, "org", w.Org, "valid_from", w.ValidFrom, "valid_to", w.ValidTo); err != nil {
		return reference.SharingAgreement{}, err
	}
	a := reference.SharingAgreement{PartnerOrg: d.intern(strings.TrimSpace(w.PartnerOrg)), Org: d.intern(strings.TrimSpace(w.Org))}
	var errs [6]error
	errs[0] = required("partner_org", a.PartnerOrg)
	errs[1] = required("org", a.Org)
	a.RecordTypes, errs[2] = d.parseList("record_types", w.RecordTypes)
	a.Actions, errs[3] = d.parseList("actions", w.Actions)
	a.ValidFrom, errs[4] = parseTime("valid_from", w.ValidFrom, false)
	a.ValidTo, errs[5] = parseTime("valid_to", w.ValidTo, true)
	if err := first(errs[:]...); err != nil {
		return a, err
	}
	return a, window("valid_from", a.ValidFrom, "valid_to", a.ValidTo)
}

// cells checks (name, value) pairs, trimmed, as LoadDir checks a CSV cell
// (reference.CheckCell), before any value is interned or kept.
func cells(nameValue ...string) error {
	for i := 0; i+1 < len(nameValue); i += 2 {
		if msg := reference.CheckCell(strings.TrimSpace(nameValue[i+1]), reference.MaxCellBytes); msg != "" {
			return errf(nameValue[i], "%s", msg)
		}
	}
	return nil
}

// first returns the first non-nil error: one field is reported per message,
// enough to find it, and the log stays one line a row.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
