package kafka

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// The record value is the eventspb.Event envelope. Ingest encodes one per
// event, and proto.Marshal (reflection, one buffer per call) was the largest
// allocator of an ingest batch. AppendEvent writes the same bytes by hand:
// fields in field-number order, proto3 zero values left out, a set Timestamp
// always present (even when zero), unknown fields last, exactly as
// proto.Marshal does. TestAppendEventMatchesMarshal and FuzzAppendEvent hold
// it to that, byte for byte; a field added to event.proto must be added here
// (the test fails until it is).

// Field numbers of eventspb.Event (event.proto).
const (
	fieldEventID        protowire.Number = 1
	fieldTenant         protowire.Number = 2
	fieldName           protowire.Number = 3
	fieldPublishedAt    protowire.Number = 4
	fieldPayload        protowire.Number = 5
	fieldEntityType     protowire.Number = 6
	fieldDomainEntityID protowire.Number = 7
	fieldIdempotencyKey protowire.Number = 8
	fieldIngestedAt     protowire.Number = 9
)

// EventSize is len(AppendEvent(nil, ev)).
func EventSize(ev *eventspb.Event) int {
	n := stringSize(fieldEventID, ev.GetEventId()) +
		stringSize(fieldTenant, ev.GetTenant()) +
		stringSize(fieldName, ev.GetName()) +
		timestampSize(fieldPublishedAt, ev.GetPublishedAt()) +
		bytesSize(fieldPayload, len(ev.GetPayload())) +
		stringSize(fieldEntityType, ev.GetEntityType()) +
		stringSize(fieldDomainEntityID, ev.GetDomainEntityId()) +
		stringSize(fieldIdempotencyKey, ev.GetIdempotencyKey()) +
		timestampSize(fieldIngestedAt, ev.GetIngestedAt())
	if ev != nil {
		n += len(ev.ProtoReflect().GetUnknown())
	}
	return n
}

// AppendEvent appends the protobuf encoding of ev to dst: the bytes
// proto.Marshal(ev) returns.
func AppendEvent(dst []byte, ev *eventspb.Event) []byte {
	if ev == nil {
		return dst
	}
	dst = appendString(dst, fieldEventID, ev.EventId)
	dst = appendString(dst, fieldTenant, ev.Tenant)
	dst = appendString(dst, fieldName, ev.Name)
	dst = appendTimestamp(dst, fieldPublishedAt, ev.PublishedAt)
	if len(ev.Payload) > 0 {
		dst = protowire.AppendTag(dst, fieldPayload, protowire.BytesType)
		dst = protowire.AppendBytes(dst, ev.Payload)
	}
	dst = appendString(dst, fieldEntityType, ev.EntityType)
	dst = appendString(dst, fieldDomainEntityID, ev.DomainEntityId)
	dst = appendString(dst, fieldIdempotencyKey, ev.IdempotencyKey)
	dst = appendTimestamp(dst, fieldIngestedAt, ev.IngestedAt)
	return append(dst, ev.ProtoReflect().GetUnknown()...)
}

func stringSize(num protowire.Number, s string) int { return bytesSize(num, len(s)) }

// bytesSize is the size of a string or bytes field of n bytes (none when empty).
func bytesSize(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendString(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

// timestampBody is the size of a Timestamp's own fields.
func timestampBody(ts *timestamppb.Timestamp) int {
	n := 0
	if s := ts.GetSeconds(); s != 0 {
		n += protowire.SizeTag(1) + protowire.SizeVarint(uint64(s))
	}
	if ns := ts.GetNanos(); ns != 0 {
		n += protowire.SizeTag(2) + protowire.SizeVarint(uint64(int64(ns))) // int32 is sign-extended
	}
	return n + len(ts.ProtoReflect().GetUnknown())
}

func timestampSize(num protowire.Number, ts *timestamppb.Timestamp) int {
	if ts == nil {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(timestampBody(ts))
}

func appendTimestamp(dst []byte, num protowire.Number, ts *timestamppb.Timestamp) []byte {
	if ts == nil {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(timestampBody(ts)))
	if s := ts.Seconds; s != 0 {
		dst = protowire.AppendTag(dst, 1, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(s))
	}
	if ns := ts.Nanos; ns != 0 {
		dst = protowire.AppendTag(dst, 2, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(int64(ns)))
	}
	return append(dst, ts.ProtoReflect().GetUnknown()...)
}
