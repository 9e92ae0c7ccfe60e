package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/httpapi"
)

// wireBody is either a single event (with an optional tenant) or a batch. It
// repeats wireEvent's fields instead of embedding it so that decoding errors
// name the field as sent ("name", not "wireEvent.name").
type refWireBody struct {
	Tenant         *string            `json:"tenant"`
	Events         *[]json.RawMessage `json:"events"`
	Name           *string            `json:"name"`
	PublishedAt    *string            `json:"published_at"`
	Payload        json.RawMessage    `json:"payload"`
	IdempotencyKey *string            `json:"idempotency_key"`
	DomainEntityID *string            `json:"domain_entity_id"`
}

// refParseEvents is the original encoding/json-based parser, kept as the
// reference the hand-written one is fuzzed against. It parses and validates a request body. now is the default
// published_at. Whole-body problems (not JSON, bad batch shape, too many
// events) are returned as an *httpapi.Error (400); a problem with one event
// is that event's Err, so the valid events of a batch can still be accepted.
func refParseEvents(body []byte, lim Limits, now time.Time) (*Request, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, httpapi.BadRequest("request body is empty: send one event object or {\"events\": [...]}")
	}
	if trimmed[0] != '{' {
		return nil, httpapi.BadRequest("request body must be a JSON object: one event or {\"events\": [...]}")
	}
	var wb refWireBody
	if err := httpapi.DecodeStrict(body, &wb); err != nil {
		return nil, err
	}
	req := &Request{}
	if wb.Tenant != nil {
		if !validTenant(*wb.Tenant) {
			return nil, httpapi.BadRequest("tenant: %s is not a tenant name (lowercase letters, digits and '-', at most 63)", quote(*wb.Tenant))
		}
		req.Tenant = *wb.Tenant
	}
	we := wireEvent{Name: wb.Name, PublishedAt: wb.PublishedAt, Payload: wb.Payload,
		IdempotencyKey: wb.IdempotencyKey, DomainEntityID: wb.DomainEntityID}
	if wb.Events == nil {
		if len(body) > lim.MaxEventBytes {
			return nil, &httpapi.Error{Status: http.StatusBadRequest, Code: CodeEventTooLarge,
				Message: fmt.Sprintf("event: %d bytes, more than the %d-byte limit per event", len(body), lim.MaxEventBytes)}
		}
		ev := validate(&we, -1, now, nil)
		if ev.Err != nil {
			return nil, &httpapi.Error{Status: http.StatusBadRequest, Code: ev.Err.Code, Message: ev.Err.Message}
		}
		req.Events = []Event{ev}
		return req, nil
	}
	if we.Name != nil || we.PublishedAt != nil || we.Payload != nil || we.IdempotencyKey != nil || we.DomainEntityID != nil {
		return nil, httpapi.BadRequest("events: a batch body has only \"events\" and \"tenant\" at the top level; put event fields inside the events")
	}
	items := *wb.Events
	switch {
	case len(items) == 0:
		return nil, httpapi.BadRequest("events: must hold at least one event")
	case len(items) > lim.MaxBatch:
		return nil, httpapi.BadRequest("events: %d events, at most %d per request", len(items), lim.MaxBatch)
	}
	req.Batch = true
	req.Events = make([]Event, len(items))
	for i, raw := range items {
		req.Events[i] = refParseItem(raw, eventRef(i), lim, now)
	}
	return req, nil
}

func refParseItem(raw json.RawMessage, ref eventRef, lim Limits, now time.Time) Event {
	prefix := ref.item()
	if len(raw) > lim.MaxEventBytes {
		return invalid(CodeEventTooLarge, "%s: %d bytes, more than the %d-byte limit per event", prefix, len(raw), lim.MaxEventBytes)
	}
	if raw[0] != '{' {
		return invalid(CodeInvalidJSON, "%s: must be a JSON object", prefix)
	}
	var we wireEvent
	if err := httpapi.DecodeStrict(raw, &we); err != nil {
		return invalid(CodeInvalidJSON, "%s: %s", prefix, err.Error())
	}
	return validate(&we, ref, now, nil)
}

