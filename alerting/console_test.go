package alerting

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpiawatch/dpiawatch/alert"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// consoleAlerts covers a full alert, one without subject or risks, and one
// whose fields need quoting.
func consoleAlerts() []alert.Alert {
	a := testAlert("a-0f3c2e9d1b7a5c4e3f2a1b0c")
	b := alert.Alert{
		ID: "a-111111111111111111111111", Check: "shared-credential", Pattern: "failed-login-burst",
		Severity: alert.SeverityMedium, Org: "wiltshire-council", ActorID: "p-77",
		FirstSeen: time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 7, 1, 7, 4, 0, 0, time.UTC),
		DPIA: "wiltshire-childrens-cms", EventCount: 5,
		Explanation: "5 failed logins for one account within 10 minutes.",
	}
	c := testAlert("a-222222222222222222222222")
	c.ActorID = "u 17=\"x\""
	c.Explanation = "line one\nline two <b>&</b>"
	c.Severity = alert.SeverityCritical
	return []alert.Alert{a, b, c}
}

func TestConsoleGolden(t *testing.T) {
	for _, tc := range []struct {
		name, format, golden string
		pseudo               *Pseudonymizer
	}{
		{"text", FormatText, "console.txt.golden", NewPseudonymizer([]byte("test-key"))},
		{"text without key", FormatText, "console-nokey.txt.golden", nil},
		{"json", FormatJSON, "console.json.golden", NewPseudonymizer([]byte("test-key"))},
		{"json without key", FormatJSON, "console-nokey.json.golden", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			c, err := NewConsole(ConsoleOptions{W: &buf, Format: tc.format, Pseudonymizer: tc.pseudo, DashboardURL: "https://dpiawatch.example/"})
			if err != nil {
				t.Fatal(err)
			}
			if retry, err := c.Notify(t.Context(), consoleAlerts()...); err != nil {
				t.Fatalf("Notify = %v, %v", retry, err)
			}
			golden(t, tc.golden, buf.Bytes())
			if n := strings.Count(buf.String(), "\n"); n != 3 {
				t.Errorf("%d lines, want one per alert", n)
			}
			if strings.Contains(buf.String(), "c-0042") {
				t.Error("raw subject id in console output")
			}
		})
	}
}

func TestConsoleJSONIsTheContractAlert(t *testing.T) {
	var buf bytes.Buffer
	c, _ := NewConsole(ConsoleOptions{W: &buf, Format: FormatJSON})
	if _, err := c.Notify(t.Context(), consoleAlerts()[1]); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "check", "pattern", "severity", "org", "actor_id", "subject_id",
		"first_seen", "last_seen", "event_ids", "dpia", "risks", "explanation"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing (CONTRACT §3)", k)
		}
	}
	if _, ok := m["event_ids"].([]any); !ok {
		t.Errorf("event_ids = %#v, want a list even when empty", m["event_ids"])
	}
}

func TestConsoleRejectsUnknownFormat(t *testing.T) {
	if _, err := NewConsole(ConsoleOptions{Format: "yaml"}); err == nil {
		t.Fatal("NewConsole accepted format yaml")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestConsoleErrors(t *testing.T) {
	c, _ := NewConsole(ConsoleOptions{W: failingWriter{}})
	if retry, err := c.Notify(t.Context(), testAlert("a-1")); err == nil || !retry {
		t.Errorf("write failure: Notify = %v, %v; want a retryable error", retry, err)
	}

	// A poison alert (a time JSON cannot encode) is charged to itself; the
	// alerts before it are printed.
	var buf bytes.Buffer
	c, _ = NewConsole(ConsoleOptions{W: &buf, Format: FormatJSON})
	bad := testAlert("a-bad")
	bad.LastSeen = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	retry, err := c.Notify(t.Context(), testAlert("a-1"), bad, testAlert("a-3"))
	pe, ok := errors.AsType[*PartialError](err)
	if !ok || pe.Sent != 1 || retry {
		t.Fatalf("Notify = %v, %v; want a non-retryable PartialError with Sent 1", retry, err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines written, want 1", n)
	}
}
