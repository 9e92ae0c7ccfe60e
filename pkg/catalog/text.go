package catalog

import (
	"math"
	"unicode/utf8"
)

// Text columns (response bodies, reasons built from error texts, ids taken
// from payloads) may carry anything an endpoint or a producer sent. Postgres
// refuses a text value holding NUL or invalid UTF-8, and a refused row used
// to stall the writer that carried it, so every such value passes through
// SafeText on its way into the catalog: here, in one place.

// MaxResponseText is how many bytes of an endpoint's response body (or an
// error text standing in for it) an attempt row or rejected event keeps.
const MaxResponseText = 1024

// maxReasonText bounds a log reason built from an endpoint's answer.
const maxReasonText = 2048

// maxIDText bounds ids taken from event payloads and headers.
const maxIDText = 512

// SafeText returns s as valid UTF-8 without NUL, at most max bytes long
// (max <= 0: no bound), never cutting a character: each NUL and each invalid
// byte becomes U+FFFD, an incomplete character at the end of s (a cap applied
// upstream cut it) is dropped, and the cap ends s at a character boundary.
// It returns s itself, without allocating, when s is already safe and short
// enough.
func SafeText(s string, max int) string {
	if max <= 0 {
		max = math.MaxInt
	}
	if clean(s, max) {
		return s
	}
	out := make([]byte, 0, min(len(s)+len(s)/2, max))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 && !utf8.FullRuneInString(s[i:]) {
			break // a character cut at the end: drop its remains
		}
		if r == 0 || (r == utf8.RuneError && size <= 1) {
			r, size = utf8.RuneError, max1(size)
		}
		if len(out)+utf8.RuneLen(r) > max {
			break
		}
		out = utf8.AppendRune(out, r)
		i += size
	}
	return string(out)
}

// clean reports whether s is valid UTF-8 without NUL and ends, within its
// first max bytes, at a character boundary with nothing beyond.
func clean(s string, max int) bool {
	if max < len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:]) && !hasNUL(s[i:])
		}
	}
	return true
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
