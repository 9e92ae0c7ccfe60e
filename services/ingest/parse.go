package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

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

	// Set by the scanner when it read the payload object itself, so validate
	// needs no second pass over it: the raw value of payload.id (nil when
	// absent) and whether the payload is all ASCII.
	payloadScanned bool
	payloadID      []byte
	payloadASCII   bool
}

// object is what the scanner collected from one event object (and, at the
// top level, the batch members).
type object struct {
	we        wireEvent
	structErr string // first wrong-type or unknown member: the object is refused
	// Top level only.
	tenant    *string
	hasEvents bool // "events" present and not null
	items     []item
	itemCount int
}

// item is one element of "events".
type item struct {
	start, end int // its bytes in the body
	isObject   bool
	obj        object
}

// ParseEvents parses and validates a request body. now is the default
// published_at. Whole-body problems (not JSON, bad batch shape, too many
// events) are returned as an *httpapi.Error (400); a problem with one event
// is that event's Err, so the valid events of a batch can still be accepted.
//
// The body is read in a single pass by a hand-written scanner (jsonscan.go):
// with encoding/json, parsing dominated the cost of a 500-event batch.
func ParseEvents(body []byte, lim Limits, now time.Time) (*Request, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, httpapi.BadRequest("request body is empty: send one event object or {\"events\": [...]}")
	}
	if trimmed[0] != '{' {
		return nil, httpapi.BadRequest("request body must be a JSON object: one event or {\"events\": [...]}")
	}
	s := &scanner{b: body, p: len(body) - len(trimmed)}
	var top object
	if p, _ := itemBlocks.Get().(*[]item); p != nil {
		top.items = *p
	}
	defer releaseItems(&top)
	s.eventObject(&top, 0, true, lim.MaxBatch)
	if s.err == nil {
		s.ws()
		if s.p < len(body) {
			s.err = errors.New("invalid JSON: unexpected data after the top-level value")
		}
	}
	if s.err != nil {
		return nil, httpapi.BadRequest("%s", s.err.Error())
	}
	if top.structErr != "" {
		return nil, httpapi.BadRequest("%s", top.structErr)
	}
	req := &Request{}
	if top.tenant != nil {
		if !validTenant(*top.tenant) {
			return nil, httpapi.BadRequest("tenant: %s is not a tenant name (lowercase letters, digits and '-', at most 63)", quote(*top.tenant))
		}
		req.Tenant = *top.tenant
	}
	we := &top.we
	if !top.hasEvents {
		if len(body) > lim.MaxEventBytes {
			return nil, &httpapi.Error{Status: http.StatusBadRequest, Code: CodeEventTooLarge,
				Message: fmt.Sprintf("event: %d bytes, more than the %d-byte limit per event", len(body), lim.MaxEventBytes)}
		}
		ev := validate(we, -1, now, nil)
		if ev.Err != nil {
			return nil, &httpapi.Error{Status: http.StatusBadRequest, Code: ev.Err.Code, Message: ev.Err.Message}
		}
		req.Events = []Event{ev}
		return req, nil
	}
	if we.Name != nil || we.PublishedAt != nil || we.Payload != nil || we.IdempotencyKey != nil || we.DomainEntityID != nil {
		return nil, httpapi.BadRequest("events: a batch body has only \"events\" and \"tenant\" at the top level; put event fields inside the events")
	}
	switch {
	case top.itemCount == 0:
		return nil, httpapi.BadRequest("events: must hold at least one event")
	case top.itemCount > lim.MaxBatch:
		return nil, httpapi.BadRequest("events: %d events, at most %d per request", top.itemCount, lim.MaxBatch)
	}
	req.Batch = true
	req.Events = make([]Event, len(top.items))
	var keys keyArena
	for i := range top.items {
		it := &top.items[i]
		switch {
		case it.end-it.start > lim.MaxEventBytes:
			req.Events[i] = invalid(CodeEventTooLarge, "%s: %d bytes, more than the %d-byte limit per event", eventRef(i).item(), it.end-it.start, lim.MaxEventBytes)
		case !it.isObject:
			req.Events[i] = invalid(CodeInvalidJSON, "%s: must be a JSON object", eventRef(i).item())
		case it.obj.structErr != "":
			req.Events[i] = invalid(CodeInvalidJSON, "%s: %s", eventRef(i).item(), it.obj.structErr)
		default:
			req.Events[i] = validate(&it.obj.we, eventRef(i), now, &keys)
		}
	}
	return req, nil
}

