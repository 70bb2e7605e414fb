package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dpiawatch/dpiawatch/alert"
)

// Console output formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// ConsoleOptions configures NewConsole.
type ConsoleOptions struct {
	// Name is the receiver name; default "console".
	Name string
	// W receives the output; default os.Stdout.
	W io.Writer
	// Format is FormatText (default, one line per alert for people) or
	// FormatJSON (one CONTRACT §3 alert per line).
	Format string
	// Pseudonymizer renders subjects; nil leaves them out, because console
	// output usually ends up in system logs.
	Pseudonymizer *Pseudonymizer
	// DashboardURL is the web UI's base URL; when set, text lines link to
	// the alert's page.
	DashboardURL string
	// Location is the time zone for text output; default UTC, which keeps
	// log lines comparable across machines.
	Location *time.Location
}

// Console writes alerts to a writer, one line per alert.
type Console struct {
	opts ConsoleOptions
	mu   sync.Mutex // one batch's lines stay together
}

// NewConsole returns a console notifier.
func NewConsole(o ConsoleOptions) (*Console, error) {
	if o.Name == "" {
		o.Name = "console"
	}
	if o.W == nil {
		o.W = os.Stdout
	}
	if o.Format == "" {
		o.Format = FormatText
	}
	if o.Format != FormatText && o.Format != FormatJSON {
		return nil, fmt.Errorf("console format %q: want %q or %q", o.Format, FormatText, FormatJSON)
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	return &Console{opts: o}, nil
}

// Name implements Notifier.
func (c *Console) Name() string { return c.opts.Name }

// Notify implements Notifier. The batch goes out in one Write so that
// concurrent log lines do not interleave with it; a failed write is worth
// retrying (a full pipe or disk may drain).
func (c *Console) Notify(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	var buf bytes.Buffer
	var renderErr error
	sent := len(alerts)
	for i, a := range alerts {
		if c.opts.Format == FormatJSON {
			if err := writeJSONLine(&buf, redact(a, c.opts.Pseudonymizer)); err != nil {
				// A poison alert (say, a time beyond year 9999): print the
				// ones before it and charge the failure to it alone.
				sent, renderErr = i, fmt.Errorf("console: render alert: %w", err)
				break
			}
			continue
		}
		c.writeText(&buf, a)
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	if buf.Len() > 0 {
		if _, err := c.write(buf.Bytes()); err != nil {
			return true, fmt.Errorf("console: %w", err)
		}
	}
	if renderErr != nil {
		return false, partial(sent, AlertRejected("render", renderErr))
	}
	return false, nil
}

func (c *Console) write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.W.Write(b)
}

// writeText renders a as one logfmt-style line: severity and check first,
// for eyes scanning a terminal; values quoted only where needed.
func (c *Console) writeText(buf *bytes.Buffer, a alert.Alert) {
	sev := strings.ToUpper(string(a.Severity))
	if sev == "" {
		sev = "UNKNOWN"
	}
	buf.WriteString(sev)
	buf.WriteByte(' ')
	buf.WriteString(logfmtValue(a.Check + "/" + a.Pattern))
	kv := func(k, v string) {
		buf.WriteByte(' ')
		buf.WriteString(k)
		buf.WriteByte('=')
		buf.WriteString(logfmtValue(v))
	}
	kv("dpia", a.DPIA)
	kv("risks", strings.Join(a.Risks, ","))
	kv("actor", a.ActorID)
	if s := c.opts.Pseudonymizer.Subject(a.SubjectID); s != "" {
		kv("subject", s)
	}
	kv("first", a.FirstSeen.In(c.opts.Location).Format(time.RFC3339))
	kv("last", a.LastSeen.In(c.opts.Location).Format(time.RFC3339))
	kv("events", strconv.Itoa(a.EventCount))
	kv("id", a.ID)
	kv("explanation", a.Explanation)
	if link := dashboardLink(c.opts.DashboardURL, a.ID); link != "" {
		kv("link", link)
	}
	buf.WriteByte('\n')
}

// logfmtValue quotes v when it is empty or holds spaces, quotes, '=' or
// anything unprintable, so one alert is always exactly one parseable line.
func logfmtValue(v string) string {
	if v == "" {
		return `""`
	}
	for _, r := range v {
		if r == ' ' || r == '"' || r == '=' || r == '\\' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return strconv.Quote(v)
		}
	}
	return v
}

// writeJSONLine appends a as one JSON line. HTML escaping is off: the line
// is read by people and log tools, not embedded in a page.
func writeJSONLine(buf *bytes.Buffer, a alert.Alert) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	n := buf.Len()
	if err := enc.Encode(a); err != nil {
		buf.Truncate(n)
		return err
	}
	return nil
}
