package webhook

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzTrimPartialRune: cutting a valid text anywhere and trimming leaves a
// valid prefix that loses at most the one cut character.
func FuzzTrimPartialRune(f *testing.F) {
	f.Add("café €uro 😀", 5)
	f.Add("plain", 3)
	f.Fuzz(func(t *testing.T, s string, cut int) {
		if !utf8.ValidString(s) || len(s) == 0 {
			return
		}
		cut = (cut%len(s) + len(s)) % len(s)
		got := trimPartialRune([]byte(s[:cut]))
		if !utf8.Valid(got) || !bytes.HasPrefix([]byte(s), got) || cut-len(got) >= utf8.UTFMax {
			t.Fatalf("trim(%q[:%d]) = %q", s, cut, got)
		}
	})
}
