package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/events"
)

func TestPayloadID(t *testing.T) {
	cases := []struct {
		payload string
		want    string
		err     string // substring; "" = success
	}{
		{`{"id":"1431b891"}`, "1431b891", ""},
		{` { "a" : {"id":"nested"}, "id" : 42 } `, "42", ""},
		{`{"id":-1.5e3}`, "-1.5e3", ""},
		{`{"id":"a\"b"}`, `a"b`, ""},
		{`{"\u0069d":"escaped-key"}`, "escaped-key", ""},
		{`{"x":["id",{"id":1}],"id":"last","y":"}"}`, "last", ""},
		{`{"id":"first","id":"second"}`, "second", ""},
		{`{"ID":"upper"}`, "", "no id"},
		{`{}`, "", "no id"},
		{`{"id":null}`, "", "no id"},
		{`{"id":""}`, "", "must not be empty"},
		{`{"id":true}`, "", "string or a number"},
		{`{"id":{"a":1}}`, "", "string or a number"},
		{`{"id":"a\u0000b"}`, "", "control characters"},
		{`{"id":"` + strings.Repeat("x", events.MaxKeyLength+1) + `"}`, "", "at most"},
		{`[1]`, "", "not a JSON object"},
		{`"id"`, "", "not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.payload[:min(len(c.payload), 30)], func(t *testing.T) {
			got, err := events.PayloadID([]byte(c.payload))
			if c.err == "" {
				if err != nil || got != c.want {
					t.Fatalf("PayloadID = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("PayloadID = %q, %v; want error containing %q", got, err, c.err)
			}
		})
	}
}

// FuzzPayloadID checks the hand-written scanner against encoding/json: on any
// valid JSON object it finds exactly the id a full decode sees.
func FuzzPayloadID(f *testing.F) {
	for _, s := range []string{`{"id":"x"}`, `{"id":12,"a":[{"id":"n"}]}`, `{"a":"\"}","id":"q"}`, `{"\u0069d":1}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &m) != nil || m == nil {
			return
		}
		got, err := events.PayloadID([]byte(s))
		raw, ok := m["id"]
		if !ok || string(raw) == "null" {
			if !errors.Is(err, events.ErrNoPayloadID) {
				t.Fatalf("no id in %s, PayloadID = %q, %v", s, got, err)
			}
			return
		}
		var str string
		var num json.Number
		switch {
		case json.Unmarshal(raw, &str) == nil:
			// encoding/json replaces invalid UTF-8 with U+FFFD; PayloadID
			// refuses it instead, so only valid input must agree.
			if utf8.Valid(raw) && events.CheckKey(str) == nil && (err != nil || got != str) {
				t.Fatalf("id %s in %s: PayloadID = %q, %v", raw, s, got, err)
			}
		case json.Unmarshal(raw, &num) == nil:
			if err != nil || got != num.String() {
				t.Fatalf("id %s in %s: PayloadID = %q, %v", raw, s, got, err)
			}
		default:
			if err == nil {
				t.Fatalf("id %s in %s accepted as %q", raw, s, got)
			}
		}
	})
}
