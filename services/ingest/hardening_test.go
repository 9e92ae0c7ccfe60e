package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/pkg/webhook"
	"github.com/eventstream/eventstream/services/ingest"
)

// TestDeliveryFedBackIsNotRepublished: an integration whose callback is the
// ingest API, with the tenant's own token as api_key, would publish every
// delivered event again. The real webhook sender marks its requests and the
// ingest API refuses them with a 400 (the sender's "rejected": never
// retried), so the topic does not grow.
func TestDeliveryFedBackIsNotRepublished(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), nil)
	tenant := h.newTenant()
	tok := token(t, tenant)
	body := []byte(`{"tenant":"` + tenant + `","name":"order.created","published_at":"2024-01-01T00:00:00.000Z","payload":{"id":"o-1"}}`)

	// The same body posted by a client is an event (so the refusal below is
	// about the mark, not the body).
	if r := h.post(tok, body); r.status != http.StatusAccepted {
		t.Fatalf("plain publish: %d %s", r.status, r.body)
	}
	before := h.endOffsets(tenant)

	sender := webhook.NewSender(webhook.Config{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	hook := &catalog.Integration{Webhook: &catalog.Webhook{CallbackURL: h.url + "/v1/events", APIKey: tok}}
	for i := range 3 {
		res := sender.Send(context.Background(), &webhook.Request{URL: hook.Webhook.CallbackURL, APIKey: hook.Webhook.APIKey,
			EventID: fmt.Sprintf("0190c0de-0000-7000-8000-%012d", i), EventName: "order.created", IdempotencyKey: "o-1", Body: body})
		if res.Err != nil || res.Code != http.StatusBadRequest || res.Outcome() != webhook.Rejected {
			t.Fatalf("delivery to the ingest API: %+v, want 400 (rejected, not retried)", res)
		}
		if !strings.Contains(res.Body, `"error_code":"delivery_loop"`) || !strings.Contains(res.Body, `"request_id"`) {
			t.Fatalf("refusal body = %s", res.Body)
		}
	}
	if after := h.endOffsets(tenant); after != before {
		t.Fatalf("the topic grew from %d to %d records after deliveries were fed back", before, after)
	}
	// A client sending the mark by hand is refused the same way (the body
	// must match the documented error shape).
	r := h.post(tok, body, webhook.HeaderDelivery, "x")
	if r.status != http.StatusBadRequest || r.json["error_code"] != "delivery_loop" {
		t.Fatalf("marked request: %d %s", r.status, r.body)
	}
}

// TestTenantRateLimit: a tenant past its bucket gets 429 with an integer
// Retry-After and the error body, nothing of the refused request reaches the
// topic, and another tenant is not affected. Events are counted, so a batch
// takes as many tokens as it has valid events.
func TestTenantRateLimit(t *testing.T) {
	h := newHarness(t, testenv.KafkaBrokers(t), func(c *ingest.Config) {
		c.RateLimit, c.RateBurst, c.MaxBatch = 0.5, 20, 20
	})
	noisy, quiet := h.newTenant(), h.newTenant()
	batch := func(n, from int) []byte {
		var b strings.Builder
		b.WriteString(`{"events":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"order.created","payload":{"id":"o-%d"}}`, from+i)
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	if r := h.post(token(t, noisy), batch(15, 0)); r.status != http.StatusAccepted {
		t.Fatalf("first batch: %d %s", r.status, r.body)
	}
	// 5 tokens left: a 10-event batch is refused whole.
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/events", strings.NewReader(string(batch(10, 100))))
	req.Header.Set("Authorization", "Bearer "+token(t, noisy))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the limit: status %d, want 429", resp.StatusCode)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 40 {
		t.Fatalf("Retry-After = %q, want whole seconds in 1..40", resp.Header.Get("Retry-After"))
	}
	r := h.post(token(t, noisy), batch(10, 200)) // validated against the OpenAPI document
	if r.status != http.StatusTooManyRequests || r.json["error_code"] != "rate_limited" || r.json["request_id"] == "" {
		t.Fatalf("429 body = %s", r.body)
	}
	// What fits still passes.
	if r := h.post(token(t, noisy), batch(5, 300)); r.status != http.StatusAccepted {
		t.Fatalf("within the remaining tokens: %d %s", r.status, r.body)
	}
	if n := h.endOffsets(noisy); n != 20 {
		t.Fatalf("noisy tenant's topic holds %d records, want 20 (refused batches publish nothing)", n)
	}
	if r := h.post(token(t, quiet), batch(20, 0)); r.status != http.StatusAccepted {
		t.Fatalf("another tenant was limited: %d %s", r.status, r.body)
	}
	// A platform token is limited per tenant it publishes for.
	plat := token(t, "", auth.ScopeEventsPublish, auth.ScopePlatform)
	if r := h.post(plat, []byte(`{"tenant":"`+noisy+`","name":"order.created","payload":{"id":"p"}}`)); r.status != http.StatusTooManyRequests {
		t.Fatalf("platform token for the limited tenant: %d %s", r.status, r.body)
	}
}
