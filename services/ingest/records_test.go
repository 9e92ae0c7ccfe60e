package ingest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// TestRecordsMatchTheEnvelope: each record of a batch (with invalid events
// between the valid ones) holds exactly proto.Marshal of the event's
// envelope, keyed by its domain entity id, and its id is the UUIDv5 text.
func TestRecordsMatchTheEnvelope(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	body := `{"events":[
		{"name":"order.created","payload":{"id":"o-1","n":1}},
		{"name":"nope","payload":{"id":"o-2"}},
		{"name":"order.created","payload":{"id":"o-3"},"published_at":"2024-05-01T12:00:00.5Z","idempotency_key":"k-3"},
		{"name":"order.created","payload":{"id":"` + strings.Repeat("é", 100) + `"},"domain_entity_id":"d-4"}]}`
	req, err := ParseEvents([]byte(body), Limits{MaxEventBytes: 1 << 20, MaxBatch: 10}, now)
	if err != nil {
		t.Fatal(err)
	}
	recs, ids, err := records(kafka.NewEncoder(t.Context()), "acme", req, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || len(ids) != 4 || ids[1] != "" {
		t.Fatalf("%d records, ids %q", len(recs), ids)
	}
	r := 0
	for i, ev := range req.Events {
		if ev.Err != nil {
			continue
		}
		id := events.EventID("acme", ev.Name, ev.IdempotencyKey).String()
		if ids[i] != id {
			t.Errorf("event %d: id %q, want %q", i, ids[i], id)
		}
		want, err := proto.Marshal(&eventspb.Event{
			EventId: id, Tenant: "acme", Name: ev.Name, PublishedAt: timestamppb.New(ev.PublishedAt),
			Payload: ev.Payload, EntityType: ev.EntityType, DomainEntityId: ev.DomainEntityID,
			IdempotencyKey: ev.IdempotencyKey, IngestedAt: timestamppb.New(now),
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := recs[r]
		r++
		if !bytes.Equal(rec.Value, want) {
			t.Errorf("event %d: value\n %x\nwant %x", i, rec.Value, want)
		}
		if string(rec.Key) != ev.DomainEntityID {
			t.Errorf("event %d: key %q, want %q", i, rec.Key, ev.DomainEntityID)
		}
		if rec.Topic != events.TopicName("acme") || !rec.Timestamp.Equal(now) {
			t.Errorf("event %d: topic %q, timestamp %v", i, rec.Topic, rec.Timestamp)
		}
	}
}

// BenchmarkRecords500 is the encoding half of a 500-event batch of 1 KiB
// payloads (parsed once, outside the loop): ids, envelopes and records. It
// measures without HTTP and the broker, whose cost dominates and varies in
// BenchmarkIngestBatch500.
func BenchmarkRecords500(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"events":[`)
	for j := range 500 {
		if j > 0 {
			sb.WriteByte(',')
		}
		head := fmt.Sprintf(`{"name":"order.created","payload":{"id":"ent-%08d","status":"OPEN","data":"`, j)
		sb.WriteString(head + strings.Repeat("x", 1024) + `"}}`)
	}
	sb.WriteString(`]}`)
	now := time.Now()
	req, err := ParseEvents([]byte(sb.String()), Limits{MaxEventBytes: 1 << 20, MaxBatch: 500}, now)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(500 * 1024)
	for b.Loop() {
		enc := kafka.NewEncoder(b.Context())
		if _, _, err := records(enc, "bench", req, now); err != nil {
			b.Fatal(err)
		}
		enc.Release() // as publish does once Kafka acknowledged the records
	}
}

// TestKeyArenaMatchesIDValue: the arena returns what events.IDValue returns,
// errors included, for every shape of payload.id, and earlier strings keep
// their bytes as the arena fills further blocks.
func TestKeyArenaMatchesIDValue(t *testing.T) {
	var keys keyArena
	type result struct {
		id  string
		err string
	}
	var got []result
	vals := []string{`"plain"`, `"with \"escape\""`, `"\u00e9"`, `12`, `-0.5e3`, `""`, `"` + strings.Repeat("k", 512) + `"`,
		`"` + strings.Repeat("k", 513) + `"`, "\"a\x01\"", "\"\xff\"", `true`, `null`, `{}`, `"é"`}
	for range 400 { // past a block or two
		vals = append(vals, `"`+strings.Repeat("z", 37)+`"`)
	}
	for _, v := range vals {
		id, err := keys.idValue([]byte(v))
		got = append(got, result{id, fmt.Sprint(err)})
	}
	for i, v := range vals {
		id, err := events.IDValue([]byte(v))
		if want := (result{id, fmt.Sprint(err)}); got[i] != want {
			t.Errorf("%s: arena %q, IDValue %q", v, got[i], want)
		}
	}
}
