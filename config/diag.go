package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Severity says whether a Diagnostic stops the configuration from loading.
type Severity int

// Severities of a Diagnostic.
const (
	SeverityError Severity = iota
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in a configuration file.
type Diagnostic struct {
	Severity Severity
	File     string
	Line     int // 1-based; 0 when the problem concerns the whole file
	Column   int
	Path     string // key path, e.g. "checks.out-of-hours.grace" or "orgs[1].timezone"
	Value    string // the offending value as written; never a secret
	Message  string // complete sentence fragment, e.g. `"30 minutes" is not a duration (e.g. 30m)`
}

// String formats d like a compiler message:
//
//	configs/dpiawatch.yaml:42:12: checks.out-of-hours.grace: "30 minutes" is not a duration (e.g. 30m)
//
// Warnings carry "warning: " before the path.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Line, d.Column)
	}
	b.WriteString(": ")
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Error makes a Diagnostic usable as an error.
func (d Diagnostic) Error() string { return d.String() }

// Diagnostics lists every problem of one Load, in file order.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	return slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Severity == SeverityError })
}

// Errors returns only the errors.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(SeverityError) }

// Warnings returns only the warnings.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(SeverityWarning) }

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Err joins the errors (not the warnings) into one error, or returns nil.
func (ds Diagnostics) Err() error {
	var errs []error
	for _, d := range ds.Errors() {
		errs = append(errs, d)
	}
	return errors.Join(errs...)
}

// String renders one diagnostic a line.
func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func (ds Diagnostics) sort() {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// Validator collects diagnostics, placing each at the YAML node of its key
// path so that every message can name line and column.
type Validator struct {
	file  string
	nodes map[string]*yaml.Node // key path → value node, filled by the decoder
	keys  map[string]*yaml.Node // key path → key node, for problems with a key itself
	// failed holds the paths that did not decode; later checks of them or
	// anything below stay quiet, so that one mistake yields one message.
	failed map[string]bool
	// secret holds paths whose written value must never be echoed.
	secret map[string]bool
	// secrets are the Secret fields written in the file, in file order,
	// for resolveSecrets.
	secrets []secretRef
	diags   Diagnostics
}

// node finds the node of path, or of its nearest written ancestor when the
// key itself is absent (a missing required key is reported at its parent).
func (v *Validator) node(path string) *yaml.Node {
	for {
		if n, ok := v.nodes[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return v.nodes[""]
		}
		path = path[:i]
	}
}

// Set reports whether path was written in the file (not null).
func (v *Validator) Set(path string) bool {
	n, ok := v.nodes[path]
	return ok && !isNull(n)
}

// hasFailed reports whether path or an ancestor failed to decode.
func (v *Validator) hasFailed(path string) bool {
	for {
		if v.failed[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
}

func (v *Validator) add(sev Severity, path, msg string) {
	if v.hasFailed(path) {
		return
	}
	d := Diagnostic{Severity: sev, File: v.file, Path: path, Message: msg}
	if n := v.node(path); n != nil {
		d.Line, d.Column = n.Line, n.Column
		if n.Kind == yaml.ScalarNode && !v.secret[path] && v.nodes[path] == n {
			d.Value = n.Value
		}
	}
	v.diags = append(v.diags, d)
}

func (v *Validator) Errorf(path, format string, args ...any) {
	v.add(SeverityError, path, fmt.Sprintf(format, args...))
}

func (v *Validator) Warnf(path, format string, args ...any) {
	v.add(SeverityWarning, path, fmt.Sprintf(format, args...))
}

// KeyErrorf reports at the key of path (e.g. an unknown map key).
func (v *Validator) KeyErrorf(path, format string, args ...any) {
	n := v.keys[path]
	if n == nil {
		v.Errorf(path, format, args...)
		return
	}
	v.at(n, SeverityError, path, n.Value, fmt.Sprintf(format, args...))
}

// at reports at an explicit node; decoding problems come through here and
// mark their path as failed.
func (v *Validator) at(n *yaml.Node, sev Severity, path, value, msg string) {
	if sev == SeverityError {
		v.failed[path] = true
	}
	v.diags = append(v.diags, Diagnostic{Severity: sev, File: v.file, Line: n.Line, Column: n.Column, Path: path, Value: value, Message: msg})
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