// itemBlocks holds the item slices of earlier requests: a batch's items are
// its largest allocation in parsing, and they are not needed once its
// events are built.
var itemBlocks sync.Pool // of *[]item

// releaseItems hands top's items (cleared: they point into the body) to the
// next ParseEvents. A huge slice, from a body over a raised MaxBatch, is
// left to the collector.
func releaseItems(top *object) {
	items := top.items[:cap(top.items)]
	if len(items) == 0 || len(items) > 10_000 {
		return
	}
	clear(items)
	items = items[:0]
	itemBlocks.Put(&items)
}

// eventObject reads the object at s.p into o; depth is the nesting depth of
// its container. At the top level it also takes "tenant" and "events" (of
// which it keeps at most keep items; the rest are only validated and counted).
func (s *scanner) eventObject(o *object, depth int, top bool, keep int) {
	if depth+1 > maxDepth {
		s.syntax("exceeded max depth")
		return
	}
	depth++
	first := true
	// seen marks the known keys met so far: a repeated key is refused
	// rather than letting the last one silently win (a reviewer of the body
	// would read the first).
	var seen uint8
	for s.nextMember(&first) {
		if bit := s.knownKey(top); bit != 0 {
			if seen&bit != 0 && o.structErr == "" {
				o.structErr = fmt.Sprintf("duplicate field %s", quote(s.keyName()))
			}
			seen |= bit
		}
		switch {
		case s.keyIs("name"):
			o.we.Name = s.optName(depth, &o.structErr)
		case s.keyIs("published_at"):
			o.we.PublishedAt = s.optString("published_at", depth, &o.structErr)
		case s.keyIs("idempotency_key"):
			o.we.IdempotencyKey = s.optString("idempotency_key", depth, &o.structErr)
		case s.keyIs("domain_entity_id"):
			o.we.DomainEntityID = s.optString("domain_entity_id", depth, &o.structErr)
		case s.keyIs("payload"):
			s.payload(depth, &o.we)
		case top && s.keyIs("tenant"):
			o.tenant = s.optString("tenant", depth, &o.structErr)
		case top && s.keyIs("events"):
			s.events(o, depth, keep)
		default:
			if o.structErr == "" {
				o.structErr = fmt.Sprintf("unknown field %s", quote(s.keyName()))
			}
			s.skip(depth)
		}
		if s.err != nil {
			return
		}
	}
}

// knownKey returns the bit of the current key among the event (and, at the
// top level, body) fields, or 0 for any other key.
func (s *scanner) knownKey(top bool) uint8 {
	for i, k := range [...]string{"name", "published_at", "idempotency_key", "domain_entity_id", "payload", "tenant", "events"} {
		if i >= 5 && !top {
			break
		}
		if s.keyIs(k) {
			return 1 << i
		}
	}
	return 0
}

// events reads the value of "events": an array of event objects, or null.
func (s *scanner) events(o *object, depth int, keep int) {
	switch s.b[s.p] {
	case 'n':
		s.lit("null")
		o.hasEvents, o.items, o.itemCount = false, nil, 0
		return
	case '[':
	default:
		kind := s.kind()
		if s.skip(depth) && o.structErr == "" {
			o.structErr = fmt.Sprintf("field \"events\": expected array, got %s", kind)
		}
		return
	}
	if depth+1 > maxDepth {
		s.syntax("exceeded max depth")
		return
	}
	o.hasEvents, o.items, o.itemCount = true, o.items[:0], 0
	first := true
	for s.nextElement(&first) {
		o.itemCount++
		start, isObject := s.p, s.b[s.p] == '{'
		if o.itemCount > keep {
			s.skip(depth + 1) // too many: refused as a whole, only validated
			continue
		}
		o.items = append(o.items, item{start: start, isObject: isObject})
		it := &o.items[len(o.items)-1]
		if isObject {
			s.eventObject(&it.obj, depth+1, false, 0)
		} else {
			s.skip(depth + 1)
		}
		it.end = s.p
		if s.err != nil {
			return
		}
	}
}

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
