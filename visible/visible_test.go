package visible

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain ASCII", "u-17", "u-17"},
		{"empty", "", ""},
		{"letters of other scripts", "Zoë Ålund 日本 مريم", "Zoë Ålund 日本 مريم"},
		{"right-to-left override", "u-\u202e71", "u-[U+202E]71"},
		{"every bidirectional control", "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
			"[U+061C][U+200E][U+200F][U+202A][U+202B][U+202C][U+202D][U+202E][U+2066][U+2067][U+2068][U+2069]"},
		{"zero-width space and BOM", "a\u200bb\ufeffc", "a[U+200B]b[U+FEFF]c"},
		{"C0 and C1 controls", "a\x00b\x1bc\u0085d\x7f", "a[U+0000]b[U+001B]c[U+0085]d[U+007F]"},
		{"line separators", "a\u2028b\u2029c", "a[U+2028]b[U+2029]c"},
		{"tag character", "a\U000E0041", "a[U+E0041]"},
		{"layout kept", "line 1\r\nline 2\tend", "line 1\r\nline 2\tend"},
		{"joiners kept", "👩\u200d💻 می\u200cخواهم", "👩\u200d💻 می\u200cخواهم"},
		{"invalid UTF-8", "a\xffb", "a\ufffdb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Text(tc.in); got != tc.want {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := Text(tc.want); got != tc.want && utf8.ValidString(tc.in) {
				t.Errorf("Text is not idempotent: Text(%q) = %q", tc.want, got)
			}
		})
	}
}

func TestTextDoesNotAllocateForCleanText(t *testing.T) {
	s := "st-martins webster-court u-17 Zoë"
	if n := testing.AllocsPerRun(100, func() { _ = Text(s) }); n != 0 {
		t.Errorf("Text allocated %v times for clean text", n)
	}
}

func TestIndexHidden(t *testing.T) {
	tests := []struct {
		in   string
		at   int
		rune rune
	}{
		{"u-17", -1, 0},
		{"Zoë", -1, 0},
		{"u-\u202e71", 2, '\u202e'},
		{"a\tb", 1, '\t'},
		{"ab\u200d", 2, '\u200d'}, // refused in identifiers, kept in free text
		{"a\xff", 1, utf8.RuneError},
		{"x\u0085", 1, '\u0085'},
	}
	for _, tc := range tests {
		at, r := IndexHidden(tc.in)
		if at != tc.at || r != tc.rune {
			t.Errorf("IndexHidden(%q) = %d, %U; want %d, %U", tc.in, at, r, tc.at, tc.rune)
		}
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"u-17", "u-\u202e71", "a\xffb", "\r\n\t", "👩\u200d💻"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Text(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Text(%q) = %q is not valid UTF-8", s, out)
		}
		for _, r := range out {
			if Hidden(r) && !keptInText(r) {
				t.Fatalf("Text(%q) = %q still holds %U", s, out, r)
			}
		}
		if again := Text(out); again != out {
			t.Fatalf("Text is not idempotent on %q: %q then %q", s, out, again)
		}
	})
}

// indexHiddenByRune is IndexHidden a character at a time, as it was before
// it read eight bytes at a time: the reference the fast path must equal.
func indexHiddenByRune(s string) (int, rune) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i, r
			}
		}
		if Hidden(r) {
			return i, r
		}
	}
	return -1, 0
}

// TestIndexHiddenEveryByte puts every byte value at every position of a
// word, and around the words' boundaries, in otherwise printable text.
func TestIndexHiddenEveryByte(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for b := range 256 {
				buf := []byte(strings.Repeat("u-~ 9Az", 4)[:n])
				buf[pos] = byte(b)
				s := string(buf)
				at, r := IndexHidden(s)
				wat, wr := indexHiddenByRune(s)
				if at != wat || r != wr {
					t.Fatalf("IndexHidden(%q) = %d, %U; want %d, %U", s, at, r, wat, wr)
				}
			}
		}
	}
}

func FuzzIndexHidden(f *testing.F) {
	for _, s := range []string{"u-17", "wiltshire-council\x7f", "abcdefgh\u202e", "abcdefg\xc2\x85", "\x1f0123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, r := IndexHidden(s)
		if wat, wr := indexHiddenByRune(s); at != wat || r != wr {
			t.Fatalf("IndexHidden(%q) = %d, %U; want %d, %U", s, at, r, wat, wr)
		}
	})
}
