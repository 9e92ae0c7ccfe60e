package kafka

import (
	"bytes"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

func checkAppendEvent(t *testing.T, ev *eventspb.Event) {
	t.Helper()
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, plain) {
		t.Fatalf("proto.Marshal is not deterministic for %v", ev)
	}
	prefix := []byte("prefix")
	got := AppendEvent(bytes.Clone(prefix), ev)
	if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("AppendEvent(%v)\n got %x\nwant %x", ev, got[len(prefix):], want)
	}
	if n := EventSize(ev); n != len(want) {
		t.Fatalf("EventSize(%v) = %d, proto.Marshal wrote %d bytes", ev, n, len(want))
	}
}

func TestAppendEventMatchesMarshal(t *testing.T) {
	unknown := &eventspb.Event{EventId: "x"}
	unknown.ProtoReflect().SetUnknown([]byte{0x50, 0x01}) // field 10, varint 1
	tsUnknown := &timestamppb.Timestamp{Seconds: 5}
	tsUnknown.ProtoReflect().SetUnknown([]byte{0x18, 0x07}) // field 3, varint 7
	for name, ev := range map[string]*eventspb.Event{
		"nil":   nil,
		"empty": {},
		"typical": {
			EventId: "5b8f3c1e-2a4d-4e6f-9a0b-7c1d2e3f4a5b", Tenant: "acme", Name: "order.created",
			PublishedAt: timestamppb.New(timestamppb.Now().AsTime()), Payload: []byte(`{"id":"o-1"}`),
			EntityType: "order", DomainEntityId: "o-1", IdempotencyKey: "o-1", IngestedAt: timestamppb.Now(),
		},
		"zero timestamps":     {PublishedAt: &timestamppb.Timestamp{}, IngestedAt: &timestamppb.Timestamp{}},
		"negative timestamp":  {PublishedAt: &timestamppb.Timestamp{Seconds: -62135596800, Nanos: -1}},
		"max timestamp":       {IngestedAt: &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999999999}},
		"long payload":        {Payload: bytes.Repeat([]byte("x"), 70000), Name: string(bytes.Repeat([]byte("n"), 200))},
		"unknown fields":      unknown,
		"timestamp unknown":   {PublishedAt: tsUnknown},
		"empty payload, keys": {Payload: []byte{}, DomainEntityId: "d", IdempotencyKey: "k"},
		"only event id":       {EventId: "ok"},
	} {
		t.Run(name, func(t *testing.T) { checkAppendEvent(t, ev) })
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("id", "acme", "order.created", int64(1700000000), int32(5), []byte(`{"id":1}`), "order", "d", "k", int64(-1), int32(-7), true, false)
	f.Add("", "", "", int64(0), int32(0), []byte(nil), "", "", "", int64(0), int32(0), false, true)
	f.Fuzz(func(t *testing.T, id, tenant, name string, ps int64, pn int32, payload []byte, et, de, ik string, is int64, in int32, hasP, hasI bool) {
		// proto.Marshal refuses strings that are not UTF-8 (proto3 string
		// fields), and AppendEvent's callers only pass validated strings:
		// make every input valid rather than skip it, so each one is checked.
		v := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		ev := &eventspb.Event{EventId: v(id), Tenant: v(tenant), Name: v(name), Payload: payload, EntityType: v(et),
			DomainEntityId: v(de), IdempotencyKey: v(ik)}
		if hasP {
			ev.PublishedAt = &timestamppb.Timestamp{Seconds: ps, Nanos: pn}
		}
		if hasI {
			ev.IngestedAt = &timestamppb.Timestamp{Seconds: is, Nanos: in}
		}
		checkAppendEvent(t, ev)
	})
}

// TestEncoderRecords: records cut from the encoder's shared blocks carry
// exactly what proto.Marshal and []byte(domain entity id) gave, stay intact
// while later records are encoded, with or without Grow, and when Grow
// reuses the blocks of a released encoder.
func TestEncoderRecords(t *testing.T) {
	now := timestamppb.Now()
	evs := []*eventspb.Event{
		{EventId: "a", Tenant: "acme", Name: "order.created", Payload: []byte(`{"id":"o-1"}`), DomainEntityId: "o-1", IdempotencyKey: "k", IngestedAt: now, PublishedAt: now},
		{EventId: "b", Tenant: "acme", Name: "order.created", Payload: []byte(`{}`), IngestedAt: now},
		{EventId: "c", Tenant: "other", Payload: bytes.Repeat([]byte("p"), 10000), DomainEntityId: "d-3"},
		{EventId: "d", Tenant: "other", DomainEntityId: "only-key"},
	}
	for _, grow := range []bool{false, true, true, true} {
		enc := NewEncoder(t.Context())
		if grow {
			n := 0
			for _, ev := range evs {
				n += EventSize(ev)
			}
			enc.Grow(len(evs), n)
		}
		var got []*kgo.Record
		for _, ev := range evs {
			r, err := enc.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		for i, ev := range evs {
			r := got[i]
			want, _ := proto.Marshal(ev)
			if !bytes.Equal(r.Value, want) {
				t.Errorf("grow=%v: record %d: value %x, want %x", grow, i, r.Value, want)
			}
			if string(r.Key) != ev.DomainEntityId || r.Key == nil {
				t.Errorf("grow=%v: record %d: key %q (nil %v), want %q", grow, i, r.Key, r.Key == nil, ev.DomainEntityId)
			}
			if cap(r.Value) != len(r.Value) || cap(r.Key) != len(r.Key) {
				t.Errorf("grow=%v: record %d: an append to the value or key would write into the next record", grow, i)
			}
			if r.Topic != "eventstream."+ev.Tenant+".events" || r.Partition != 0 || r.Offset != 0 {
				t.Errorf("grow=%v: record %d: topic %q, partition %d, offset %d", grow, i, r.Topic, r.Partition, r.Offset)
			}
			if ev.IngestedAt != nil && !r.Timestamp.Equal(ev.IngestedAt.AsTime()) {
				t.Errorf("grow=%v: record %d: timestamp %v", grow, i, r.Timestamp)
			}
			r.Partition, r.Offset = 7, 42 // as the client sets them: the next encoder must not see them
		}
		enc.Release()
	}
}
