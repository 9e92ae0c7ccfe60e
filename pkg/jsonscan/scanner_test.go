package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/pkg/jsonscan"
)

// decode builds the value of b with the scanner, as json.Unmarshal into an
// any with UseNumber builds it: objects as map[string]any (the last of
// repeated keys wins), arrays as []any, numbers as json.Number.
func decode(b []byte) (any, error) {
	s := jsonscan.New(b)
	if !s.Value() {
		return nil, s.Err()
	}
	v := value(s, 0)
	if !s.End() {
		return nil, s.Err()
	}
	return v, nil
}

func value(s *jsonscan.Scanner, depth int) any {
	switch s.Kind() {
	case jsonscan.Object:
		if !s.DepthOK(depth) {
			return nil
		}
		m := map[string]any{}
		first := true
		for s.NextMember(&first) {
			k := s.KeyName()
			m[k] = value(s, depth+1)
		}
		return m
	case jsonscan.Array:
		if !s.DepthOK(depth) {
			return nil
		}
		a := []any{}
		first := true
		for s.NextElement(&first) {
			a = append(a, value(s, depth+1))
		}
		return a
	case jsonscan.String:
		v, _ := s.ReadString()
		return v
	case jsonscan.Number:
		n, _ := s.Number()
		return json.Number(n)
	default: // literals and invalid bytes: Skip validates them
		start := s.Pos()
		if !s.Skip(depth) {
			return nil
		}
		switch string(s.Slice(start)) {
		case "true":
			return true
		case "false":
			return false
		}
		return nil
	}
}

func reference(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil || d.More() {
		return nil, fmt.Errorf("data after the value")
	}
	if !json.Valid(b) { // the decoder stops at the first value; Valid sees the rest
		return nil, fmt.Errorf("not valid")
	}
	return v, nil
}

// FuzzScannerMatchesEncodingJSON: on any input, the scanner accepts exactly
// what json.Valid accepts, and the values it reads (keys and strings decoded,
// numbers as written) are the ones json.Unmarshal produces.
func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0.5e+3`, `true`, `null`, ` {"a" : [1, "x", {"b": null}], "a": false } `,
		`{"k\u00e9y":"v\"\\\/\b\f\n\r\t\ud800x"}`, "\"\xff\xfe\"", `[1,]`, `{"a":1,}`, `01`, `1.`, `1e`, `-`,
		`"\u12"`, `"\x"`, "\"a\x01\"", `[1 2]`, `{"a" 1}`, `{1:2}`, `tru`, `nul`, `[`, `{"a":`, `"abc`, `1 2`,
		`"0123456789abcdef\"0123456789"`, `{"a":"é"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		valid := jsonscan.Valid(b)
		if want := json.Valid(b); valid != want {
			t.Fatalf("Valid %v, json.Valid %v: %q", valid, want, b)
		}
		got, err := decode(b)
		if (err == nil) != valid {
			t.Fatalf("decoding: %v, Valid %v: %q", err, valid, b)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid JSON at byte ") {
				t.Fatalf("error %q", err)
			}
			return
		}
		want, err := reference(b)
		if err != nil {
			t.Fatalf("reference: %v: %q", err, b)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanner %#v\nencoding/json %#v\ninput %q", got, want, b)
		}
	})
}

// TestStringsAtEveryOffset puts each byte class the string scanner treats
// specially at every offset of a long string, so both its 8-byte fast path
// and its byte loop meet it, and compares with encoding/json.
func TestStringsAtEveryOffset(t *testing.T) {
	specials := []string{`\"`, `\\`, `\u00e9`, `\ud83d\ude00`, `\n`, "\x01", "\x1f", "\x7f", "é", "\xff", `\x`, `"`, `\u12`, ``}
	for _, sp := range specials {
		for off := range 24 {
			tok := []byte(`"` + strings.Repeat("a", off) + sp + strings.Repeat("b", 17) + `"`)
			s := jsonscan.New(tok)
			got, ok := s.ReadString()
			ok = ok && s.End()
			var want string
			wantErr := json.Unmarshal(tok, &want)
			if ok != (wantErr == nil) || ok && got != want {
				t.Fatalf("%q: scanner %q %v (%v), encoding/json %q %v", tok, got, ok, s.Err(), want, wantErr)
			}
		}
	}
}

func TestDepthLimitMatchesEncodingJSON(t *testing.T) {
	for _, depth := range []int{jsonscan.MaxDepth - 1, jsonscan.MaxDepth, jsonscan.MaxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closing := map[string]string{"[": "]", `{"a":`: "}"}[open]
			b := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closing, depth))
			if got, want := jsonscan.Valid(b), json.Valid(b); got != want {
				t.Errorf("%d × %s: Valid %v, json.Valid %v", depth, open, got, want)
			}
		}
	}
}

func TestScannerReadsMembers(t *testing.T) {
	b := []byte(` {"plain": "v", "k\u00e9y": [1, -2.5e3], "ascii": "x", "high": "é", "skip": {"x": [true, null]}} `)
	s := jsonscan.New(b)
	if !s.Value() || s.Kind() != jsonscan.Object {
		t.Fatalf("kind %v, err %v", s.Kind(), s.Err())
	}
	type member struct {
		key, kind, raw string
		nonASCII       bool
	}
	var got []member
	first := true
	for s.NextMember(&first) {
		m := member{key: s.KeyName(), kind: s.Kind().String()}
		s.ResetNonASCII()
		start := s.Pos()
		if !s.Skip(1) {
			t.Fatal(s.Err())
		}
		m.raw, m.nonASCII = string(s.Slice(start)), s.NonASCII()
		got = append(got, m)
		if s.KeyIs("kéy") != (m.key == "kéy") {
			t.Errorf("KeyIs(kéy) wrong for %q", m.key)
		}
	}
	if !s.End() {
		t.Fatal(s.Err())
	}
	want := []member{
		{"plain", "string", `"v"`, false},
		{"kéy", "array", `[1, -2.5e3]`, false},
		{"ascii", "string", `"x"`, false},
		{"high", "string", `"é"`, true},
		{"skip", "object", `{"x": [true, null]}`, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members\n %+v\nwant %+v", got, want)
	}
}

func TestSyntaxErrorsNameTheByte(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,}`, `invalid JSON at byte 7: invalid character '}' looking for beginning of object key string`},
		{`[1 2]`, `invalid JSON at byte 3: invalid character '2' after array element`},
		{`{"a":1} x`, `invalid JSON at byte 8: unexpected data after the top-level value`},
		{`"a`, `invalid JSON at byte 2: unexpected end of input`},
		{`01`, `invalid JSON at byte 1: unexpected data after the top-level value`},
		{`-x`, `invalid JSON at byte 1: invalid number`},
		{`nul`, `invalid JSON at byte 0: invalid literal, expected null`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s := jsonscan.New([]byte(tc.in))
			if s.Value() && s.Skip(0) && s.End() {
				t.Fatal("accepted")
			}
			if got := s.Err().Error(); got != tc.want {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
}
