package reference

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/visible"
)

// The file names of CONTRACT §2.
const (
	FileStaff             = "staff.csv"
	FileRelationships     = "relationships.csv"
	FileShifts            = "shifts.csv"
	FileAbsences          = "absences.csv"
	FileDevices           = "devices.csv"
	FileSharingAgreements = "sharing_agreements.csv"
	// FileSubjects is optional and not in CONTRACT §2: local references
	// of the people whose records are opened, for the web UI only.
	FileSubjects = "subjects.csv"
)

// maxErrorsPerFile bounds the error report of one file: a wholly broken
// 2-million-row file must not turn into a gigabyte error string. The count
// of the rest is still reported.
const maxErrorsPerFile = 1000

// ParseError is one bad cell or row of a reference file.
type ParseError struct {
	File string
	Line int
	// Col is where the cell starts on its line, counted in bytes from 1 as
	// encoding/csv counts; 0 for row-level problems.
	Col    int
	Column string // the column's name; empty for row-level problems
	Msg    string
}

func (e *ParseError) Error() string {
	switch {
	case e.Column == "":
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Col == 0:
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Column, e.Msg)
}

// LoadDir reads the reference files of CONTRACT §2 present in dir; missing
// files are empty. Every problem of a file is reported (errors.Join of
// *ParseError), not only the first, so that a data steward can fix a file in
// one pass.
func LoadDir(dir string) (*Data, error) { return LoadDirWith(dir, LoadOptions{}) }

// LoadOptions changes what LoadDirWith reads.
type LoadOptions struct {
	// WithoutSubjects skips subjects.csv: its display references are for
	// the web UI, and a county's are as large as its relationships.
	// Replays and backtests judge without them (the checks never read
	// them, nor does the data's content hash).
	WithoutSubjects bool
}

// LoadDirWith is LoadDir, changed by o.
func LoadDirWith(dir string, o LoadOptions) (*Data, error) {
	d := &Data{}
	in := newInterner()
	var errs []error
	for _, name := range fileNames {
		if name == FileSubjects && o.WithoutSubjects {
			continue
		}
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reference: %w", err))
			continue
		}
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		err = loadFile(name, f, size, d, in)
		f.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// fileNames are the files of CONTRACT §2, in the order LoadDir reads them.
var fileNames = []string{FileStaff, FileRelationships, FileShifts, FileAbsences, FileDevices, FileSharingAgreements, FileSubjects}

// loadFile reads the file called name (one of fileNames) from r into d;
// size is its length when known, a capacity hint.
func loadFile(name string, r io.Reader, size int64, d *Data, in interner) error {
	t := newTable(name, r)
	t.size = size
	switch name {
	case FileStaff:
		return loadStaff(t, d, in)
	case FileRelationships:
		return loadRelationships(t, d, in)
	case FileShifts:
		return loadShifts(t, d, in)
	case FileAbsences:
		return loadAbsences(t, d, in)
	case FileDevices:
		return loadDevices(t, d, in)
	case FileSharingAgreements:
		return loadSharingAgreements(t, d, in)
	case FileSubjects:
		return loadSubjects(t, d, in)
	}
	panic("reference: loadFile: unknown file " + name)
}

// table reads one CSV file row by row, resolving columns by header name and
// collecting cell errors.
type table struct {
	name    string
	r       *csv.Reader
	cols    map[string]int
	rec     []string
	line    int
	errs    []error
	dropped int
	size    int64 // bytes of the file, when known: a capacity hint
}

// rowsHint estimates how many rows of at least minRow bytes the file holds,
// so that a county's millions of rows are not copied as a slice grows.
func (t *table) rowsHint(minRow int64) int {
	return int(min(t.size/minRow, 1<<26))
}

func newTable(name string, r io.Reader) *table {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // short rows are reported per cell, with names
	cr.TrimLeadingSpace = true
	return &table{name: name, r: cr}
}

// header reads the header and checks that required columns are present.
func (t *table) header(required ...string) bool {
	rec, err := t.r.Read()
	if err == io.EOF {
		t.errorf(1, "", "header row is missing")
		return false
	}
	if err != nil {
		t.errs = append(t.errs, fmt.Errorf("%s: %w", t.name, err))
		return false
	}
	t.cols = make(map[string]int, len(rec))
	for i, c := range rec {
		if i == 0 {
			c = strings.TrimPrefix(c, "\ufeff") // spreadsheet exports
		}
		c = strings.ToLower(strings.TrimSpace(c))
		if _, dup := t.cols[c]; !dup {
			t.cols[c] = i
		}
	}
	ok := true
	for _, c := range required {
		if !t.has(c) {
			t.errorf(1, "", "required column %q is missing", c)
			ok = false
		}
	}
	return ok
}

func (t *table) has(col string) bool { _, ok := t.cols[col]; return ok }

// next advances to the next data row; it skips blank lines and reports
// malformed CSV.
func (t *table) next() bool {
	for {
		rec, err := t.r.Read()
		if err == io.EOF {
			return false
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				t.errorf(pe.Line, "", "%v", pe.Err)
				if errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote) {
					continue
				}
			}
			t.errs = append(t.errs, fmt.Errorf("%s: %w", t.name, err))
			return false
		}
		t.rec = rec
		t.line, _ = t.r.FieldPos(0)
		return true
	}
}

