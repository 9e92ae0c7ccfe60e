// Package jsonscan validates and walks a JSON document in one pass over its
// bytes, without building values: the caller steps through objects and
// arrays, reads the members it cares about and skips the rest.
//
// It accepts exactly the documents encoding/json accepts (fuzzed against
// json.Valid and json.Unmarshal), including encoding/json's nesting limit,
// and reports syntax errors in encoding/json's words with the byte offset.
// Like encoding/json it does not reject invalid UTF-8 inside strings;
// decoded strings replace invalid bytes with U+FFFD as encoding/json does,
// and NonASCII tells a caller when a value may need a utf8.Valid check.
//
// Everything it returns (keys, raw values, plain strings) points into the
// scanned bytes: the caller must not modify them while those are in use.
package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// MaxDepth is encoding/json's nesting limit; the scanner refuses deeper
// documents the same way, so both agree on what is valid JSON.
const MaxDepth = 10000

// Scanner walks one JSON document. Its zero value is unusable: start with
// New. After the first syntax error every method returns false (or a zero
// value) and Err reports that error.
type Scanner struct {
	b   []byte
	p   int
	err error // first syntax error

	key      []byte // the current member's key, unquoted bytes (see KeyIs)
	keyRaw   []byte // the quoted key
	keyPlain bool   // the key has no escapes and only ASCII bytes
	nonASCII bool   // some string since ResetNonASCII had non-ASCII bytes
}

// New returns a scanner positioned at the start of b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// Err is the first syntax error met, or nil.
func (s *Scanner) Err() error { return s.err }

// Pos is the offset of the scanner in its input.
func (s *Scanner) Pos() int { return s.p }

// Slice returns the input from start (an earlier Pos) to the current
// position: the raw bytes of the values read in between.
func (s *Scanner) Slice(start int) []byte { return s.b[start:s.p] }

func (s *Scanner) syntax(format string, args ...any) bool {
	if s.err == nil {
		s.err = fmt.Errorf("invalid JSON at byte %d: %s", s.p, fmt.Sprintf(format, args...))
	}
	return false
}

// SkipSpace moves past JSON whitespace.
func (s *Scanner) SkipSpace() {
	for s.p < len(s.b) {
		switch s.b[s.p] {
		case ' ', '\t', '\n', '\r':
			s.p++
		default:
			return
		}
	}
}

// End reports whether only whitespace remains after the top-level value,
// recording an error otherwise (when no error was recorded before).
func (s *Scanner) End() bool {
	if s.err != nil {
		return false
	}
	s.SkipSpace()
	if s.p < len(s.b) {
		s.err = fmt.Errorf("invalid JSON at byte %d: unexpected data after the top-level value", s.p)
		return false
	}
	return true
}

// Valid reports whether b is one JSON value, as json.Valid does.
func Valid(b []byte) bool {
	s := Scanner{b: b}
	return s.Value() && s.Skip(0) && s.End()
}

// Value moves past whitespace and reports whether a value can start there
// (recording an error at the end of the input).
func (s *Scanner) Value() bool {
	if s.err != nil {
		return false
	}
	s.SkipSpace()
	if s.p >= len(s.b) {
		return s.syntax("unexpected end of input")
	}
	return true
}

// Kind is the JSON type of a value, told by its first byte.
type Kind uint8

// The kinds of values; Invalid is a byte no value starts with.
const (
	Invalid Kind = iota
	Object
	Array
	String
	Number
	Bool
	Null
)

// String names the kind for messages ("object", "boolean", ...).
func (k Kind) String() string {
	switch k {
	case Object:
		return "object"
	case Array:
		return "array"
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "boolean"
	case Null:
		return "null"
	}
	return "invalid"
}

// Kind is the kind of the value at the scanner (after Value,
// NextMember or NextElement returned true). It does not validate it.
func (s *Scanner) Kind() Kind {
	if s.p >= len(s.b) {
		return Invalid
	}
	switch c := s.b[s.p]; {
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == '"':
		return String
	case c == '-' || '0' <= c && c <= '9':
		return Number
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	}
	return Invalid
}

