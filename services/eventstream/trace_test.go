package eventstream_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/ingest"
)

// TestOneTraceFromIngestToAttempt (issue 10, section 5): a publish through
// the real ingest handler, with no trace context from the caller, starts a
// trace; the record carries it through Kafka; the delivery worker's attempt
// span continues it, and so does the endpoint (traceparent). Spans are
// recorded in memory.
func TestOneTraceFromIngestToAttempt(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})

	ctx := context.Background()
	store, db := testenv.NewStore(t)
	brokers := testenv.NewKafka(t, kfake.GroupMinSessionTimeout(100*time.Millisecond)).ListenAddrs()
	const tenant, secret = "tracer", "trace-test-secret-0123456789abcdef"
	if err := store.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewProducer(brokers, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	if err := kafka.EnsureTopic(ctx, kadm.NewClient(producer), events.TopicName(tenant), 1, 1, kafka.DefaultRetention); err != nil {
		t.Fatal(err)
	}

	// The endpoint records the traceparent it is sent.
	var mu sync.Mutex
	var got []string
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	t.Cleanup(endpoint.Close)
	if err := store.CreateIntegration(ctx, &catalog.Integration{Tenant: tenant, ID: "traced", Type: catalog.TypePermanent,
		Webhook: &catalog.Webhook{CallbackURL: endpoint.URL + "/hook"}}, 10); err != nil {
		t.Fatal(err)
	}

	verifier, err := auth.NewVerifier(ctx, auth.Config{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{Brokers: brokers, Auth: auth.Config{HS256Secret: secret}}, producer, store, verifier)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(in.Handler())
	t.Cleanup(api.Close)
	svc, err := delivery.New(delivery.Config{Brokers: brokers, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		SessionTimeout: 3 * time.Second, CommitInterval: 50 * time.Millisecond, DrainTimeout: 2 * time.Second}, store, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, "delivery", svc.Run)

	token, err := auth.Mint(secret, tenant, []string{auth.ScopeEventsPublish}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"name":"order.created","published_at":"2024-03-01T10:00:00Z","idempotency_key":"k-1","payload":{"id":"order-1"}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/v1/events", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	testenv.WaitFor(t, 30*time.Second, "the delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})

	// The ingest request's server span is the root of the trace.
	var root sdktrace.ReadOnlySpan
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	testenv.WaitFor(t, 10*time.Second, "the attempt span to end", func() bool {
		root = nil
		var attempt bool
		for _, s := range rec.Ended() {
			byID[s.SpanContext().SpanID()] = s
			if s.Name() == "POST /v1/events" && s.SpanKind() == trace.SpanKindServer {
				root = s
			}
			attempt = attempt || s.Name() == "webhook.deliver"
		}
		return root != nil && attempt
	})
	if root.Parent().IsValid() {
		t.Fatalf("the ingest span has a parent %v; the caller sent no trace context", root.Parent())
	}
	traceID := root.SpanContext().TraceID()
	attempts := 0
	for _, s := range rec.Ended() {
		if s.Name() != "webhook.deliver" {
			continue
		}
		attempts++
		if s.SpanContext().TraceID() != traceID || s.SpanKind() != trace.SpanKindClient {
			t.Fatalf("attempt span in trace %s (kind %s), want the ingest request's trace %s", s.SpanContext().TraceID(), s.SpanKind(), traceID)
		}
		// Up the parents from the attempt, through whatever ingest recorded
		// around the produce, to the request.
		p := s.Parent()
		for hops := 0; p.IsValid() && p.SpanID() != root.SpanContext().SpanID() && hops < 10; hops++ {
			parent, ok := byID[p.SpanID()]
			if !ok {
				t.Fatalf("attempt span's ancestor %s was not recorded", p.SpanID())
			}
			p = parent.Parent()
		}
		if p.SpanID() != root.SpanContext().SpanID() {
			t.Fatalf("the attempt span does not descend from the ingest request's span")
		}
	}
	if attempts != 1 {
		t.Fatalf("%d attempt spans, want 1", attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(got[0], traceID.String()) {
		t.Fatalf("the endpoint got traceparent %q, not the trace %s", got[0], traceID)
	}
}