// errorf records a problem of line; col names the column of a cell problem.
func (t *table) errorf(line int, col, format string, args ...any) {
	if len(t.errs) >= maxErrorsPerFile {
		t.dropped++
		return
	}
	pos := 0
	if i, ok := t.cols[col]; ok && line == t.line && line > 1 && i < len(t.rec) {
		_, pos = t.r.FieldPos(i)
	}
	t.errs = append(t.errs, &ParseError{File: t.name, Line: line, Col: pos, Column: col, Msg: fmt.Sprintf(format, args...)})
}

func (t *table) err() error {
	if t.dropped > 0 {
		t.errs = append(t.errs, fmt.Errorf("%s: %d more errors not shown", t.name, t.dropped))
	}
	return errors.Join(t.errs...)
}

// str returns the trimmed cell of col, or "" when the column is absent, the
// row is short or the cell is refused (cell).
func (t *table) str(col string) string {
	v, _ := t.cell(col, MaxCellBytes)
	return v
}

// cell returns the trimmed cell of col ("" when the column is absent or the
// row is short) and true, or reports the cell and returns "" and false when
// it is longer than max bytes or holds a hidden character
// (visible.IndexHidden: a control, format or bidirectional control
// character, or invalid UTF-8). The value is not quoted: it may be
// megabytes long, or reorder the message it would be shown in.
func (t *table) cell(col string, max int) (string, bool) {
	i, ok := t.cols[col]
	if !ok || i >= len(t.rec) {
		return "", true
	}
	v := strings.TrimSpace(t.rec[i])
	if msg := CheckCell(v, max); msg != "" {
		t.errorf(t.line, col, "%s", msg)
		return "", false
	}
	return v, true
}

// CheckCell returns what is wrong with the reference value v, or "": longer
// than max bytes (MaxCellBytes, or MaxListCellBytes for a list), or holding
// a hidden character (visible.IndexHidden) or invalid UTF-8. The message
// never quotes v. Rows read from Kafka are checked with it too.
func CheckCell(v string, max int) string {
	if len(v) > max {
		return fmt.Sprintf("is longer than %d bytes", max)
	}
	if at, r := visible.IndexHidden(v); at >= 0 {
		if r == utf8.RuneError {
			return fmt.Sprintf("is not valid UTF-8 at byte %d", at)
		}
		return fmt.Sprintf("contains the hidden character %U at byte %d", r, at)
	}
	return ""
}

func (t *table) required(col string) string {
	v, ok := t.cell(col, MaxCellBytes)
	if v == "" && ok {
		t.errorf(t.line, col, "value is required")
	}
	return v
}

// time parses an RFC 3339 cell; an empty cell is the zero time, an error
// unless optional.
func (t *table) time(col string, optional bool) time.Time {
	v, ok := t.cell(col, MaxCellBytes)
	if !ok {
		return time.Time{}
	}
	if v == "" {
		if !optional {
			t.errorf(t.line, col, "value is required")
		}
		return time.Time{}
	}
	tm, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t.errorf(t.line, col, "%q is not an RFC 3339 time", v)
	}
	return tm
}

func (t *table) bool(col string) bool {
	v := t.str(col)
	switch strings.ToLower(v) {
	case "", "false", "no", "0":
		return false
	case "true", "yes", "1":
		return true
	}
	t.errorf(t.line, col, "%q is not a boolean (true/false, yes/no, 1/0)", v)
	return false
}

func (t *table) list(col string, in interner) []string {
	v, _ := t.cell(col, MaxListCellBytes)
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ";")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); len(p) > MaxCellBytes {
			t.errorf(t.line, col, "has an entry longer than %d bytes", MaxCellBytes)
			return nil
		}
		if p != "" {
			out = append(out, in.intern(p))
		}
	}
	return slices.Clip(out)
}

