package catalog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeText(t *testing.T) {
	euro := "€" // 3 bytes
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"clean text is kept", "ok, thanks", 0, "ok, thanks"},
		{"NUL becomes U+FFFD", "a\x00b", 0, "a\uFFFDb"},
		{"invalid bytes become U+FFFD", "a\xffb\xc3", 0, "a\uFFFDb"},
		{"a character cut at the end is dropped", "price " + euro[:2], 0, "price "},
		{"the cap ends at a character boundary", strings.Repeat("a", 1022) + euro, 1024, strings.Repeat("a", 1022)},
		{"the cap fits whole characters", strings.Repeat(euro, 4), 9, strings.Repeat(euro, 3)},
		{"invalid then capped", "\xff\xff\xff", 4, "\uFFFD"},
		{"overlong encoding is invalid", "\xc0\x80", 0, "\uFFFD\uFFFD"},
		{"surrogate half is invalid", "\xed\xa0\x80", 0, "\uFFFD\uFFFD\uFFFD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := SafeText(c.in, c.max); got != c.want {
				t.Fatalf("SafeText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
			}
		})
	}
}

func TestSafeTextKeepsCleanStringsWithoutAllocating(t *testing.T) {
	s := strings.Repeat("héllo wörld ", 50)
	if n := testing.AllocsPerRun(100, func() { _ = SafeText(s, 0) }); n != 0 {
		t.Fatalf("SafeText allocated %v times for a clean string", n)
	}
}

func FuzzSafeText(f *testing.F) {
	for _, s := range []string{"", "ok", "a\x00b", "\xff", "€"[:2], strings.Repeat("€", 400)} {
		f.Add(s, 1024)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max % 4096
		got := SafeText(s, max)
		if !utf8.ValidString(got) || strings.ContainsRune(got, 0) {
			t.Fatalf("SafeText(%q, %d) = %q: not valid UTF-8 without NUL", s, max, got)
		}
		if max > 0 && len(got) > max {
			t.Fatalf("SafeText(%q, %d) is %d bytes", s, max, len(got))
		}
		if utf8.ValidString(s) && !strings.ContainsRune(s, 0) && (max <= 0 || len(s) <= max) && got != s {
			t.Fatalf("SafeText changed the clean %q into %q", s, got)
		}
		if again := SafeText(got, max); again != got {
			t.Fatalf("SafeText is not idempotent: %q then %q", got, again)
		}
	})
}
