package ingest

// The mapping from validated events to the Kafka record envelope
// (eventspb.Event): what a consumer of a tenant topic reads.

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// records builds the Kafka records of the valid events of req, and their
// event ids (by index; "" for invalid events). The envelopes are sized first
// so that the encoder cuts every record and value from one block each.
func records(enc *kafka.Encoder, tenant string, req *Request, now time.Time) ([]*kgo.Record, []string, error) {
	ids := eventIDs(tenant, req)
	ingested := timestamppb.New(now)
	// One envelope, refilled per event: it is only read by the encoder.
	envelope := func(ev *Event, id string, e *eventspb.Event) {
		published := ingested // the default: one shared, read-only Timestamp
		if !ev.PublishedAt.Equal(now) {
			published = timestamppb.New(ev.PublishedAt)
		}
		*e = eventspb.Event{
			EventId:        id,
			Tenant:         tenant,
			Name:           ev.Name,
			PublishedAt:    published,
			Payload:        ev.Payload,
			EntityType:     ev.EntityType,
			DomainEntityId: ev.DomainEntityID,
			IdempotencyKey: ev.IdempotencyKey,
			IngestedAt:     ingested,
		}
	}
	var pb eventspb.Event
	valid, size := 0, 0
	for i := range req.Events {
		if ev := &req.Events[i]; ev.Err == nil {
			envelope(ev, ids[i], &pb)
			valid++
			size += kafka.EventSize(&pb)
		}
	}
	enc.Grow(valid, size)
	recs := make([]*kgo.Record, 0, valid)
	for i := range req.Events {
		ev := &req.Events[i]
		if ev.Err != nil {
			continue
		}
		envelope(ev, ids[i], &pb)
		rec, err := enc.Encode(&pb)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding event %d: %w", i, err)
		}
		recs = append(recs, rec)
	}
	return recs, ids, nil
}

// eventIDs derives the event ids of the valid events of req (by index; ""
// for invalid ones). Their text shares one string rather than one per event.
func eventIDs(tenant string, req *Request) []string {
	const idLen = 36 // the canonical UUID text
	text := make([]byte, 0, idLen*len(req.Events))
	for i := range req.Events {
		if ev := &req.Events[i]; ev.Err == nil {
			text = appendUUID(text, events.EventID(tenant, ev.Name, ev.IdempotencyKey))
		}
	}
	all := string(text)
	ids := make([]string, len(req.Events))
	for i := range req.Events {
		if req.Events[i].Err == nil {
			ids[i], all = all[:idLen], all[idLen:]
		}
	}
	return ids
}

// appendUUID appends the canonical text of id, as id.String() renders it.
func appendUUID(dst []byte, id [16]byte) []byte {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return append(dst, b[:]...)
}
