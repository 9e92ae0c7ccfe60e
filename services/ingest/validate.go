package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/eventstream/eventstream/pkg/events"
)

// eventRef names an event in messages: -1 is the single event of a body,
// i >= 0 is events[i] of a batch. Names are only built for errors.
type eventRef int

// String is the field prefix: "" or "events[3].".
func (r eventRef) String() string {
	if r < 0 {
		return ""
	}
	return r.item() + "."
}

// item is "events[3]".
func (r eventRef) item() string { return "events[" + strconv.Itoa(int(r)) + "]" }

// validate checks one decoded event; ref names it in messages. keys, if not
// nil, holds the strings of default keys (payload.id).
func validate(we *wireEvent, ref eventRef, now time.Time, keys *keyArena) Event {
	var ev Event
	switch {
	case we.Name == nil:
		return invalid(CodeMissingField, "%sname: required", ref)
	case !events.IsKnownName(*we.Name):
		return invalid(CodeUnknownEventName, "%sname: unknown event name %s", ref, quote(*we.Name))
	}
	ev.Name = *we.Name
	ev.EntityType, _ = events.EntityType(ev.Name)

	switch p := bytes.TrimSpace(we.Payload); {
	case len(p) == 0 || string(p) == "null":
		return invalid(CodeMissingField, "%spayload: required (a JSON object)", ref)
	case p[0] != '{':
		return invalid(CodeInvalidPayload, "%spayload: must be a JSON object", ref)
	case !we.payloadASCII && !utf8.Valid(p):
		return invalid(CodeInvalidPayload, "%spayload: must be valid UTF-8", ref)
	default:
		ev.Payload = p
	}

	ev.PublishedAt = now
	if we.PublishedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *we.PublishedAt)
		if err != nil {
			return invalid(CodeInvalidTimestamp, "%spublished_at: %s is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)", ref, quote(*we.PublishedAt))
		}
		// Outside years 1..9999 (in UTC) a protobuf Timestamp is invalid.
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return invalid(CodeInvalidTimestamp, "%spublished_at: %s is out of range", ref, quote(*we.PublishedAt))
		}
		ev.PublishedAt = t
	}

	// Both keys default to payload.id, read at most once.
	var payloadID string
	var idErr error
	if we.DomainEntityID == nil || we.IdempotencyKey == nil {
		if we.payloadScanned {
			payloadID, idErr = keys.idValue(we.payloadID)
		} else {
			payloadID, idErr = events.PayloadID(ev.Payload)
		}
	}
	var bad *EventError
	if ev.DomainEntityID, bad = eventKey("domain_entity_id", we.DomainEntityID, payloadID, idErr, ref); bad != nil {
		return Event{Err: bad}
	}
	if ev.IdempotencyKey, bad = eventKey("idempotency_key", we.IdempotencyKey, payloadID, idErr, ref); bad != nil {
		return Event{Err: bad}
	}
	return ev
}

// eventKey is the given key, checked, or else payload.id (or why neither works).
func eventKey(field string, given *string, payloadID string, idErr error, ref eventRef) (string, *EventError) {
	if given != nil {
		if err := events.CheckKey(*given); err != nil {
			return "", invalid(CodeInvalidKey, "%s%s: %v", ref, field, err).Err
		}
		return *given, nil
	}
	switch {
	case errors.Is(idErr, events.ErrNoPayloadID):
		return "", invalid(CodeInvalidKey, "%s%s: required when payload.id is absent", ref, field).Err
	case idErr != nil:
		return "", invalid(CodeInvalidKey, "%s%v (it is the default %s)", ref, idErr, field).Err
	}
	return payloadID, nil
}

// keyArena holds the payload.id strings of one batch in shared blocks: one
// string per event was the largest allocation of a batch left in parsing. A
// block's bytes are never written again once handed out as a string.
type keyArena struct{ block []byte }

// idValue is events.IDValue(val), its string from the arena when val is
// plain (a string without escapes, or a number) and a valid key; any other
// case, errors included, takes events.IDValue itself.
func (a *keyArena) idValue(val []byte) (string, error) {
	if a == nil || len(val) == 0 {
		return events.IDValue(val)
	}
	raw := val
	switch c := val[0]; {
	case c == '"' && len(val) >= 2 && bytes.IndexByte(val, '\\') < 0:
		raw = val[1 : len(val)-1]
	case c == '-' || '0' <= c && c <= '9':
	default:
		return events.IDValue(val)
	}
	if len(raw) == 0 || len(raw) > events.MaxKeyLength {
		return events.IDValue(val)
	}
	if cap(a.block)-len(a.block) < len(raw) {
		a.block = make([]byte, 0, max(len(raw), 4096))
	}
	start := len(a.block)
	a.block = append(a.block, raw...)
	id := unsafe.String(&a.block[start], len(raw))
	if events.CheckKey(id) != nil {
		return events.IDValue(val) // for its error
	}
	return id, nil
}

func invalid(code, format string, args ...any) Event {
	return Event{Err: &EventError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// quote shows a client-supplied string in a message: JSON-quoted and cut short.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// validTenant mirrors the catalog's CHECK on tenant names.
func validTenant(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}