// FuzzParseEventsMatchesReference checks the hand-written parser against the
// encoding/json-based reference: same refusals (by error code), same events.
// The parsers may differ only where the reference is laxer on purpose of
// encoding/json: keys matched case-insensitively or via Unicode folding,
// invalid UTF-8 (replaced by encoding/json), and repeated keys (the last one
// wins in encoding/json; the parser refuses them).
func FuzzParseEventsMatchesReference(f *testing.F) {
	for _, s := range []string{
		`{"name":"order.created","payload":{"id":"1"}}`,
		`{"name":"order.created","published_at":"2024-05-01T12:00:00.5+02:00","payload":{"id":1.5e3}}`,
		`{"tenant":"acme","events":[{"name":"customer.updated","payload":{"id":"c"}},{"name":"x"},1]}`,
		`{"name":"gift_card.deactivated","idempotency_key":"k\u00e9","domain_entity_id":"d","payload":{"a":[{"id":2}]}}`,
		`{"events":[]}`, `{"events":null,"name":"order.created","payload":{"id":0}}`, `{"name":"order.created","payload":[]}`,
		`{"events":[{"name":"order.created","payload":{"id":"1"},"tenant":"x"},{"name":5}]}`,
		`{"name":"order.created","payload":{"id":"\u0000"}} x`, `{"payload":null,"events":[{}]}`,
		`{"name":"order.created","payload":{"id":-0.0e+1,"x":[true,false,null,"\ud800"]}}`,
		`{"name":"order.created","name":"order.created","payload":{"id":"1"}}`,
		`{"events":[{"name":"order.created","payload":{"id":"1"},"payload":{}}]}`,
		// Batch payload ids take keyArena: plain, escaped, numbers, refused.
		`{"events":[{"name":"order.created","payload":{"id":"a\"b"}},{"name":"order.created","payload":{"id":-12.5e3}},{"name":"order.created","payload":{"id":""}},{"name":"order.created","payload":{"id":"c\u0001"}}]}`,
		"{\"events\":[{\"name\":\"order.created\",\"payload\":{\"id\":\"\\u00e9t\\u00e9\"}},{\"name\":\"order.created\",\"payload\":{\"id\":\"\x01\"}},{\"name\":\"order.created\",\"payload\":{\"id\":true}},{\"name\":\"order.created\",\"payload\":{\"id\":\"x\",\"id\":\"y\"}}]}",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxEventBytes: 256, MaxBatch: 4}
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := ParseEvents(body, lim, now)
		want, wantErr := refParseEvents(body, lim, now)
		lax := !utf8.Valid(body) || bytes.ContainsFunc(body, func(r rune) bool { return unicode.IsUpper(r) || r >= 0x80 })
		dup := strings.Contains(fmt.Sprint(gotErr), "duplicate field")
		if (gotErr == nil) != (wantErr == nil) {
			if gotErr != nil && (lax || dup) {
				return
			}
			t.Fatalf("parser: %v\nreference: %v\nbody: %q", gotErr, wantErr, body)
		}
		if gotErr != nil {
			var g, w *httpapi.Error
			if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) {
				t.Fatalf("parser: %v\nreference: %v\nwant both *httpapi.Error\nbody: %q", gotErr, wantErr, body)
			}
			if g.Status != w.Status || g.Code != w.Code {
				if lax || dup {
					return
				}
				t.Fatalf("parser: %d %s %q\nreference: %d %s %q\nbody: %q", g.Status, g.Code, g.Message, w.Status, w.Code, w.Message, body)
			}
			return
		}
		if got.Batch != want.Batch || got.Tenant != want.Tenant || len(got.Events) != len(want.Events) {
			t.Fatalf("parser: %+v\nreference: %+v\nbody: %q", got, want, body)
		}
		for i := range got.Events {
			g, w := got.Events[i], want.Events[i]
			if (g.Err == nil) != (w.Err == nil) || g.Err != nil && g.Err.Code != w.Err.Code {
				if lax || g.Err != nil && strings.Contains(g.Err.Message, "duplicate field") {
					continue
				}
				t.Fatalf("event %d: parser %+v\nreference %+v\nbody: %q", i, g.Err, w.Err, body)
			}
			if g.Err == nil && (g.Name != w.Name || !g.PublishedAt.Equal(w.PublishedAt) || string(g.Payload) != string(w.Payload) ||
				g.IdempotencyKey != w.IdempotencyKey || g.DomainEntityID != w.DomainEntityID || g.EntityType != w.EntityType) {
				t.Fatalf("event %d: parser %+v\nreference %+v\nbody: %q", i, g, w, body)
			}
		}
	})
}

// TestScannerStringsAgreeWithReference puts each byte class the string
// scanner treats specially at every offset of a long string, so both its
// 8-byte fast path and its byte loop meet it, and compares with the
// reference parser.
func TestScannerStringsAgreeWithReference(t *testing.T) {
	lim := Limits{MaxEventBytes: 1 << 16, MaxBatch: 10}
	now := time.Now()
	specials := []string{`\"`, `\\`, `\u00e9`, `\n`, "\x01", "\x1f", "\x7f", "é", "\xff", `\x`, `"`, `\u12`}
	for _, sp := range specials {
		for off := range 24 {
			text := strings.Repeat("a", off) + sp + strings.Repeat("b", 17)
			body := []byte(`{"name":"order.created","idempotency_key":"` + text + `","payload":{"id":"p","t":"` + text + `"}}`)
			got, gotErr := ParseEvents(body, lim, now)
			want, wantErr := refParseEvents(body, lim, now)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("special %q at %d: parser %v, reference %v", sp, off, gotErr, wantErr)
			}
			if gotErr != nil {
				continue
			}
			g, w := got.Events[0], want.Events[0]
			if g.IdempotencyKey != w.IdempotencyKey || string(g.Payload) != string(w.Payload) {
				t.Fatalf("special %q at %d: parser %+v, reference %+v", sp, off, g, w)
			}
		}
	}
}
