package alerting

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"ééé", 2, "é…"},
		{"🙂🙂🙂", 3, "🙂🙂🙂"},
		{"🙂🙂🙂🙂", 3, "🙂🙂…"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"abc", 0, ""},
	} {
		if got := truncate(tc.in, tc.limit); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

func TestSlackText(t *testing.T) {
	for _, tc := range []struct {
		prefix, in string
		limit      int
		want       string
	}{
		{"*T*\n", "a<b", 20, "*T*\na&lt;b"},
		{"", "<!channel>", 100, "&lt;!channel&gt;"},
		{"", "abcde", 5, "abcde"},
		{"", "abcdef", 5, "abcd…"},
		{"", "abc&", 8, "abc&amp;"},
		{"", "abc&d", 8, "abc…"}, // never "abc&am…"
		{"", "ab&cd", 8, "ab&amp;…"},
		{"", "u-\u202e1", 100, "u-[U+202E]1"}, // hidden characters shown (visible.Text)
	} {
		if got := slackText(tc.prefix, tc.in, tc.limit); got != tc.want {
			t.Errorf("slackText(%q, %q, %d) = %q, want %q", tc.prefix, tc.in, tc.limit, got, tc.want)
		}
	}
}

// FuzzSlackText checks the invariants Slack needs for any input: within
// the limit, valid UTF-8, no raw angle brackets, no entity cut in half.
func FuzzSlackText(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "é🙂&&&", "\xff\xfe", strings.Repeat("&", 50)} {
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = 1 + abs(limit)%3000
		got := slackText("", s, limit)
		if n := utf8.RuneCountInString(got); n > limit {
			t.Fatalf("%d runes > limit %d", n, limit)
		}
		if !utf8.ValidString(got) {
			t.Fatal("invalid UTF-8")
		}
		if strings.ContainsAny(got, "<>") {
			t.Fatal("unescaped angle bracket")
		}
		for i := 0; i < len(got); i++ {
			if got[i] == '&' && !strings.HasPrefix(got[i:], "&amp;") && !strings.HasPrefix(got[i:], "&lt;") && !strings.HasPrefix(got[i:], "&gt;") {
				t.Fatalf("bare or cut entity at %d in %q", i, got)
			}
		}
		plain := truncate(s, limit)
		if n := utf8.RuneCountInString(plain); n > limit || !utf8.ValidString(plain) {
			t.Fatalf("truncate: %d runes, valid %v", n, utf8.ValidString(plain))
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