// window checks that an end, when set, does not lie before its start.
func (t *table) window(fromCol string, from time.Time, toCol string, to time.Time) {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		t.errorf(t.line, toCol, "%s is before %s", to.Format(time.RFC3339), fromCol)
	}
}

// interner shares the storage of values that repeat across millions of rows
// (teams, roles, relation kinds) and detaches them from the CSV line buffer.
type interner map[string]string

func newInterner() interner { return make(interner) }

func (in interner) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in[s]; ok {
		return v
	}
	s = strings.Clone(s)
	in[s] = s
	return s
}

func loadStaff(t *table, d *Data, in interner) error {
	if t.header("actor_id", "org", "active_from") {
		seen := make(map[orgKey]int)
		for t.next() {
			s := Staff{
				ActorID:    strings.Clone(t.required("actor_id")),
				Org:        in.intern(t.required("org")),
				Role:       in.intern(t.str("role")),
				Team:       in.intern(t.str("team")),
				External:   t.bool("external"),
				ActiveFrom: t.time("active_from", false),
				ActiveTo:   t.time("active_to", true),
			}
			t.window("active_from", s.ActiveFrom, "active_to", s.ActiveTo)
			k := orgKey{s.Org, s.ActorID}
			if prev, dup := seen[k]; dup && s.ActorID != "" {
				t.errorf(t.line, "actor_id", "%q is already listed for org %q on line %d", s.ActorID, s.Org, prev)
			}
			seen[k] = t.line
			d.Staff = append(d.Staff, s)
		}
	}
	return t.err()
}

func loadRelationships(t *table, d *Data, in interner) error {
	if t.header("subject_id", "valid_from") {
		if !t.has("actor_id") && !t.has("team") {
			t.errorf(1, "", "one of the columns \"actor_id\" and \"team\" is required")
		}
		if d.Relationships == nil {
			// A row is at least a subject id, a team or actor and a
			// valid_from: about 50 bytes.
			d.Relationships = make([]Relationship, 0, t.rowsHint(50))
		}
		for t.next() {
			r := Relationship{
				Org:       in.intern(t.str("org")),
				ActorID:   strings.Clone(t.str("actor_id")),
				Team:      in.intern(t.str("team")),
				SubjectID: strings.Clone(t.required("subject_id")),
				Relation:  in.intern(t.str("relation")),
				ValidFrom: t.time("valid_from", false),
				ValidTo:   t.time("valid_to", true),
			}
			if (r.ActorID == "") == (r.Team == "") {
				t.errorf(t.line, "", "exactly one of actor_id and team must be set")
			}
			t.window("valid_from", r.ValidFrom, "valid_to", r.ValidTo)
			d.Relationships = append(d.Relationships, r)
		}
	}
	return t.err()
}

func loadShifts(t *table, d *Data, in interner) error {
	if t.header("actor_id", "start", "end") {
		for t.next() {
			s := Shift{
				Org:     in.intern(t.str("org")),
				ActorID: in.intern(t.required("actor_id")),
				Start:   t.time("start", false),
				End:     t.time("end", false),
			}
			if !s.Start.IsZero() && !s.End.IsZero() && !s.End.After(s.Start) {
				t.errorf(t.line, "end", "%s is not after start", s.End.Format(time.RFC3339))
			}
			d.Shifts = append(d.Shifts, s)
		}
	}
	return t.err()
}

func loadAbsences(t *table, d *Data, in interner) error {
	if t.header("actor_id", "start") {
		for t.next() {
			a := Absence{
				Org:     in.intern(t.str("org")),
				ActorID: in.intern(t.required("actor_id")),
				Start:   t.time("start", false),
				End:     t.time("end", true),
				Kind:    in.intern(t.str("kind")),
			}
			t.window("start", a.Start, "end", a.End)
			d.Absences = append(d.Absences, a)
		}
	}
	return t.err()
}

// DeviceKinds lists the device kinds of CONTRACT §2.
var DeviceKinds = []string{DeviceSharedTablet, DeviceDesktop, DeviceLaptop, DeviceMobile}

func loadDevices(t *table, d *Data, in interner) error {
	if t.header("device_id", "org", "kind") {
		seen := make(map[orgKey]int)
		for t.next() {
			dev := Device{
				DeviceID:   strings.Clone(t.required("device_id")),
				Org:        in.intern(t.required("org")),
				Kind:       in.intern(t.required("kind")),
				AssignedTo: in.intern(t.str("assigned_to")),
				Location:   in.intern(t.str("location")),
			}
			if dev.Kind != "" && !slices.Contains(DeviceKinds, dev.Kind) {
				t.errorf(t.line, "kind", "%q is not a device kind (%s)", dev.Kind, strings.Join(DeviceKinds, ", "))
			}
			k := orgKey{dev.Org, dev.DeviceID}
			if prev, dup := seen[k]; dup && dev.DeviceID != "" {
				t.errorf(t.line, "device_id", "%q is already listed for org %q on line %d", dev.DeviceID, dev.Org, prev)
			}
			seen[k] = t.line
			d.Devices = append(d.Devices, dev)
		}
	}
	return t.err()
}

