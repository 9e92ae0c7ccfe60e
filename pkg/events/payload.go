package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxKeyLength bounds idempotency keys and domain entity ids (bytes). They
// travel as Kafka keys and headers and are indexed in the catalog; a bound
// keeps them cheap everywhere.
const MaxKeyLength = 512

// ErrNoPayloadID means the payload has no usable top-level "id".
var ErrNoPayloadID = errors.New("payload has no id")

// PayloadID returns the payload's top-level "id" as text: a JSON string's
// value, or a JSON number's literal (123 → "123"). The payload's id is the
// default domain entity id and idempotency key of an event.
//
// payload must be valid JSON (callers decode it first); PayloadID does not
// re-validate it, it only walks the top-level keys, so it costs one pass and
// no allocation for string ids without escapes. Keys match exactly ("ID" is
// not "id", unlike encoding/json's struct matching); with duplicate keys the
// last one wins, as in most JSON decoders. It fails with ErrNoPayloadID when
// there is no id (or it is null), and with a descriptive error when the id is
// not a string or number or is not a sane key (see CheckKey).
func PayloadID(payload []byte) (string, error) {
	p := skipSpace(payload, 0)
	if p >= len(payload) || payload[p] != '{' {
		return "", errors.New("payload is not a JSON object")
	}
	p++
	var val []byte
	found := false
	for {
		p = skipSpace(payload, p)
		if p >= len(payload) {
			return "", errors.New("payload is not a JSON object")
		}
		if payload[p] == '}' {
			break
		}
		if payload[p] == ',' {
			p++
			continue
		}
		if payload[p] != '"' {
			return "", errors.New("payload is not a JSON object")
		}
		kEnd, escaped := skipString(payload, p)
		if kEnd < 0 {
			return "", errors.New("payload is not a JSON object")
		}
		isID := keyIs(payload[p:kEnd], escaped, "id")
		p = skipSpace(payload, kEnd)
		if p >= len(payload) || payload[p] != ':' {
			return "", errors.New("payload is not a JSON object")
		}
		p = skipSpace(payload, p+1)
		vEnd := skipValue(payload, p)
		if vEnd < 0 {
			return "", errors.New("payload is not a JSON object")
		}
		if isID {
			val, found = payload[p:vEnd], true
		}
		p = vEnd
	}
	if !found {
		return "", ErrNoPayloadID
	}
	return IDValue(val)
}

// IDValue turns the raw JSON value of a payload's "id" into the id text, as
// PayloadID does (for parsers that located the value themselves): null is
// ErrNoPayloadID, a string its value, a number its literal; anything else, or
// an id that fails CheckKey, is an error.
func IDValue(val []byte) (string, error) {
	if len(val) == 0 || string(val) == "null" {
		return "", ErrNoPayloadID
	}
	var id string
	switch c := val[0]; {
	case c == '"':
		if _, escaped := skipString(val, 0); escaped {
			if err := json.Unmarshal(val, &id); err != nil {
				return "", fmt.Errorf("payload.id: %w", err)
			}
		} else {
			id = string(val[1 : len(val)-1])
		}
	case c == '-' || (c >= '0' && c <= '9'):
		id = string(val)
	default:
		return "", errors.New("payload.id must be a string or a number")
	}
	if err := CheckKey(id); err != nil {
		return "", fmt.Errorf("payload.id %w", err)
	}
	return id, nil
}

// CheckKey reports whether s is usable as an idempotency key or domain entity
// id: non-empty, at most MaxKeyLength bytes of valid UTF-8 without control
// characters (event ids join their parts with NUL, and keys end up in headers
// and logs). The error reads after the field's name ("idempotency_key must ...").
func CheckKey(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxKeyLength:
		return fmt.Errorf("must be at most %d bytes", MaxKeyLength)
	case !utf8.ValidString(s):
		return errors.New("must be valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("must not contain control characters")
		}
	}
	return nil
}

func keyIs(quoted []byte, escaped bool, want string) bool {
	if !escaped {
		return string(quoted[1:len(quoted)-1]) == want
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == want
}

func skipSpace(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
		p++
	}
	return p
}

// skipString returns the index just past the string starting at b[p] == '"',
// or -1, and whether it contains escapes.
func skipString(b []byte, p int) (int, bool) {
	escaped := false
	for i := p + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index just past the JSON value starting at b[p], or -1.
func skipValue(b []byte, p int) int {
	if p >= len(b) {
		return -1
	}
	switch b[p] {
	case '"':
		end, _ := skipString(b, p)
		return end
	case '{', '[':
		depth := 0
		for i := p; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, _ := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default: // number, true, false, null
		i := p
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' &&
			b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		if i == p {
			return -1
		}
		return i
	}
}
