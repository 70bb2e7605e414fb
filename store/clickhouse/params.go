package clickhouse

import (
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// params collects the values of one statement as server-side query
// parameters: each method returns the {name:Type} placeholder the SQL text
// uses, and list gives the values to Query, QueryRow or Exec as
// clickhouse.Named arguments. The server parses each value as data of its
// type, on the native and the HTTP protocol alike, so no value is ever
// spliced into SQL text and nothing needs quoting. (clickhouse-go sends
// Named values with a query holding {name:Type} as parameters, escaping
// them for the server's text format itself.)
//
// Database and table names cannot be parameters: they come from
// configuration, checked once by Schema.Validate to be plain identifiers,
// and stay in the text.
type params struct{ named []any }

// bind adds v as a parameter of ClickHouse type typ.
func (p *params) bind(typ string, v any) string {
	name := "p" + strconv.Itoa(len(p.named))
	p.named = append(p.named, clickhouse.Named(name, v))
	return "{" + name + ":" + typ + "}"
}

func (p *params) str(v string) string     { return p.bind("String", v) }
func (p *params) strs(vs []string) string { return p.bind("Array(String)", textArray{1, vs}) }
func (p *params) int(v int64) string      { return p.bind("Int64", v) }
func (p *params) uint(v uint64) string    { return p.bind("UInt64", v) }
func (p *params) list() []any             { return p.named }

// tuples binds vals, width strings to a tuple, as one
// Array(Tuple(String, …)) parameter.
func (p *params) tuples(width int, vals []string) string {
	return p.bind("Array(Tuple("+strings.Repeat("String, ", width-1)+"String))", textArray{width, vals})
}

// textArray is an array of strings (width 1) or of tuples of width strings,
// as a parameter: its String is the value in the server's text format,
// which clickhouse-go sends as it is for a fmt.Stringer. Given a []string
// or a []any of GroupSets instead, clickhouse-go formats them by
// reflection, value by value, at several allocations each: with a batch's
// 5,000 keys that was 13% more client CPU per Apply than the SQL of
// quoted literals it replaced. The text is the one clickhouse-go writes
// for such values (quoteText), so the server reads the same data.
type textArray struct {
	width int
	vals  []string
}

func (a textArray) String() string {
	n := 2
	for _, v := range a.vals {
		n += len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, v := range a.vals {
		if i > 0 {
			b = append(b, ',')
		}
		if a.width > 1 && i%a.width == 0 {
			b = append(b, '(')
		}
		b = quoteText(b, v)
		if a.width > 1 && i%a.width == a.width-1 {
			b = append(b, ')')
		}
	}
	return string(append(b, ']'))
}

// quoteText appends s as a quoted string of the text format, escaped as
// clickhouse-go escapes a string within an array or a tuple parameter
// (backslash, quote, NUL); the hostile-values suite checks that each such
// value reads back as itself.
func quoteText(b []byte, s string) []byte {
	b = append(b, '\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b = append(b, '\\', c)
		case 0:
			b = append(b, '\\', '0')
		default:
			b = append(b, c)
		}
	}
	return append(b, '\'')
}

// time binds t (clamped to the columns' range) as nanoseconds: instants
// compare exactly whatever zone t is in.
func (p *params) time(t time.Time) string {
	return "fromUnixTimestamp64Nano(" + p.int(clampTime(t).UnixNano()) + ", 'UTC')"
}

// maxChunkBytes bounds the text of the keys bound as one parameter. Over
// HTTP parameters travel in the URL, which ClickHouse caps at 1 MiB
// (http_max_uri_size); escaping for the text format and then the URL makes
// a byte at most 12 (a backslash in a tuple), so 64 KiB of keys stay under
// it whatever they hold.
const maxChunkBytes = 64 << 10

// chunks splits n keys into runs [lo, hi) of at most keyChunk keys and
// about maxChunkBytes of text, size(i) being key i's length.
func chunks(n int, size func(i int) int) [][2]int {
	var out [][2]int
	lo, bytes := 0, 0
	for i := range n {
		s := size(i)
		if i > lo && (i-lo == keyChunk || bytes+s > maxChunkBytes) {
			out = append(out, [2]int{lo, i})
			lo, bytes = i, 0
		}
		bytes += s
	}
	if lo < n {
		out = append(out, [2]int{lo, n})
	}
	return out
}