func loadSharingAgreements(t *table, d *Data, in interner) error {
	if t.header("partner_org", "org", "record_types", "actions", "valid_from") {
		for t.next() {
			a := SharingAgreement{
				PartnerOrg:  in.intern(t.required("partner_org")),
				Org:         in.intern(t.required("org")),
				RecordTypes: t.list("record_types", in),
				Actions:     t.list("actions", in),
				ValidFrom:   t.time("valid_from", false),
				ValidTo:     t.time("valid_to", true),
			}
			t.window("valid_from", a.ValidFrom, "valid_to", a.ValidTo)
			d.SharingAgreements = append(d.SharingAgreements, a)
		}
	}
	return t.err()
}

func loadSubjects(t *table, d *Data, in interner) error {
	if t.header("subject_id", "org", "display_ref") {
		seen := make(map[orgKey]int)
		for t.next() {
			s := Subject{
				SubjectID:  strings.Clone(t.required("subject_id")),
				Org:        in.intern(t.required("org")),
				DisplayRef: strings.Clone(t.required("display_ref")),
			}
			k := orgKey{s.Org, s.SubjectID}
			if prev, dup := seen[k]; dup && s.SubjectID != "" {
				// The row's display_ref is not quoted: it names a person.
				t.errorf(t.line, "subject_id", "%q is already listed for org %q on line %d", s.SubjectID, s.Org, prev)
			}
			seen[k] = t.line
			d.Subjects = append(d.Subjects, s)
		}
	}
	return t.err()
}

