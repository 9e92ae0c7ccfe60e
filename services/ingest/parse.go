package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/jsonscan"
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

// ParseEvents parses and validates a request body. now is the default
// published_at. Whole-body problems (not JSON, bad batch shape, too many
// events) are returned as an *httpapi.Error (400); a problem with one event
// is that event's Err, so the valid events of a batch can still be accepted.
//
// The body is read in a single pass by pkg/jsonscan (wire.go): with
// encoding/json, parsing dominated the cost of a 500-event batch.
func ParseEvents(body []byte, lim Limits, now time.Time) (*Request, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, httpapi.BadRequest("request body is empty: send one event object or {\"events\": [...]}")
	}
	if trimmed[0] != '{' {
		return nil, httpapi.BadRequest("request body must be a JSON object: one event or {\"events\": [...]}")
	}
	s := jsonscan.New(body)
	s.SkipSpace() // now on the '{'
	var top object
	if p, _ := itemBlocks.Get().(*[]item); p != nil {
		top.items = *p
	}
	defer releaseItems(&top)
	readEventObject(s, &top, 0, true, lim.MaxBatch)
	if !s.End() {
		return nil, httpapi.BadRequest("%s", s.Err().Error())
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
