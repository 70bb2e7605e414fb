// Package storedjson is the JSON codec of the data dpiawatch writes for
// itself on its hot path and reads back: the stores' event detail columns,
// alert bodies and other rows, the rules engine's check state and
// checkpoints. It is github.com/goccy/go-json/v2 (the library that decodes
// events and reference rows too), set to write the bytes goccy/go-json's
// v1 API wrote, so that what is already stored or checkpointed reads back
// and compares the same (TestSameBytesAsV1; the one exception, a byte that
// is not UTF-8, cannot reach it: see TestInvalidUTF8). Everything else
// (configuration, API, web, CLI, evidence) uses encoding/json.
package storedjson

import (
	jsonv1 "github.com/goccy/go-json"
	"github.com/goccy/go-json/jsontext"
	json "github.com/goccy/go-json/v2"
)

// encodeOptions are the v1 defaults that change bytes: HTML and JS
// characters escaped, map keys sorted, nil slices and maps as null,
// invalid UTF-8 replaced rather than refused, and omitempty in its v1
// sense (false and 0 omitted; v2 omits only "", null, [] and {}).
// Duplicate names are allowed, as v1 allowed them: with invalid UTF-8
// allowed but not duplicates, v2 copies and re-reads every output to
// find names that became equal (twice the bytes per encode, measured).
//
// The last is the one thing taken from the v1 package, which is the same
// module as v2 and, as encoding/json does for encoding/json/v2, holds the
// legacy options: the checks' state types tag numbers and bools omitempty.
// Once those tags say omitzero, the option and the import can go; the
// zero-field cases of the codec golden tests pin the bytes meanwhile.
var encodeOptions = json.JoinOptions(
	jsonv1.OmitEmptyWithLegacySemantics(true),
	jsontext.EscapeForHTML(true),
	jsontext.EscapeForJS(true),
	jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true),
	json.Deterministic(true),
	json.FormatNilSliceAsNull(true),
	json.FormatNilMapAsNull(true),
)

// decodeOptions read what v1 wrote, and skip v2's duplicate-name tracking,
// which the codec's own output never needs.
var decodeOptions = json.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// Marshal returns v's stored JSON.
func Marshal[T any](v T) ([]byte, error) { return json.MarshalOf(v, encodeOptions) }

// Unmarshal decodes stored JSON b into v.
func Unmarshal[T any](b []byte, v *T) error { return json.UnmarshalOf(b, v, decodeOptions) }