// WriteDir writes d as the CSV files of CONTRACT §2 into dir (created if
// needed), and subjects.csv when d has subjects, every file with its header and its rows in a deterministic order
// (by key fields, then start time), so that the same data always yields the
// same bytes whatever order d's slices are in.
func WriteDir(dir string, d *Data) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	files := []struct {
		name   string
		header []string
		n      int
		cmp    func(i, j int) int
		row    func(i int, rec []string)
	}{
		{FileStaff, []string{"actor_id", "org", "role", "team", "external", "active_from", "active_to"}, len(d.Staff),
			func(i, j int) int {
				a, b := &d.Staff[i], &d.Staff[j]
				return cmp.Or(strings.Compare(a.ActorID, b.ActorID), strings.Compare(a.Org, b.Org), a.ActiveFrom.Compare(b.ActiveFrom))
			},
			func(i int, rec []string) {
				s := &d.Staff[i]
				rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6] = s.ActorID, s.Org, s.Role, s.Team, strconv.FormatBool(s.External), ftime(s.ActiveFrom), ftime(s.ActiveTo)
			}},
		{FileRelationships, []string{"actor_id", "team", "subject_id", "relation", "valid_from", "valid_to"}, len(d.Relationships),
			func(i, j int) int {
				a, b := &d.Relationships[i], &d.Relationships[j]
				return cmp.Or(strings.Compare(a.ActorID, b.ActorID), strings.Compare(a.Team, b.Team), strings.Compare(a.SubjectID, b.SubjectID),
					a.ValidFrom.Compare(b.ValidFrom), a.ValidTo.Compare(b.ValidTo), strings.Compare(a.Relation, b.Relation))
			},
			func(i int, rec []string) {
				r := &d.Relationships[i]
				rec[0], rec[1], rec[2], rec[3], rec[4], rec[5] = r.ActorID, r.Team, r.SubjectID, r.Relation, ftime(r.ValidFrom), ftime(r.ValidTo)
			}},
		{FileShifts, []string{"actor_id", "start", "end"}, len(d.Shifts),
			func(i, j int) int {
				a, b := &d.Shifts[i], &d.Shifts[j]
				return cmp.Or(strings.Compare(a.ActorID, b.ActorID), a.Start.Compare(b.Start), a.End.Compare(b.End))
			},
			func(i int, rec []string) {
				s := &d.Shifts[i]
				rec[0], rec[1], rec[2] = s.ActorID, ftime(s.Start), ftime(s.End)
			}},
		{FileAbsences, []string{"actor_id", "start", "end", "kind"}, len(d.Absences),
			func(i, j int) int {
				a, b := &d.Absences[i], &d.Absences[j]
				return cmp.Or(strings.Compare(a.ActorID, b.ActorID), a.Start.Compare(b.Start), a.End.Compare(b.End), strings.Compare(a.Kind, b.Kind))
			},
			func(i int, rec []string) {
				a := &d.Absences[i]
				rec[0], rec[1], rec[2], rec[3] = a.ActorID, ftime(a.Start), ftime(a.End), a.Kind
			}},
		{FileDevices, []string{"device_id", "org", "kind", "assigned_to", "location"}, len(d.Devices),
			func(i, j int) int {
				return cmp.Or(strings.Compare(d.Devices[i].DeviceID, d.Devices[j].DeviceID), strings.Compare(d.Devices[i].Org, d.Devices[j].Org))
			},
			func(i int, rec []string) {
				v := &d.Devices[i]
				rec[0], rec[1], rec[2], rec[3], rec[4] = v.DeviceID, v.Org, v.Kind, v.AssignedTo, v.Location
			}},
		{FileSharingAgreements, []string{"partner_org", "org", "record_types", "actions", "valid_from", "valid_to"}, len(d.SharingAgreements),
			func(i, j int) int {
				a, b := &d.SharingAgreements[i], &d.SharingAgreements[j]
				return cmp.Or(strings.Compare(a.PartnerOrg, b.PartnerOrg), strings.Compare(a.Org, b.Org), a.ValidFrom.Compare(b.ValidFrom),
					a.ValidTo.Compare(b.ValidTo), slices.Compare(a.RecordTypes, b.RecordTypes), slices.Compare(a.Actions, b.Actions))
			},
			func(i int, rec []string) {
				a := &d.SharingAgreements[i]
				rec[0], rec[1], rec[2], rec[3], rec[4], rec[5] = a.PartnerOrg, a.Org, strings.Join(a.RecordTypes, ";"), strings.Join(a.Actions, ";"), ftime(a.ValidFrom), ftime(a.ValidTo)
			}},
	}
	// The optional org column of relationships, shifts and absences is
	// written only when a row has one, so that single-org data keeps the
	// contract's columns exactly.
	for i, org := range map[int]func(int) string{
		1: func(i int) string { return d.Relationships[i].Org },
		2: func(i int) string { return d.Shifts[i].Org },
		3: func(i int) string { return d.Absences[i].Org },
	} {
		f := &files[i]
		if !anyOrg(f.n, org) {
			continue
		}
		row, cmpRows, col := f.row, f.cmp, len(f.header)
		f.header = append(slices.Clip(f.header), "org")
		f.row = func(i int, rec []string) { row(i, rec); rec[col] = org(i) }
		f.cmp = func(i, j int) int { return cmp.Or(strings.Compare(org(i), org(j)), cmpRows(i, j)) }
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.header, f.n, f.cmp, f.row); err != nil {
			return err
		}
	}
	if len(d.Subjects) == 0 {
		return nil // optional: no file rather than an empty one
	}
	return writeFile(filepath.Join(dir, FileSubjects), []string{"subject_id", "org", "display_ref"}, len(d.Subjects),
		func(i, j int) int {
			a, b := &d.Subjects[i], &d.Subjects[j]
			return cmp.Or(strings.Compare(a.Org, b.Org), strings.Compare(a.SubjectID, b.SubjectID))
		},
		func(i int, rec []string) {
			v := &d.Subjects[i]
			rec[0], rec[1], rec[2] = v.SubjectID, v.Org, v.DisplayRef
		})
}

func anyOrg(n int, org func(int) string) bool {
	for i := range n {
		if org(i) != "" {
			return true
		}
	}
	return false
}

// writeFile sorts a permutation rather than the rows themselves, so that
// writing two million relationships costs megabytes, not a copy.
func writeFile(path string, header []string, n int, cmp func(i, j int) int, row func(int, []string)) error {
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp(int(a), int(b)) })
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	w := csv.NewWriter(f)
	werr := w.Write(header)
	rec := make([]string, len(header))
	for _, i := range order {
		if werr != nil {
			break
		}
		row(int(i), rec)
		werr = w.Write(rec)
	}
	w.Flush()
	err = errors.Join(werr, w.Error(), f.Close())
	if err != nil {
		return fmt.Errorf("reference: writing %s: %w", filepath.Base(path), err)
	}
	return nil
}

func ftime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// MaxCellBytes is the longest cell a reference file may hold (a list cell:
// MaxListCellBytes). Ids are matched against events' ids, which are at most
// event.MaxIDLen (256) bytes long.
const (
	MaxCellBytes     = 256
	MaxListCellBytes = 4096
)
