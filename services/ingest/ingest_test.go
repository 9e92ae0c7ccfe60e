package ingest_test

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// sent is what a test published, to compare with what Kafka holds.
type sent struct {
	name, key, entityID string
	payload             string
	publishedAt         time.Time // zero = defaulted to ingest time
	eventID             string
}

const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// eventFor builds event i of name in one of several shapes: explicit
// published_at, defaulted published_at, explicit keys, numeric payload.id.
// It returns the event object's JSON, written by hand so the payload keeps its
// exact bytes (encoding/json would compact it).
func eventFor(i int, name string) (string, sent) {
	id := fmt.Sprintf("%s-%d", strings.ReplaceAll(name, ".", "-"), i)
	// Odd spacing and escapes: the payload must be stored byte for byte.
	payload := fmt.Sprintf(`{ "id" : %q, "n": %d, "nested": {"id": "not-this"}, "text": "caf\u00e9 \"q\"" }`, id, i)
	s := sent{name: name, key: id, entityID: id}
	extra := ""
	switch i % 4 {
	case 0:
		ts := "2024-05-01T12:00:00.123456789+02:00"
		extra = `,"published_at":"` + ts + `"`
		s.publishedAt, _ = time.Parse(time.RFC3339Nano, ts)
	case 2:
		extra = `,"idempotency_key":"idem-` + id + `","domain_entity_id":"entity-` + id + `"`
		s.key, s.entityID = "idem-"+id, "entity-"+id
	case 3:
		payload = fmt.Sprintf(`{"id":%d,"kind":"numeric"}`, 1000+i)
		s.key = fmt.Sprint(1000 + i)
		s.entityID = s.key
	}
	s.payload = payload
	return `{"name":"` + name + `"` + extra + `,"payload":` + payload + `}`, s
}

