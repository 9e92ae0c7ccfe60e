package ingest

import (
	"encoding/json"
	"fmt"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/jsonscan"
)

// The wire format of POST /v1/events, read in one pass with jsonscan: a body
// is one event object (with an optional "tenant") or {"tenant", "events":
// [event objects]}. Reading only collects what was sent; validate (in
// validate.go) decides whether it is an event.

// wireEvent is one event object as sent. Pointers tell "absent" from "empty".
// The json tags serve the encoding/json reference parser of the tests.
type wireEvent struct {
	Name           *string         `json:"name"`
	PublishedAt    *string         `json:"published_at"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey *string         `json:"idempotency_key"`
	DomainEntityID *string         `json:"domain_entity_id"`

	// Set when readPayload read the payload object itself, so validate
	// needs no second pass over it: the raw value of payload.id (nil when
	// absent) and whether the payload is all ASCII.
	payloadScanned bool
	payloadID      []byte
	payloadASCII   bool
}

// object is what was read from one event object (and, at the top level,
// the batch members).
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

// readEventObject reads the object at s into o; depth is the nesting depth
// of its container. At the top level it also takes "tenant" and "events" (of
// which it keeps at most keep items; the rest are only validated and counted).
func readEventObject(s *jsonscan.Scanner, o *object, depth int, top bool, keep int) {
	if !s.DepthOK(depth) {
		return
	}
	depth++
	first := true
	// seen marks the known keys met so far: a repeated key is refused
	// rather than letting the last one silently win (a reviewer of the body
	// would read the first).
	var seen uint8
	for s.NextMember(&first) {
		if bit := knownKey(s, top); bit != 0 {
			if seen&bit != 0 && o.structErr == "" {
				o.structErr = fmt.Sprintf("duplicate field %s", quote(s.KeyName()))
			}
			seen |= bit
		}
		switch {
		case s.KeyIs("name"):
			o.we.Name = readName(s, depth, &o.structErr)
		case s.KeyIs("published_at"):
			o.we.PublishedAt = readOptString(s, "published_at", depth, &o.structErr)
		case s.KeyIs("idempotency_key"):
			o.we.IdempotencyKey = readOptString(s, "idempotency_key", depth, &o.structErr)
		case s.KeyIs("domain_entity_id"):
			o.we.DomainEntityID = readOptString(s, "domain_entity_id", depth, &o.structErr)
		case s.KeyIs("payload"):
			readPayload(s, depth, &o.we)
		case top && s.KeyIs("tenant"):
			o.tenant = readOptString(s, "tenant", depth, &o.structErr)
		case top && s.KeyIs("events"):
			readEvents(s, o, depth, keep)
		default:
			if o.structErr == "" {
				o.structErr = fmt.Sprintf("unknown field %s", quote(s.KeyName()))
			}
			s.Skip(depth)
		}
		if s.Err() != nil {
			return
		}
	}
}

// knownKey returns the bit of the current key among the event (and, at the
// top level, body) fields, or 0 for any other key.
func knownKey(s *jsonscan.Scanner, top bool) uint8 {
	for i, k := range [...]string{"name", "published_at", "idempotency_key", "domain_entity_id", "payload", "tenant", "events"} {
		if i >= 5 && !top {
			break
		}
		if s.KeyIs(k) {
			return 1 << i
		}
	}
	return 0
}

// readEvents reads the value of "events": an array of event objects, or null.
func readEvents(s *jsonscan.Scanner, o *object, depth int, keep int) {
	switch kind := s.Kind(); kind {
	case jsonscan.Null:
		s.Skip(depth)
		o.hasEvents, o.items, o.itemCount = false, nil, 0
		return
	case jsonscan.Array:
	default:
		if s.Skip(depth) && o.structErr == "" {
			o.structErr = fmt.Sprintf("field \"events\": expected array, got %s", kind)
		}
		return
	}
	if !s.DepthOK(depth) {
		return
	}
	o.hasEvents, o.items, o.itemCount = true, o.items[:0], 0
	first := true
	for s.NextElement(&first) {
		o.itemCount++
		start, isObject := s.Pos(), s.Kind() == jsonscan.Object
		if o.itemCount > keep {
			s.Skip(depth + 1) // too many: refused as a whole, only validated
			continue
		}
		o.items = append(o.items, item{start: start, isObject: isObject})
		it := &o.items[len(o.items)-1]
		if isObject {
			readEventObject(s, &it.obj, depth+1, false, 0)
		} else {
			s.Skip(depth + 1)
		}
		it.end = s.Pos()
		if s.Err() != nil {
			return
		}
	}
}

// readOptString reads a string-or-null member value. Any other type is
// skipped and recorded in *typeErr (first one wins), as encoding/json does
// for a *string field.
func readOptString(s *jsonscan.Scanner, field string, depth int, typeErr *string) *string {
	switch kind := s.Kind(); kind {
	case jsonscan.String:
		v, ok := s.ReadString()
		if !ok {
			return nil
		}
		return &v
	case jsonscan.Null:
		s.Skip(depth)
		return nil
	default:
		if s.Skip(depth) && *typeErr == "" {
			*typeErr = fmt.Sprintf("field %q: expected string, got %s", field, kind)
		}
		return nil
	}
}

// knownNames maps each registered event name to one shared string, so the
// "name" of an event costs no allocation.
var knownNames = func() map[string]*string {
	m := map[string]*string{}
	for _, n := range events.Names() {
		m[n] = &n
	}
	return m
}()

// readName is readOptString for "name": a registered name comes from
// knownNames. The shared strings are never written through these pointers.
func readName(s *jsonscan.Scanner, depth int, typeErr *string) *string {
	if s.Kind() != jsonscan.String {
		return readOptString(s, "name", depth, typeErr)
	}
	tok, plain, ok := s.StringToken()
	switch {
	case !ok:
		return nil
	case plain:
		if p, known := knownNames[string(tok[1:len(tok)-1])]; known {
			return p
		}
		v := string(tok[1 : len(tok)-1])
		return &v
	}
	v := jsonscan.Unquote(tok)
	return &v
}

// readPayload reads the member value at s as an event payload. For an object
// it also notes, in the same pass, the raw value of its last top-level "id"
// (the default keys) and whether all of it is ASCII (then no UTF-8 check is
// due).
func readPayload(s *jsonscan.Scanner, depth int, we *wireEvent) {
	we.payloadScanned, we.payloadID, we.payloadASCII = false, nil, false
	start := s.Pos()
	if s.Kind() != jsonscan.Object {
		if s.Skip(depth) {
			we.Payload = s.Slice(start)
		}
		return
	}
	if !s.DepthOK(depth) {
		return
	}
	s.ResetNonASCII()
	var id []byte
	first := true
	for s.NextMember(&first) {
		isID := s.KeyIs("id")
		vs := s.Pos()
		if !s.Skip(depth + 1) {
			return
		}
		if isID {
			id = s.Slice(vs)
		}
	}
	if s.Err() != nil {
		return
	}
	we.Payload = s.Slice(start)
	we.payloadScanned, we.payloadID, we.payloadASCII = true, id, !s.NonASCII()
}
