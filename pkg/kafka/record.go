package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"google.golang.org/protobuf/proto"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// EncodeRecord builds the record of ev on its tenant's topic: key = domain
// entity id (all events of one business object land on one partition, in
// order), value = the protobuf envelope, headers = the W3C trace context of
// ctx (traceparent, tracestate, baggage, per the global propagator), and
// timestamp = ingested_at. The timestamp is ingest time rather than the
// producer's published_at because consumers seek by it (ListOffsets for
// starts_at replays and temporary integrations), which needs it to grow with
// the log; published_at may be any past instant.
func EncodeRecord(ctx context.Context, ev *eventspb.Event) (*kgo.Record, error) {
	return NewEncoder(ctx).Encode(ev)
}

// Encoder encodes the records of many events published under one trace
// context (one ingest request): the trace headers are rendered once and
// shared, and the records and their values are cut from a few shared blocks
// rather than allocated one by one (see Grow). Not safe for concurrent use.
type Encoder struct {
	headers       []kgo.RecordHeader
	tenant, topic string // the last topic name built, reused for its tenant

	buf  []byte       // free space for values; a value never grows, so they share blocks
	recs []kgo.Record // free records

	// The blocks Grow took from the pools, for Release.
	valueBlock  *[]byte
	recordBlock *[]kgo.Record
}

// The blocks of released encoders. A batch's values are about the size of
// its request body, so reusing them spares allocating and zeroing (and the
// collector scanning) that much per request.
var (
	valueBlocks  sync.Pool // of *[]byte
	recordBlocks sync.Pool // of *[]kgo.Record
)

// maxPooled bounds the blocks kept for reuse: a rare huge batch is left to
// the collector rather than pinned in the pool.
const maxPooled = 8 << 20

// NewEncoder captures the trace context of ctx for Encode.
func NewEncoder(ctx context.Context) *Encoder {
	r := &kgo.Record{}
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier{Record: r})
	return &Encoder{headers: r.Headers}
}

// Grow makes room for records more records holding bytes bytes of values
// (the sum of their EventSize), taken from the blocks of released encoders
// when they are large enough, so that encoding a batch costs no allocation
// per event. Call it at most once per encoder, before Encode.
func (e *Encoder) Grow(records, bytes int) {
	if e.valueBlock != nil || e.recordBlock != nil {
		panic("kafka: Encoder.Grow called twice")
	}
	if cap(e.buf)-len(e.buf) < bytes {
		if p, _ := valueBlocks.Get().(*[]byte); p != nil && cap(*p) >= bytes {
			e.valueBlock = p
		} else {
			b := make([]byte, 0, bytes)
			e.valueBlock = &b
		}
		e.buf = (*e.valueBlock)[:0]
	}
	if cap(e.recs)-len(e.recs) < records {
		if p, _ := recordBlocks.Get().(*[]kgo.Record); p != nil && cap(*p) >= records {
			e.recordBlock = p
		} else {
			r := make([]kgo.Record, 0, records)
			e.recordBlock = &r
		}
		e.recs = (*e.recordBlock)[:0]
	}
}

// Release hands the blocks Grow took back for the next encoder: every record
// Encode returned (and its key and value) is then invalid. Call it only once
// the client is done with all of them, that is once every record's promise
// has run; after a produce timeout a record may still be buffered, so do not
// call it then (the blocks are simply left to the collector).
func (e *Encoder) Release() {
	if p := e.valueBlock; p != nil && cap(*p) <= maxPooled {
		valueBlocks.Put(p)
	}
	if p := e.recordBlock; p != nil && cap(*p)*int(unsafe.Sizeof(kgo.Record{})) <= maxPooled {
		clear((*p)[:cap(*p)]) // drop the references (contexts, headers) the records hold
		recordBlocks.Put(p)
	}
	*e = Encoder{}
}

// Encode is EncodeRecord with the encoder's trace context. The records share
// one read-only header slice; the key is the domain entity id inside the
// value, so it is not copied either. Values and keys must not be written to.
func (e *Encoder) Encode(ev *eventspb.Event) (*kgo.Record, error) {
	if ev.GetTenant() == "" || ev.GetEventId() == "" {
		return nil, errors.New("encoding record: event without tenant or event id")
	}
	n := EventSize(ev)
	if cap(e.buf)-len(e.buf) < n {
		e.buf = make([]byte, 0, n) // no Grow: as proto.Marshal, one value at a time
	}
	start := len(e.buf)
	e.buf = AppendEvent(e.buf, ev)
	value := e.buf[start:len(e.buf):len(e.buf)]
	if ev.GetTenant() != e.tenant || e.topic == "" {
		e.tenant, e.topic = ev.GetTenant(), events.TopicName(ev.GetTenant())
	}
	if len(e.recs) == cap(e.recs) {
		e.recs = make([]kgo.Record, 0, 1)
	}
	e.recs = e.recs[:len(e.recs)+1]
	r := &e.recs[len(e.recs)-1]
	*r = kgo.Record{
		Topic:   e.topic,
		Key:     keyIn(value, ev),
		Value:   value,
		Headers: e.headers,
	}
	if ts := ev.GetIngestedAt(); ts != nil {
		r.Timestamp = ts.AsTime()
	}
	return r, nil
}

// keyIn returns the domain entity id of ev inside value, its encoding:
// AppendEvent writes it verbatim, followed only by fields 8 and 9 and the
// unknown fields.
func keyIn(value []byte, ev *eventspb.Event) []byte {
	id := ev.GetDomainEntityId()
	end := len(value) - stringSize(fieldIdempotencyKey, ev.GetIdempotencyKey()) -
		timestampSize(fieldIngestedAt, ev.GetIngestedAt()) - len(ev.ProtoReflect().GetUnknown())
	return value[end-len(id) : end : end] // id "": empty, not nil, as []byte("") was
}

// DecodeRecord returns the event a record carries.
func DecodeRecord(r *kgo.Record) (*eventspb.Event, error) {
	ev := &eventspb.Event{}
	if err := proto.Unmarshal(r.Value, ev); err != nil {
		return nil, fmt.Errorf("decoding record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	if ev.GetEventId() == "" || ev.GetName() == "" {
		return nil, fmt.Errorf("decoding record %s/%d@%d: envelope without event id or name", r.Topic, r.Partition, r.Offset)
	}
	return ev, nil
}

// TraceContext returns ctx carrying the trace context of r's headers, so a
// consumer's spans continue the producer's trace.
func TraceContext(ctx context.Context, r *kgo.Record) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier{Record: r})
}

// HeaderCarrier adapts a record's headers to OpenTelemetry's TextMapCarrier.
type HeaderCarrier struct{ Record *kgo.Record }

// Get returns the value of the first header named key.
func (c HeaderCarrier) Get(key string) string {
	for _, h := range c.Record.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the header named key.
func (c HeaderCarrier) Set(key, value string) {
	for i, h := range c.Record.Headers {
		if h.Key == key {
			c.Record.Headers[i].Value = []byte(value)
			return
		}
	}
	c.Record.Headers = append(c.Record.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, len(c.Record.Headers))
	for i, h := range c.Record.Headers {
		keys[i] = h.Key
	}
	return keys
}