// TestPublishEveryEventNameAndReadBack publishes each of the 42 names as a
// single event and again in one batch, then reads the tenant topic with an
// independent consumer and checks every envelope field and the record key,
// timestamp and trace header.
func TestPublishEveryEventNameAndReadBack(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	tenant := h.newTenant()
	tok := token(t, tenant)
	names := events.Names()
	if len(names) != 42 {
		t.Fatalf("registry has %d names", len(names))
	}
	before := time.Now()
	var want []sent
	for i, name := range names {
		body, s := eventFor(i, name)
		r := h.post(tok, []byte(body), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		if r.status != 202 {
			t.Fatalf("%s: status %d: %s", name, r.status, r.body)
		}
		s.eventID = events.EventID(tenant, name, s.key).String()
		if r.json["event_id"] != s.eventID {
			t.Fatalf("%s: event_id %v, want %s", name, r.json["event_id"], s.eventID)
		}
		want = append(want, s)
	}
	var batch []string
	for i, name := range names {
		ev, s := eventFor(100+i, name)
		s.eventID = events.EventID(tenant, name, s.key).String()
		batch = append(batch, ev)
		want = append(want, s)
	}
	body := "{\"events\": [\n" + strings.Join(batch, ",\n") + "\n]}"
	r := h.post(tok, []byte(body), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r.status != 202 || r.json["accepted"] != float64(42) || r.json["rejected"] != float64(0) {
		t.Fatalf("batch: status %d: %s", r.status, r.body)
	}
	for i, res := range r.json["results"].([]any) {
		m := res.(map[string]any)
		if m["index"] != float64(i) || m["event_id"] != want[42+i].eventID {
			t.Fatalf("batch result %d = %v, want event id %s", i, m, want[42+i].eventID)
		}
	}
	after := time.Now()

	recs := consume(t, h.brokers, tenant, len(want))
	if len(recs) != len(want) {
		t.Fatalf("topic holds %d records, want %d", len(recs), len(want))
	}
	byID := map[string]*kgo.Record{}
	for _, rec := range recs {
		ev, err := kafka.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		byID[ev.GetEventId()] = rec
	}
	for _, w := range want {
		rec, ok := byID[w.eventID]
		if !ok {
			t.Fatalf("event %s (%s) not in the topic", w.eventID, w.name)
		}
		ev, _ := kafka.DecodeRecord(rec)
		et, _ := events.EntityType(w.name)
		checks := []struct {
			field     string
			got, want any
		}{
			{"tenant", ev.GetTenant(), tenant},
			{"name", ev.GetName(), w.name},
			{"payload", string(ev.GetPayload()), w.payload},
			{"entity_type", ev.GetEntityType(), et},
			{"domain_entity_id", ev.GetDomainEntityId(), w.entityID},
			{"idempotency_key", ev.GetIdempotencyKey(), w.key},
			{"record key", string(rec.Key), w.entityID},
			{"record topic", rec.Topic, events.TopicName(tenant)},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s %s: %s = %q, want %q", w.name, w.eventID, c.field, c.got, c.want)
			}
		}
		ingested := ev.GetIngestedAt().AsTime()
		if ingested.Before(before.Add(-time.Millisecond)) || ingested.After(after) {
			t.Errorf("%s: ingested_at %v outside [%v, %v]", w.name, ingested, before, after)
		}
		if !rec.Timestamp.Equal(ingested.Truncate(time.Millisecond)) {
			t.Errorf("%s: record timestamp %v, want ingested_at %v", w.name, rec.Timestamp, ingested)
		}
		pub := ev.GetPublishedAt().AsTime()
		if w.publishedAt.IsZero() {
			if !pub.Equal(ingested) {
				t.Errorf("%s: defaulted published_at %v, want ingest time %v", w.name, pub, ingested)
			}
		} else if !pub.Equal(w.publishedAt) {
			t.Errorf("%s: published_at %v, want %v", w.name, pub, w.publishedAt)
		}
		tp := kafka.HeaderCarrier{Record: rec}.Get("traceparent")
		if !strings.HasPrefix(tp, "00-"+traceID+"-") || strings.Contains(tp, "00f067aa0ba902b7") {
			t.Errorf("%s: traceparent header %q does not continue the caller's trace in a server span", w.name, tp)
		}
	}
}

// TestRetriedPublishKeepsItsEventID: the same publish retried gets the same
// event id (and lands again with it); another tenant or key gets another id.
func TestRetriedPublishKeepsItsEventID(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	a, b := h.newTenant(), h.newTenant()
	body := []byte(`{"name":"order.created","payload":{"id":"o-1","total":10}}`)
	first := h.post(token(t, a), body)
	second := h.post(token(t, a), body)
	other := h.post(token(t, b), body)
	keyed := h.post(token(t, a), []byte(`{"name":"order.created","idempotency_key":"k2","payload":{"id":"o-1"}}`))
	for _, r := range []response{first, second, other, keyed} {
		if r.status != 202 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	if first.json["event_id"] != second.json["event_id"] {
		t.Fatalf("retry changed the event id: %v then %v", first.json["event_id"], second.json["event_id"])
	}
	if first.json["event_id"] != events.EventID(a, "order.created", "o-1").String() {
		t.Fatalf("event id %v is not EventID(tenant, name, payload.id)", first.json["event_id"])
	}
	if other.json["event_id"] == first.json["event_id"] || keyed.json["event_id"] == first.json["event_id"] {
		t.Fatal("different tenant or idempotency key must give a different event id")
	}
	recs := consume(t, h.brokers, a, 3)
	n := 0
	for _, r := range recs {
		ev, _ := kafka.DecodeRecord(r)
		if ev.GetEventId() == first.json["event_id"] {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d records carry the retried event id, want 2 (at-least-once, same id)", n)
	}
}

// TestTenantIsolation: a tenant token cannot publish into another tenant's
// topic; only a platform token may name the tenant.
func TestTenantIsolation(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	a, b := h.newTenant(), h.newTenant()
	ev := func(tenant string) []byte {
		return []byte(`{"tenant":"` + tenant + `","name":"customer.created","payload":{"id":"c-1"}}`)
	}
	batch := []byte(`{"tenant":"` + b + `","events":[{"name":"customer.created","payload":{"id":"c-2"}}]}`)

	for name, body := range map[string][]byte{"single": ev(b), "batch": batch} {
		r := h.post(token(t, a), body)
		if r.status != 403 || r.json["error_code"] != "forbidden" || !strings.Contains(r.json["message"].(string), "tenant") {
			t.Fatalf("%s: tenant %s token publishing for %s: status %d: %s", name, a, b, r.status, r.body)
		}
		// Even with every tenant scope and an admin-looking token: no platform scope, no entry.
		r = h.post(token(t, a, append(auth.AllTenantScopes, "admin")...), body)
		if r.status != 403 {
			t.Fatalf("%s: token without platform scope got %d", name, r.status)
		}
	}
	if n := h.endOffsets(b); n != 0 {
		t.Fatalf("tenant %s's topic holds %d records after refused publishes", b, n)
	}
	if r := h.post(token(t, a), ev(a)); r.status != 202 {
		t.Fatalf("naming its own tenant: %d %s", r.status, r.body)
	}
	platform := token(t, "", auth.ScopePlatform, auth.ScopeEventsPublish)
	if r := h.post(platform, ev(b)); r.status != 202 {
		t.Fatalf("platform token naming %s: %d %s", b, r.status, r.body)
	}
	if r := h.post(platform, batch); r.status != 202 {
		t.Fatalf("platform batch for %s: %d %s", b, r.status, r.body)
	}
	recs := consume(t, h.brokers, b, 2)
	for _, r := range recs {
		ev, _ := kafka.DecodeRecord(r)
		if ev.GetTenant() != b {
			t.Fatalf("record in %s's topic says tenant %q", b, ev.GetTenant())
		}
	}
	if n := h.endOffsets(a); n != 1 {
		t.Fatalf("tenant %s's topic holds %d records, want 1", a, n)
	}
}

// TestBadInput checks each refused input: status, error code, and a message
// naming the field; nothing reaches the topic.
func TestBadInput(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	tenant := h.newTenant()
	tok := token(t, tenant)
	big := `{"name":"order.created","payload":{"id":"x","pad":"` + strings.Repeat("a", 1<<20) + `"}}`
	huge := bytes.Repeat([]byte("x"), int(h.cfg.BodyLimit)+1)
	items := func(n int) string {
		return `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"name":"order.created","payload":{"id":"1"}},`, n), ",") + `]}`
	}
	cases := []struct {
		name   string
		token  string
		body   string
		status int
		code   string
		msg    string // substring of the message
	}{
		{"no token", "", `{}`, 401, "unauthorized", "bearer"},
		{"bad token", "not-a-jwt", `{}`, 401, "unauthorized", "token"},
		{"wrong scope", token(t, tenant, auth.ScopeIntegrationsRead), `{}`, 403, "forbidden", "events:publish"},
		{"empty body", tok, ``, 400, "bad_request", "empty"},
		{"not json", tok, `{"name":`, 400, "bad_request", "invalid JSON"},
		{"array body", tok, `[{"name":"order.created"}]`, 400, "bad_request", "JSON object"},
		{"trailing data", tok, `{"name":"order.created","payload":{"id":"1"}} {}`, 400, "bad_request", "after the top-level"},
		{"unknown field", tok, `{"name":"order.created","payload":{"id":"1"},"colour":1}`, 400, "bad_request", `"colour"`},
		{"name not string", tok, `{"name":5,"payload":{"id":"1"}}`, 400, "bad_request", `"name"`},
		{"missing name", tok, `{"payload":{"id":"1"}}`, 400, "missing_field", "name"},
		{"unknown name", tok, `{"name":"order.exploded","payload":{"id":"1"}}`, 400, "unknown_event_name", `name: unknown event name "order.exploded"`},
		{"missing payload", tok, `{"name":"order.created"}`, 400, "missing_field", "payload"},
		{"null payload", tok, `{"name":"order.created","payload":null}`, 400, "missing_field", "payload"},
		{"array payload", tok, `{"name":"order.created","payload":[1]}`, 400, "invalid_payload", "payload: must be a JSON object"},
		{"string payload", tok, `{"name":"order.created","payload":"{}"}`, 400, "invalid_payload", "payload"},
		{"bad timestamp", tok, `{"name":"order.created","published_at":"yesterday","payload":{"id":"1"}}`, 400, "invalid_timestamp", "published_at"},
		{"timestamp without zone", tok, `{"name":"order.created","published_at":"2024-05-01T12:00:00","payload":{"id":"1"}}`, 400, "invalid_timestamp", "published_at"},
		{"no id anywhere", tok, `{"name":"order.created","payload":{"total":1}}`, 400, "invalid_key", "domain_entity_id: required when payload.id is absent"},
		{"no id for key", tok, `{"name":"order.created","domain_entity_id":"e","payload":{}}`, 400, "invalid_key", "idempotency_key"},
		{"bool payload id", tok, `{"name":"order.created","payload":{"id":true}}`, 400, "invalid_key", "payload.id"},
		{"empty key", tok, `{"name":"order.created","idempotency_key":"","payload":{"id":"1"}}`, 400, "invalid_key", "idempotency_key: must not be empty"},
		{"control char entity", tok, `{"name":"order.created","domain_entity_id":"a\u0000b","payload":{"id":"1"}}`, 400, "invalid_key", "domain_entity_id"},
		{"event over 1 MiB", tok, big, 400, "event_too_large", "limit"},
		{"body over limit", tok, string(huge), 413, "payload_too_large", "exceeds"},
		{"empty batch", tok, `{"events":[]}`, 400, "bad_request", "events"},
		{"batch over 500", tok, items(501), 400, "bad_request", "events: 501 events, at most 500"},
		{"batch with event fields", tok, `{"events":[{"name":"order.created","payload":{"id":"1"}}],"name":"order.created"}`, 400, "bad_request", "events"},
		{"events not array", tok, `{"events":{}}`, 400, "bad_request", `"events"`},
		{"all invalid batch", tok, `{"events":[{"name":"nope","payload":{"id":"1"}},7]}`, 400, "invalid_events", "events[0].name"},
		{"bad tenant name", tok, `{"tenant":"Not_A_Tenant","name":"order.created","payload":{"id":"1"}}`, 400, "bad_request", "tenant"},
		{"platform token without tenant", token(t, "", auth.ScopePlatform, auth.ScopeEventsPublish), `{"name":"order.created","payload":{"id":"1"}}`, 400, "bad_request", "tenant"},
		{"unknown tenant", token(t, "ghost-tenant"), `{"name":"order.created","payload":{"id":"1"}}`, 404, "tenant_not_found", "ghost-tenant"},
		{"platform naming unknown tenant", token(t, "", auth.ScopePlatform, auth.ScopeEventsPublish), `{"tenant":"ghost-2","name":"order.created","payload":{"id":"1"}}`, 404, "tenant_not_found", "ghost-2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := postTo(t, h.url, c.token, []byte(c.body))
			if r.status != c.status || r.json["error_code"] != c.code {
				t.Fatalf("status %d code %v, want %d %s: %.300s", r.status, r.json["error_code"], c.status, c.code, r.body)
			}
			msg, _ := r.json["message"].(string)
			if !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q does not mention %q", msg, c.msg)
			}
			if id, _ := r.json["request_id"].(string); id == "" {
				t.Fatal("error body without request_id")
			}
		})
	}
	t.Run("chunked body over limit", func(t *testing.T) {
		// No Content-Length: the limit is enforced while reading.
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/events", io.MultiReader(bytes.NewReader(huge)))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "payload_too_large") {
			t.Fatalf("chunked oversize body: %d %s", resp.StatusCode, b)
		}
	})
	if n := h.endOffsets(tenant); n != 0 {
		t.Fatalf("refused publishes wrote %d records", n)
	}
}

