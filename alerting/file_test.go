package alerting

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
)

func readLines(t *testing.T, path string) []alert.Alert {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []alert.Alert
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a alert.Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		out = append(out, a)
	}
	return out
}

func TestFileAppendsJSONLines(t *testing.T) {
	key := NewPseudonymizer([]byte("k"))
	for _, tc := range []struct {
		name        string
		opts        FileOptions
		wantSubject string
	}{
		{"default hides subject", FileOptions{}, ""},
		{"pseudonymized", FileOptions{Pseudonymizer: key}, key.Subject("c-0042")},
		{"keep subject", FileOptions{KeepSubject: true, Pseudonymizer: key}, "c-0042"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Path = filepath.Join(t.TempDir(), "alerts.jsonl")
			f, err := NewFile(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Notify(t.Context(), testAlert("a-1"), testAlert("a-2")); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Notify(t.Context(), testAlert("a-3")); err != nil {
				t.Fatal(err)
			}
			got := readLines(t, tc.opts.Path)
			if len(got) != 3 || got[0].ID != "a-1" || got[2].ID != "a-3" {
				t.Fatalf("lines %+v, want a-1, a-2, a-3 appended in order", got)
			}
			for _, a := range got {
				if a.SubjectID != tc.wantSubject {
					t.Errorf("subject_id %q, want %q", a.SubjectID, tc.wantSubject)
				}
			}
			st, err := os.Stat(tc.opts.Path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	if _, err := NewFile(FileOptions{}); err == nil {
		t.Error("NewFile accepted an empty path")
	}

	missing := filepath.Join(t.TempDir(), "no-such-dir", "alerts.jsonl")
	f, _ := NewFile(FileOptions{Path: missing})
	if retry, err := f.Notify(t.Context(), testAlert("a-1")); err == nil || !retry {
		t.Errorf("unwritable path: Notify = %v, %v; want a retryable error", retry, err)
	}

	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	f, _ = NewFile(FileOptions{Path: path})
	bad := testAlert("a-bad")
	bad.FirstSeen = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	retry, err := f.Notify(t.Context(), testAlert("a-1"), bad)
	if pe, ok := errors.AsType[*PartialError](err); !ok || pe.Sent != 1 || retry {
		t.Fatalf("Notify = %v, %v; want a non-retryable PartialError with Sent 1", retry, err)
	}
	if got := readLines(t, path); len(got) != 1 || got[0].ID != "a-1" {
		t.Errorf("file holds %+v, want only a-1", got)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(b), "\n") {
		t.Error("file does not end in a whole line")
	}
}