// DepthOK reports whether a container opened inside depth enclosing
// containers stays within MaxDepth, recording encoding/json's error when not.
// A caller walking a container itself checks it before NextMember or
// NextElement; Skip checks it for what it skips.
func (s *Scanner) DepthOK(depth int) bool {
	if depth+1 > MaxDepth {
		return s.syntax("exceeded max depth")
	}
	return true
}

// Skip validates the value at the scanner and moves past it; depth is the
// nesting depth of the container holding it (0 at the top level).
func (s *Scanner) Skip(depth int) bool {
	if !s.Value() {
		return false
	}
	switch s.Kind() {
	case Object:
		if !s.DepthOK(depth) {
			return false
		}
		first := true
		for s.NextMember(&first) {
			if !s.Skip(depth + 1) {
				return false
			}
		}
		return s.err == nil
	case Array:
		if !s.DepthOK(depth) {
			return false
		}
		first := true
		for s.NextElement(&first) {
			if !s.Skip(depth + 1) {
				return false
			}
		}
		return s.err == nil
	case String:
		_, _, ok := s.StringToken()
		return ok
	case Number:
		_, ok := s.Number()
		return ok
	case Bool:
		if s.b[s.p] == 't' {
			return s.lit("true")
		}
		return s.lit("false")
	case Null:
		return s.lit("null")
	default:
		return s.syntax("invalid character %q looking for beginning of value", s.b[s.p])
	}
}

// NextMember advances to the next member of the object at the scanner (on
// its '{' on the first call, with *first true), leaving the scanner at the
// member's value and its key in Key. It returns false after the closing
// brace, or on a syntax error (see Err). Every value must be read or
// skipped before the next call.
func (s *Scanner) NextMember(first *bool) bool {
	if s.err != nil {
		return false
	}
	if *first {
		*first = false
		s.p++ // '{'
		s.SkipSpace()
		if s.p < len(s.b) && s.b[s.p] == '}' {
			s.p++
			return false
		}
	} else {
		s.SkipSpace()
		if s.p >= len(s.b) {
			return s.syntax("unexpected end of input")
		}
		switch s.b[s.p] {
		case '}':
			s.p++
			return false
		case ',':
			s.p++
			s.SkipSpace()
		default:
			return s.syntax("invalid character %q after object key:value pair", s.b[s.p])
		}
	}
	if s.p >= len(s.b) {
		return s.syntax("unexpected end of input")
	}
	if s.b[s.p] != '"' {
		return s.syntax("invalid character %q looking for beginning of object key string", s.b[s.p])
	}
	tok, plain, ok := s.StringToken()
	if !ok {
		return false
	}
	s.keyRaw, s.key, s.keyPlain = tok, tok[1:len(tok)-1], plain
	s.SkipSpace()
	if s.p >= len(s.b) {
		return s.syntax("unexpected end of input")
	}
	if s.b[s.p] != ':' {
		return s.syntax("invalid character %q after object key", s.b[s.p])
	}
	s.p++
	return s.Value()
}

// NextElement is NextMember for arrays: it leaves the scanner at the next
// element (on the '[' on the first call, with *first true).
func (s *Scanner) NextElement(first *bool) bool {
	if s.err != nil {
		return false
	}
	if *first {
		*first = false
		s.p++ // '['
		s.SkipSpace()
		if s.p < len(s.b) && s.b[s.p] == ']' {
			s.p++
			return false
		}
		return s.Value()
	}
	s.SkipSpace()
	if s.p >= len(s.b) {
		return s.syntax("unexpected end of input")
	}
	switch s.b[s.p] {
	case ']':
		s.p++
		return false
	case ',':
		s.p++
		return s.Value()
	default:
		return s.syntax("invalid character %q after array element", s.b[s.p])
	}
}

// KeyName returns the current member's key, decoded.
func (s *Scanner) KeyName() string {
	if s.keyPlain {
		return string(s.key)
	}
	return Unquote(s.keyRaw)
}