// TestBatchAcceptsValidItems: in a mixed batch the valid events are stored and
// acknowledged, the invalid ones reported per index.
func TestBatchAcceptsValidItems(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	tenant := h.newTenant()
	body := `{"events":[
		{"name":"order.created","payload":{"id":"ok-1"}},
		{"name":"order.nope","payload":{"id":"bad-1"}},
		"not an object",
		{"name":"order.created","payload":{"id":"x"},"extra":1},
		{"name":"order.shipped","published_at":"2024-13-01T00:00:00Z","payload":{"id":"bad-2"}},
		{"name":"return.processed","payload":{"id":"ok-2"}}
	]}`
	r := h.post(token(t, tenant), []byte(body))
	if r.status != 202 || r.json["accepted"] != float64(2) || r.json["rejected"] != float64(4) {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantCodes := []string{"", "unknown_event_name", "invalid_json", "invalid_json", "invalid_timestamp", ""}
	results := r.json["results"].([]any)
	for i, res := range results {
		m := res.(map[string]any)
		if m["index"] != float64(i) {
			t.Fatalf("result %d has index %v", i, m["index"])
		}
		if wantCodes[i] == "" {
			if _, ok := m["event_id"].(string); !ok || m["error"] != nil {
				t.Fatalf("result %d: %v, want an event id", i, m)
			}
			continue
		}
		e, _ := m["error"].(map[string]any)
		if e == nil || e["error_code"] != wantCodes[i] || !strings.HasPrefix(e["message"].(string), fmt.Sprintf("events[%d]", i)) {
			t.Fatalf("result %d: %v, want error %s naming events[%d]", i, m, wantCodes[i], i)
		}
	}
	recs := consume(t, h.brokers, tenant, 2)
	got := map[string]bool{}
	for _, rec := range recs {
		got[string(rec.Key)] = true
	}
	if !got["ok-1"] || !got["ok-2"] || len(recs) != 2 || h.endOffsets(tenant) != 2 {
		t.Fatalf("topic holds %v, want exactly ok-1 and ok-2", got)
	}
}

// TestConcurrentBatchesKeepTheirBytes: request bodies and record blocks are
// reused across requests (see readBody and kafka.Encoder.Release), so batches
// of different sizes published at once, some with invalid events, must each
// land byte for byte: every payload, key and event id as sent, none mixed up
// with another request's.
func TestConcurrentBatchesKeepTheirBytes(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	tenant := h.newTenant()
	tok := token(t, tenant)
	const workers, batches = 4, 6
	var mu sync.Mutex
	want := map[string]string{} // event id -> payload
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				n := 1 + (w*batches+b)*7%40 // sizes vary, so a reused buffer holds older, longer bytes
				var sb strings.Builder
				sb.WriteString(`{"events":[`)
				sent := map[string]string{}
				for i := range n {
					id := fmt.Sprintf("w%d-b%d-e%d", w, b, i)
					payload := fmt.Sprintf(`{"id":%q,"pad":%q}`, id, strings.Repeat(string(rune('a'+i%26)), (i*37)%300))
					if i > 0 {
						sb.WriteByte(',')
					}
					if i%5 == 3 {
						sb.WriteString(`{"name":"order.nope","payload":` + payload + `}`)
						continue
					}
					sb.WriteString(`{"name":"order.created","payload":` + payload + `}`)
					sent[events.EventID(tenant, "order.created", id).String()] = payload
				}
				sb.WriteString(`]}`)
				r := postTo(t, h.url, tok, []byte(sb.String()))
				if r.status != 202 || r.json["accepted"] != float64(len(sent)) {
					t.Errorf("status %d: %s", r.status, r.body)
					return
				}
				mu.Lock()
				maps.Copy(want, sent)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := len(want)
	for _, rec := range consume(t, h.brokers, tenant, total) {
		ev, err := kafka.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		payload, ok := want[ev.GetEventId()]
		if !ok {
			t.Fatalf("record %s: not an event sent, or sent twice", ev.GetEventId())
		}
		delete(want, ev.GetEventId())
		if string(ev.GetPayload()) != payload || string(rec.Key) != ev.GetDomainEntityId() ||
			ev.GetEventId() != events.EventID(tenant, "order.created", ev.GetIdempotencyKey()).String() {
			t.Fatalf("record %s: key %q, envelope %v; sent payload %s", ev.GetEventId(), rec.Key, ev, payload)
		}
	}
	if len(want) != 0 || h.endOffsets(tenant) != int64(total) {
		t.Fatalf("%d of %d events not read back; topic holds %d records", len(want), total, h.endOffsets(tenant))
	}
}
