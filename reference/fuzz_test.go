package reference

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/visible"
)

// FuzzLoadReference feeds one file of any kind (file picks it from
// fileNames) to the CSV loader. Whatever the bytes, it must not panic, and it
// returns either errors that are each a *ParseError of that file (or a
// report of the CSV reader) of bounded length, or data whose every value
// keeps the bounds LoadDir promises: at most MaxCellBytes, no hidden
// character, valid UTF-8, windows that do not end before they start.
//
// The seed corpus (testdata/fuzz/FuzzLoadReference, and the files of
// testdata/good and testdata/bad) runs under plain go test.
func FuzzLoadReference(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		for i, name := range fileNames {
			b, err := os.ReadFile(filepath.Join("testdata", dir, name))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, file uint8, content []byte) {
		name := fileNames[int(file)%len(fileNames)]
		d := &Data{}
		err := loadFile(name, bytes.NewReader(content), int64(len(content)), d, newInterner())
		if err != nil {
			checkLoadErrors(t, name, err)
			return
		}
		checkLoadedData(t, d)
	})
}

// maxErrorLen bounds one reported problem: a value is quoted only when it
// kept the cell bound, and Go quoting at most quadruples it.
const maxErrorLen = 4*MaxCellBytes + 256

func checkLoadErrors(t *testing.T, name string, err error) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	if len(errs) > maxErrorsPerFile+1 {
		t.Fatalf("%d errors, more than the %d (and a count) reported", len(errs), maxErrorsPerFile)
	}
	for _, e := range errs {
		msg := e.Error()
		if len(msg) > maxErrorLen {
			t.Fatalf("an error of %d bytes: %.200q…", len(msg), msg)
		}
		if !strings.HasPrefix(msg, name+":") {
			t.Fatalf("error %q does not name the file %s", msg, name)
		}
		if pe, ok := e.(*ParseError); ok && (pe.Line < 1 || pe.Col < 0) {
			t.Fatalf("error %q has position %d:%d", msg, pe.Line, pe.Col)
		}
	}
}

// checkLoadedData walks every string and time of d.
func checkLoadedData(t *testing.T, d *Data) {
	t.Helper()
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			s := v.String()
			if len(s) > MaxCellBytes {
				t.Fatalf("%s is %d bytes, more than %d", path, len(s), MaxCellBytes)
			}
			if at, r := visible.IndexHidden(s); at >= 0 {
				t.Fatalf("%s = %q holds hidden %U at byte %d", path, s, r, at)
			}
			if s != strings.TrimSpace(s) {
				t.Fatalf("%s = %q is not trimmed", path, s)
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(path, v.Index(i))
			}
		case reflect.Struct:
			if tm, ok := v.Interface().(time.Time); ok {
				if tm.Year() > 9999 {
					t.Fatalf("%s = %v", path, tm)
				}
				return
			}
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		}
	}
	walk("Data", reflect.ValueOf(d).Elem())
	for _, s := range d.Staff {
		if !s.ActiveTo.IsZero() && s.ActiveTo.Before(s.ActiveFrom) {
			t.Fatalf("staff %+v ends before it starts", s)
		}
	}
	for _, r := range d.Relationships {
		if (r.ActorID == "") == (r.Team == "") || r.SubjectID == "" {
			t.Fatalf("relationship %+v lacks an owner or subject", r)
		}
	}
	for _, s := range d.Shifts {
		if !s.End.After(s.Start) || s.ActorID == "" {
			t.Fatalf("shift %+v", s)
		}
	}
}