// KeyIs reports whether the current member's key is name, exactly
// (encoding/json would also match a struct field case-insensitively).
func (s *Scanner) KeyIs(name string) bool {
	if s.keyPlain {
		return string(s.key) == name
	}
	return s.KeyName() == name
}

// strTable marks the bytes a string can hold without a closer look.
var strTable = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// StringToken validates the string at the scanner (on its opening quote)
// and moves past it. tok is the string as written, quotes included; plain
// reports that it has no escapes and only ASCII bytes, so tok[1:len(tok)-1]
// is its value. Otherwise Unquote(tok) decodes it.
func (s *Scanner) StringToken() (tok []byte, plain, ok bool) {
	b, start := s.b, s.p
	if s.err != nil || start >= len(b) || b[start] != '"' {
		return nil, false, s.syntax("expected a string")
	}
	plain = true
	for i := start + 1; i < len(b); i++ {
		// Skip 8 plain bytes at a time: most of a document is string content.
		for i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		if strTable[c] {
			continue
		}
		switch {
		case c == '"':
			s.p = i + 1
			return b[start:s.p], plain, true
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				s.p = i
				return nil, false, s.syntax("unexpected end of input")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for j := 1; j <= 4; j++ {
					if i+j >= len(b) {
						s.p = i + j
						return nil, false, s.syntax("unexpected end of input")
					}
					if !isHex(b[i+j]) {
						s.p = i + j
						return nil, false, s.syntax("invalid character %q in \\u hexadecimal character escape", b[i+j])
					}
				}
				i += 4
			default:
				s.p = i
				return nil, false, s.syntax("invalid character %q in string escape code", b[i])
			}
		case c < 0x20:
			s.p = i
			return nil, false, s.syntax("invalid character %q in string literal", c)
		default: // >= 0x80
			plain, s.nonASCII = false, true
		}
	}
	s.p = len(b)
	return nil, false, s.syntax("unexpected end of input")
}

// ReadString reads the string at the scanner, decoded.
func (s *Scanner) ReadString() (string, bool) {
	tok, plain, ok := s.StringToken()
	switch {
	case !ok:
		return "", false
	case plain:
		return string(tok[1 : len(tok)-1]), true
	}
	return Unquote(tok), true
}

// Unquote decodes a string token that StringToken returned as encoding/json
// does: escapes resolved, invalid UTF-8 and lone surrogates replaced by
// U+FFFD.
func Unquote(tok []byte) string {
	var v string
	_ = json.Unmarshal(tok, &v) // validated by StringToken
	return v
}

// ResetNonASCII starts a new span for NonASCII.
func (s *Scanner) ResetNonASCII() { s.nonASCII = false }

// NonASCII reports whether any string scanned since ResetNonASCII (or New)
// held a non-ASCII byte. Outside strings valid JSON is ASCII, so a value
// scanned in that span with NonASCII false needs no UTF-8 check.
func (s *Scanner) NonASCII() bool { return s.nonASCII }

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether none of the 8 bytes in x is a quote, a backslash, a
// control character or non-ASCII (the classic "has zero byte" bit tricks).
func plain8(x uint64) bool {
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((q-ones)&^q|(bs-ones)&^bs|(x-ones*0x20)&^x|x)&highs == 0
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// Number validates the number at the scanner,
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and moves past it,
// returning it as written.
func (s *Scanner) Number() ([]byte, bool) {
	if s.err != nil {
		return nil, false
	}
	b, start := s.b, s.p
	i := start
	digits := func() bool {
		from := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > from
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		s.p = i
		return nil, s.syntax("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			s.p = i
			return nil, s.syntax("invalid number: digits expected after the decimal point")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			s.p = i
			return nil, s.syntax("invalid number: digits expected in the exponent")
		}
	}
	s.p = i
	return b[start:i], true
}

func (s *Scanner) lit(word string) bool {
	if len(s.b)-s.p < len(word) || string(s.b[s.p:s.p+len(word)]) != word {
		return s.syntax("invalid literal, expected %s", word)
	}
	s.p += len(word)
	return true
}
