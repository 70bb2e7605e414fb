package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in Go syntax ("30m", "1h30m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses Go duration syntax; negative durations are refused
// because no setting here means anything by them.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration (e.g. 30m), found %s", kindName(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 30m)", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("%q is a negative duration", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d in the syntax it is read in.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Clock is a local time of day, "HH:MM"; "24:00" is the end of the day.
type Clock struct{ Hour, Minute int }

var clockPattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$`)

// Minutes is the number of minutes since midnight.
func (c Clock) Minutes() int { return c.Hour*60 + c.Minute }

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// UnmarshalYAML parses "HH:MM".
func (c *Clock) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || !clockPattern.MatchString(n.Value) {
		return fmt.Errorf("%s is not a time of day (HH:MM, e.g. \"08:00\")", kindName(n))
	}
	h, _ := strconv.Atoi(n.Value[:2])
	m, _ := strconv.Atoi(n.Value[3:])
	*c = Clock{h, m}
	return nil
}

// MarshalYAML writes c as "HH:MM".
func (c Clock) MarshalYAML() (any, error) { return c.String(), nil }

// Weekday is a day name: mon, tue, wed, thu, fri, sat, sun.
type Weekday time.Weekday

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func (d Weekday) String() string { return dayNames[d] }

// UnmarshalYAML parses a three-letter day name.
func (d *Weekday) UnmarshalYAML(n *yaml.Node) error {
	for i, name := range dayNames {
		if n.Kind == yaml.ScalarNode && strings.EqualFold(n.Value, name) {
			*d = Weekday(i)
			return nil
		}
	}
	return fmt.Errorf("unknown day %s (want mon, tue, wed, thu, fri, sat or sun)", kindName(n))
}

// MarshalYAML writes the day name.
func (d Weekday) MarshalYAML() (any, error) { return d.String(), nil }

// Secret names where a secret lives: an environment variable or a file. It
// never holds the value, so a Config can be printed or logged safely.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"` // resolved against the configuration file's directory
}

var secretType = reflect.TypeFor[Secret]()

// ErrSecretUnset is returned by Resolve when neither env nor file is given.
var ErrSecretUnset = errors.New("secret not configured")

// IsZero reports whether no source is configured.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" }

// Resolve reads the secret from its environment variable or file. Surrounding
// white space (a file's final newline) is removed.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("secret: environment variable %s is not set", s.Env)
		}
		return strings.TrimSpace(v), nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("secret: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret: file %s is empty", s.File)
		}
		return v, nil
	}
	return "", ErrSecretUnset
}

// String says where the secret comes from, never what it is.
func (s Secret) String() string {
	switch {
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	}
	return "unset"
}

// GoString keeps %#v from printing more than String does.
func (s Secret) GoString() string { return "config.Secret(" + s.String() + ")" }

// MarshalYAML writes the source only.
func (s Secret) MarshalYAML() (any, error) {
	type source Secret // without methods, so no recursion
	return source(s), nil
}

// UnmarshalYAML accepts only {env: NAME} or {file: PATH}; a literal value is
// refused (Load reports the same with its position).
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("a secret cannot be written in the configuration file; use {env: NAME} or {file: PATH}")
	}
	type source Secret
	dec := (*source)(s)
	return n.Decode(dec)
}

// Number is a decimal number in YAML ("51.32", "120").
type Number float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (n *Number) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode || (node.Tag != "!!float" && node.Tag != "!!int") {
		return fmt.Errorf("%q is not a number", node.Value)
	}
	f, err := strconv.ParseFloat(node.Value, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("%q is not a number", node.Value)
	}
	*n = Number(f)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (n Number) MarshalYAML() (any, error) { return float64(n), nil }
