package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/httpapi"
)

// Error codes of invalid events (a single event's 400 body, or a batch item's
// "error"). Messages always start with the offending field.
const (
	CodeInvalidJSON      = "invalid_json"       // not JSON, wrong field type, unknown field
	CodeMissingField     = "missing_field"      // name or payload absent
	CodeUnknownEventName = "unknown_event_name" // name not in the registry
	CodeInvalidPayload   = "invalid_payload"    // payload not a JSON object / not UTF-8
	CodeInvalidTimestamp = "invalid_timestamp"  // published_at not RFC 3339
	CodeInvalidKey       = "invalid_key"        // idempotency_key / domain_entity_id / payload.id unusable
	CodeEventTooLarge    = "event_too_large"    // one event over MaxEventBytes
)

// Limits bound what ParseEvents accepts.
type Limits struct {
	MaxEventBytes int // one event object, as sent
	MaxBatch      int // events in one {"events": [...]} body
}

// Request is a parsed POST /v1/events body.
type Request struct {
	// Tenant is the body's "tenant" ("" when absent); only a platform token
	// may name a tenant other than its own.
	Tenant string
	// Batch is true for an {"events": [...]} body.
	Batch  bool
	Events []Event
}

// Event is one event of a request, validated. Err is set (and the other
// fields are meaningless) when the event is invalid.
type Event struct {
	Name           string
	EntityType     string
	PublishedAt    time.Time
	Payload        []byte // the JSON object exactly as sent
	DomainEntityID string
	IdempotencyKey string
	Err            *EventError
}

// EventError says why one event was refused.
type EventError struct {
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e *EventError) Error() string { return e.Message }

// wireEvent is one event object as sent. Pointers tell "absent" from "empty".
type wireEvent struct {
	Name           *string         `json:"name"`
	PublishedAt    *string         `json:"published_at"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey *string         `json:"idempotency_key"`
	DomainEntityID *string         `json:"domain_entity_id"`
}

// wireBody is either a single event (with an optional tenant) or a batch. It
// repeats wireEvent's fields instead of embedding it so that decoding errors
// name the field as sent ("name", not "wireEvent.name").
type wireBody struct {
	Tenant         *string            `json:"tenant"`
	Events         *[]json.RawMessage `json:"events"`
	Name           *string            `json:"name"`
	PublishedAt    *string            `json:"published_at"`
	Payload        json.RawMessage    `json:"payload"`
	IdempotencyKey *string            `json:"idempotency_key"`
	DomainEntityID *string            `json:"domain_entity_id"`
}

// ParseEvents parses and validates a request body. now is the default
// published_at. Whole-body problems (not JSON, bad batch shape, too many
// events) are returned as an *httpapi.Error (400); a problem with one event
// is that event's Err, so the valid events of a batch can still be accepted.
func ParseEvents(body []byte, lim Limits, now time.Time) (*Request, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, httpapi.BadRequest("request body is empty: send one event object or {\"events\": [...]}")
	}
	if trimmed[0] != '{' {
		return nil, httpapi.BadRequest("request body must be a JSON object: one event or {\"events\": [...]}")
	}
	var wb wireBody
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
		ev := validate(&we, "", now)
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
		prefix := "events[" + strconv.Itoa(i) + "]"
		req.Events[i] = parseItem(raw, prefix, lim, now)
	}
	return req, nil
}

func parseItem(raw json.RawMessage, prefix string, lim Limits, now time.Time) Event {
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
	return validate(&we, prefix+".", now)
}

// validate checks one decoded event; prefix names it in messages ("events[3].").
func validate(we *wireEvent, prefix string, now time.Time) Event {
	var ev Event
	switch {
	case we.Name == nil:
		return invalid(CodeMissingField, "%sname: required", prefix)
	case !events.IsKnownName(*we.Name):
		return invalid(CodeUnknownEventName, "%sname: unknown event name %s", prefix, quote(*we.Name))
	}
	ev.Name = *we.Name
	ev.EntityType, _ = events.EntityType(ev.Name)

	switch p := bytes.TrimSpace(we.Payload); {
	case len(p) == 0 || string(p) == "null":
		return invalid(CodeMissingField, "%spayload: required (a JSON object)", prefix)
	case p[0] != '{':
		return invalid(CodeInvalidPayload, "%spayload: must be a JSON object", prefix)
	case !utf8.Valid(p):
		return invalid(CodeInvalidPayload, "%spayload: must be valid UTF-8", prefix)
	default:
		ev.Payload = p
	}

	ev.PublishedAt = now
	if we.PublishedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *we.PublishedAt)
		if err != nil {
			return invalid(CodeInvalidTimestamp, "%spublished_at: %s is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)", prefix, quote(*we.PublishedAt))
		}
		// Outside years 1..9999 (in UTC) a protobuf Timestamp is invalid.
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return invalid(CodeInvalidTimestamp, "%spublished_at: %s is out of range", prefix, quote(*we.PublishedAt))
		}
		ev.PublishedAt = t
	}

	var payloadID string
	var idErr error
	loadID := func() {
		if payloadID == "" && idErr == nil {
			payloadID, idErr = events.PayloadID(ev.Payload)
		}
	}
	for _, k := range []struct {
		field string
		given *string
		dst   *string
	}{
		{"domain_entity_id", we.DomainEntityID, &ev.DomainEntityID},
		{"idempotency_key", we.IdempotencyKey, &ev.IdempotencyKey},
	} {
		if k.given != nil {
			if err := events.CheckKey(*k.given); err != nil {
				return invalid(CodeInvalidKey, "%s%s: %v", prefix, k.field, err)
			}
			*k.dst = *k.given
			continue
		}
		loadID()
		switch {
		case errors.Is(idErr, events.ErrNoPayloadID):
			return invalid(CodeInvalidKey, "%s%s: required when payload.id is absent", prefix, k.field)
		case idErr != nil:
			return invalid(CodeInvalidKey, "%s%v (it is the default %s)", prefix, idErr, k.field)
		}
		*k.dst = payloadID
	}
	return ev
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
