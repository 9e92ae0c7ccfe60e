package ingest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/services/ingest"
)

var fuzzLimits = ingest.Limits{MaxEventBytes: 4 << 10, MaxBatch: 5}

func TestParseEventsDefaults(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	req, err := ingest.ParseEvents([]byte(`{"name":"invoice.created","payload":{"id":77}}`), fuzzLimits, now)
	if err != nil {
		t.Fatal(err)
	}
	ev := req.Events[0]
	if req.Batch || ev.Err != nil || !ev.PublishedAt.Equal(now) || ev.EntityType != "invoice" ||
		ev.DomainEntityID != "77" || ev.IdempotencyKey != "77" || string(ev.Payload) != `{"id":77}` {
		t.Fatalf("parsed %+v", ev)
	}
	// Explicit keys win over payload.id, and payload.id is then not needed.
	req, err = ingest.ParseEvents([]byte(`{"name":"invoice.created","payload":{},"idempotency_key":"k","domain_entity_id":"e"}`), fuzzLimits, now)
	if err != nil || req.Events[0].IdempotencyKey != "k" || req.Events[0].DomainEntityID != "e" {
		t.Fatalf("explicit keys: %+v, %v", req, err)
	}
}

// FuzzParseEvents: the body parser never panics, refuses with a 400 error,
// and everything it accepts is valid.
func FuzzParseEvents(f *testing.F) {
	for _, s := range []string{
		`{"name":"order.created","payload":{"id":"1"}}`,
		`{"name":"order.created","published_at":"2024-05-01T12:00:00.5+02:00","payload":{"id":1.5e3}}`,
		`{"tenant":"acme","events":[{"name":"customer.updated","payload":{"id":"c"}},{"name":"x"},1]}`,
		`{"name":"gift_card.deactivated","idempotency_key":"k","domain_entity_id":"d","payload":{"a":[{"id":2}]}}`,
		`{"events":[]}`, `[]`, `{"name":"order.created","payload":[]}`, `{"name":"order.created","payload":{"id":"\u0000"}}`,
		`{"name":"order.created","published_at":"0001-01-01T00:30:00+01:00","payload":{"id":"1"}}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ingest.ParseEvents(body, fuzzLimits, now)
		if err != nil {
			var he *httpapi.Error
			if !errors.As(err, &he) || he.Status != http.StatusBadRequest || he.Message == "" {
				t.Fatalf("refusal is not a 400 API error: %#v", err)
			}
			return
		}
		if len(req.Events) == 0 || len(req.Events) > fuzzLimits.MaxBatch {
			t.Fatalf("accepted %d events", len(req.Events))
		}
		if req.Tenant != "" && (strings.Trim(req.Tenant, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || req.Tenant[0] == '-') {
			t.Fatalf("accepted tenant %q", req.Tenant)
		}
		if !req.Batch && (len(req.Events) != 1 || req.Events[0].Err != nil) {
			t.Fatalf("single body accepted with %d events / error %v", len(req.Events), req.Events[0].Err)
		}
		for i, ev := range req.Events {
			if ev.Err != nil {
				if ev.Err.Code == "" || !strings.HasPrefix(ev.Err.Message, "events[") {
					t.Fatalf("event %d: error without code or field: %+v", i, ev.Err)
				}
				continue
			}
			et, ok := events.EntityType(ev.Name)
			if !ok || et != ev.EntityType {
				t.Fatalf("event %d: name %q entity %q", i, ev.Name, ev.EntityType)
			}
			if len(ev.Payload) == 0 || ev.Payload[0] != '{' || !json.Valid(ev.Payload) || !utf8.Valid(ev.Payload) {
				t.Fatalf("event %d: payload %q is not a JSON object", i, ev.Payload)
			}
			if len(ev.Payload) > fuzzLimits.MaxEventBytes {
				t.Fatalf("event %d: payload of %d bytes accepted", i, len(ev.Payload))
			}
			if events.CheckKey(ev.IdempotencyKey) != nil || events.CheckKey(ev.DomainEntityID) != nil {
				t.Fatalf("event %d: keys %q / %q", i, ev.IdempotencyKey, ev.DomainEntityID)
			}
			if err := timestamppb.New(ev.PublishedAt).CheckValid(); err != nil {
				t.Fatalf("event %d: published_at %v: %v", i, ev.PublishedAt, err)
			}
		}
	})
}

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{
		"KAFKA_BROKERS": "k1:9092, k2:9092", "DATABASE_URL": "postgres://x/y",
		"AUTH_HS256_SECRET": strings.Repeat("s", 32),
	}
	env := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return base[k]
		}
	}
	c, err := ingest.ConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8082" || len(c.Brokers) != 2 || c.Brokers[1] != "k2:9092" || c.MaxBatch != 500 ||
		c.MaxEventBytes != 1<<20 || c.BodyLimit != 8<<20 || c.ProduceTimeout != 10*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ingest.ConfigFromEnv(env(map[string]string{"INGEST_ADDR": ":9", "INGEST_PRODUCE_TIMEOUT": "3s", "INGEST_MAX_BATCH": "50"}))
	if err != nil || c.Addr != ":9" || c.ProduceTimeout != 3*time.Second || c.MaxBatch != 50 {
		t.Fatalf("overrides: %+v %v", c, err)
	}
	if c.RateLimit != ingest.DefaultRateLimit || c.RateBurst != ingest.DefaultRateBurst {
		t.Fatalf("rate limit defaults: %g/s burst %d", c.RateLimit, c.RateBurst)
	}
	c, err = ingest.ConfigFromEnv(env(map[string]string{"INGEST_RATE_LIMIT": "0"}))
	if err != nil || c.RateLimit >= 0 {
		t.Fatalf("INGEST_RATE_LIMIT=0 must turn the limit off: %g %v", c.RateLimit, err)
	}
	c, err = ingest.ConfigFromEnv(env(map[string]string{"INGEST_RATE_LIMIT": "2.5", "INGEST_RATE_BURST": "600"}))
	if err != nil || c.RateLimit != 2.5 || c.RateBurst != 600 {
		t.Fatalf("rate overrides: %g/s burst %d %v", c.RateLimit, c.RateBurst, err)
	}
	for name, over := range map[string]map[string]string{
		"no brokers":          {"KAFKA_BROKERS": " , "},
		"no database":         {"DATABASE_URL": ""},
		"no auth":             {"AUTH_HS256_SECRET": ""},
		"bad timeout":         {"INGEST_PRODUCE_TIMEOUT": "soon"},
		"unbounded timeout":   {"INGEST_PRODUCE_TIMEOUT": "1h"},
		"event over a record": {"INGEST_MAX_EVENT_BYTES": "4194304"},
		"negative batch":      {"INGEST_MAX_BATCH": "-1"},
		"negative rate":       {"INGEST_RATE_LIMIT": "-5"},
		"rate not a number":   {"INGEST_RATE_LIMIT": "fast"},
		"burst below a batch": {"INGEST_RATE_BURST": "100"},
	} {
		if _, err := ingest.ConfigFromEnv(env(over)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestParseEventsRefusesRepeatedKeys: a repeated key is refused (as an
// invalid event in a batch), not silently decided by its last occurrence.
func TestParseEventsRefusesRepeatedKeys(t *testing.T) {
	now := time.Now()
	for _, body := range []string{
		`{"name":"order.created","name":"customer.created","payload":{"id":"1"}}`,
		`{"name":"order.created","payload":{"id":"1"},"payload":{"id":"2"}}`,
		`{"tenant":"a","tenant":"b","name":"order.created","payload":{"id":"1"}}`,
		`{"events":[],"events":[{"name":"order.created","payload":{"id":"1"}}]}`,
	} {
		if _, err := ingest.ParseEvents([]byte(body), fuzzLimits, now); err == nil || !strings.Contains(err.Error(), "duplicate field") {
			t.Errorf("%s: err = %v, want a duplicate field refusal", body, err)
		}
	}
	req, err := ingest.ParseEvents([]byte(`{"events":[{"name":"order.created","payload":{"id":"1"}},`+
		`{"name":"order.created","idempotency_key":"a","idempotency_key":"b","payload":{"id":"2"}}]}`), fuzzLimits, now)
	if err != nil || req.Events[0].Err != nil || req.Events[1].Err == nil || !strings.Contains(req.Events[1].Err.Message, "duplicate field") {
		t.Fatalf("batch with one repeated key: %+v, %v", req, err)
	}
	// The same key inside the payload is the payload's business.
	if _, err := ingest.ParseEvents([]byte(`{"name":"order.created","payload":{"id":"1","id":"2"}}`), fuzzLimits, now); err != nil {
		t.Fatalf("repeated key inside the payload: %v", err)
	}
}

// One start reports every problem: a malformed variable, a failed check and
// a missing requirement together, each named.
func TestConfigFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{"INGEST_BODY_LIMIT": "big", "INGEST_RATE_BURST": "1", "KAFKA_BROKERS": "k:9092",
		"AUTH_HS256_SECRET": strings.Repeat("s", 32)}
	_, err := ingest.ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"INGEST_BODY_LIMIT", "INGEST_RATE_BURST", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
