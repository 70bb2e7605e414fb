package alerting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/dpiawatch/dpiawatch/alert"
)

// FileOptions configures NewFile.
type FileOptions struct {
	// Name is the receiver name; default "file".
	Name string
	// Path is the JSON Lines file alerts are appended to (created 0600).
	Path string
	// Pseudonymizer renders subjects when KeepSubject is false; nil leaves
	// them out.
	Pseudonymizer *Pseudonymizer
	// KeepSubject writes raw subject ids, for a file kept under the same
	// protection as the store itself (an evidence export, say).
	KeepSubject bool
}

// File appends alerts to a JSON Lines file, one CONTRACT §3 alert per line,
// and syncs the file after each batch so a delivered alert is on disk.
type File struct {
	opts FileOptions
	mu   sync.Mutex
}

// NewFile returns a JSON Lines file notifier.
func NewFile(o FileOptions) (*File, error) {
	if o.Path == "" {
		return nil, errors.New("file notifier: path is required")
	}
	if o.Name == "" {
		o.Name = "file"
	}
	return &File{opts: o}, nil
}

// Name implements Notifier.
func (f *File) Name() string { return f.opts.Name }

// Notify implements Notifier. The file is opened per batch so that log
// rotation (rename, then a new file) needs no signal. A failed write is cut
// back off the file so that a retry never leaves a torn line behind.
func (f *File) Notify(ctx context.Context, alerts ...alert.Alert) (bool, error) {
	var buf bytes.Buffer
	var renderErr error
	sent := len(alerts)
	for i, a := range alerts {
		if f.opts.KeepSubject {
			subject := a.SubjectID
			a = redact(a, nil)
			a.SubjectID = subject
		} else {
			a = redact(a, f.opts.Pseudonymizer)
		}
		if err := writeJSONLine(&buf, a); err != nil {
			// A poison alert (say, a time beyond year 9999): write the ones
			// before it and charge the failure to it alone.
			sent, renderErr = i, fmt.Errorf("file notifier: render alert: %w", err)
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	if buf.Len() > 0 {
		f.mu.Lock()
		retry, err := f.append(buf.Bytes())
		f.mu.Unlock()
		if err != nil {
			return retry, err
		}
	}
	if renderErr != nil {
		return false, partial(sent, AlertRejected("render", renderErr))
	}
	return false, nil
}

func (f *File) append(b []byte) (retry bool, err error) {
	fh, err := os.OpenFile(f.opts.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return true, fmt.Errorf("file notifier: %w", err)
	}
	defer func() {
		if cerr := fh.Close(); cerr != nil && err == nil {
			retry, err = true, fmt.Errorf("file notifier: %w", cerr)
		}
	}()
	st, err := fh.Stat()
	if err != nil {
		return true, fmt.Errorf("file notifier: %w", err)
	}
	if _, err := fh.Write(b); err != nil {
		_ = fh.Truncate(st.Size())
		return true, fmt.Errorf("file notifier: write: %w", err)
	}
	if err := fh.Sync(); err != nil {
		// After a failed fsync the page cache state is unknown; cut the
		// batch and let the retry write it again.
		_ = fh.Truncate(st.Size())
		return true, fmt.Errorf("file notifier: sync: %w", err)
	}
	return false, nil
}
