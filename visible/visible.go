// Package visible decides which characters of untrusted text are hidden —
// control and format characters, the Unicode bidirectional controls among
// them — and shows them as their code points, so that an identifier reads
// the same in the web UI, Slack, a CSV export or a PDF as it does in the
// data, and cannot reorder or hide the text around it ("Trojan Source").
//
// The boundaries (event decoding, reference loading) refuse identifiers
// holding a hidden character (Hidden, IndexHidden); every output passes the
// text it shows through Text, for what was stored before the boundaries
// refused it and for free text (triage notes) that is not an identifier.
package visible

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Hidden reports whether r is invisible or changes how the text around it is
// laid out or read: a control character (Cc, C0 and C1), a format character
// (Cf: the bidirectional controls U+061C, U+200E, U+200F, U+202A–U+202E,
// U+2066–U+2069, zero-width characters, the byte order mark, soft hyphen,
// tag characters …) or a line or paragraph separator (U+2028, U+2029).
func Hidden(r rune) bool {
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return r <= 0x9f || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r)
}

// IndexHidden returns the byte index in s of the first hidden character or
// byte of invalid UTF-8, and the character (utf8.RuneError for invalid
// UTF-8); -1 when there is none.
func IndexHidden(s string) (int, rune) {
	// Eight bytes at a time while they are all printable ASCII (0x20 to
	// 0x7e), as nearly every identifier is: a tenth of decoding an event
	// went on this check a byte at a time. A word that may hold anything
	// else is read a character at a time below.
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		const ones, highs = 0x0101010101010101, 0x8080808080808080
		// A byte below 0x20, or at or above 0x7f (x+1 sets its high bit),
		// or a high bit already set: no false negatives.
		if ((x-ones*0x20)&^x|x|(x+ones))&highs != 0 {
			break
		}
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i, rune(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || Hidden(r) {
			return i, r
		}
		i += n
	}
	return -1, 0
}

// Notation is how Text shows a hidden character: "[U+202E]". ASCII, so
// that it survives every output, the PDF's single-byte fonts included.
func Notation(r rune) string {
	h := strings.ToUpper(strconv.FormatInt(int64(r), 16))
	if len(h) < 4 {
		h = strings.Repeat("0", 4-len(h)) + h
	}
	return "[U+" + h + "]"
}

// Text returns s with every hidden character replaced by its Notation and
// invalid UTF-8 by U+FFFD, except the characters free text legitimately
// holds: tab, line feed and carriage return (laid out by every output) and
// the zero-width joiner and non-joiner (U+200C, U+200D), which spell words
// in Persian and Indic scripts and emoji sequences and reorder nothing. It
// returns s itself, without allocating, when nothing needs replacing.
func Text(s string) string {
	i := indexShown(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for _, r := range s[i:] { // ranging yields U+FFFD for invalid UTF-8
		if Hidden(r) && !keptInText(r) {
			b.WriteString(Notation(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// indexShown is the index of the first byte Text changes, or -1.
func indexShown(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 || c == 0x7f) && !keptInText(rune(c)) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || (Hidden(r) && !keptInText(r)) {
			return i
		}
		i += n
	}
	return -1
}

func keptInText(r rune) bool {
	switch r {
	case '\t', '\n', '\r', '\u200c', '\u200d':
		return true
	}
	return false
}
