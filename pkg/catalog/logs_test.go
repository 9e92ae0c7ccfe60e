package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/testenv"
)

func registerWebhook(t *testing.T, s *catalog.Store, tenant, id string) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	in := &catalog.Integration{Tenant: tenant, ID: id, Type: catalog.TypePermanent,
		Webhook: &catalog.Webhook{CallbackURL: "https://example.com/hook"}}
	if err := s.CreateIntegration(ctx, in, 10); err != nil {
		t.Fatal(err)
	}
}

// A retry storm neither grows the log without end nor hides what happened:
// repeats of one reason count into one entry, and old entries are pruned.
func TestRetryLogsCoalesceAndPrune(t *testing.T) {
	ctx := context.Background()
	s, db := testenv.NewStore(t)
	registerWebhook(t, s, "acme", "erp-1")
	for range 500 {
		if err := s.AddLog(ctx, "acme", "erp-1", catalog.ActionRetry, "Request to URL https://example.com/hook failed. Reason: (HTTP status code 503)"); err != nil {
			t.Fatal(err)
		}
	}
	logs, err := s.ListLogs(ctx, "acme", "erp-1", catalog.LogLimit)
	if err != nil {
		t.Fatal(err)
	}
	// The registration entry and one coalesced retry entry.
	if len(logs) != 2 || logs[0].Repeats != 500 || !strings.Contains(logs[0].Text(), "(500 times, the last at ") {
		t.Fatalf("logs after 500 identical retries: %+v", logs)
	}
	// Distinct reasons are distinct entries, but the table keeps a bounded tail.
	for i := range 300 {
		if err := s.AddLog(ctx, "acme", "erp-1", catalog.ActionRetry, fmt.Sprintf("reason %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM integration_logs WHERE tenant = 'acme' AND integration_id = 'erp-1'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 2*catalog.LogLimit || n < catalog.LogLimit {
		t.Fatalf("%d log rows kept after 300 distinct entries, want between %d and %d", n, catalog.LogLimit, 2*catalog.LogLimit)
	}
	logs, err = s.ListLogs(ctx, "acme", "erp-1", catalog.LogLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != catalog.LogLimit || logs[0].Reason != "reason 299" {
		t.Fatalf("newest entries after pruning: %d, first %q", len(logs), logs[0].Reason)
	}
}

func TestHostileLogReasonsAndRejectedEventsAreStoredSafely(t *testing.T) {
	ctx := context.Background()
	s, _ := testenv.NewStore(t)
	registerWebhook(t, s, "acme", "erp-1")
	if err := s.AddLog(ctx, "acme", "erp-1", catalog.ActionRetry, "Reason: \x00\xff"+strings.Repeat("€", 2000)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(ctx, "acme", "erp-1", catalog.StatusStopped, catalog.ActionStopped, "Stopped: \x00 bad \xc3"); err != nil {
		t.Fatal(err)
	}
	logs, err := s.ListLogs(ctx, "acme", "erp-1", catalog.LogLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		if !utf8.ValidString(l.Reason) || strings.ContainsRune(l.Reason, 0) {
			t.Fatalf("log reason %q is not valid UTF-8 without NUL", l.Reason)
		}
	}
	// The payload's JSON \u0000 and a NUL in the payload-derived id: the body
	// comes back byte for byte, the id made safe.
	body := []byte(`{"tenant":"acme","name":"order.created","published_at":"2026-01-01T00:00:00.000Z","payload":{"id":"o\u0000x","note":"\u0000"}}`)
	e := catalog.RejectedEvent{Tenant: "acme", IntegrationID: "erp-1", EventID: "7d6e7bd5-6b0b-5a8e-9a3c-000000000001",
		EventName: "order.created", IdempotencyKey: "k\x00", DomainEntityID: "o\x00x", Body: body,
		ResponseCode: 400, ResponseBody: "bad \x00 request \xff"}
	if err := s.AddRejected(ctx, e); err != nil {
		t.Fatalf("storing a rejected event with hostile texts: %v", err)
	}
	got, err := s.GetRejected(ctx, "acme", "erp-1", e.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(body) {
		t.Fatalf("rejected body changed:\n got %s\nwant %s", got.Body, body)
	}
	if got.DomainEntityID != "o\uFFFDx" || got.ResponseBody != "bad \uFFFD request \uFFFD" {
		t.Fatalf("texts stored as %q, %q", got.DomainEntityID, got.ResponseBody)
	}
}
