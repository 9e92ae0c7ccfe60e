package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventstream/eventstream/pkg/testenv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// TestTraceContinuesFromIngestToEndpoint checks that a delivery attempt joins
// the trace the record carried (the ingest request's), and the endpoint can
// continue it.
func TestTraceContinuesFromIngestToEndpoint(t *testing.T) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	tp := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})

	e := newEnv(t, 1)
	rcv := newReceiver(t, nil)
	e.register("erp-1", catalog.Webhook{CallbackURL: rcv.url()}, nil)
	e.startWorker(e.config())

	ctx, span := tp.Tracer("ingest").Start(context.Background(), "POST /v1/events")
	ev := e.event("order.created", 1, time.Now())
	r, err := kafka.EncodeRecord(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	span.End()
	if err := e.cl.ProduceSync(context.Background(), []*kgo.Record{r}...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "delivery", func() bool { return rcv.delivered() == 1 })
	got := rcv.requests()[0].header.Get("traceparent")
	traceID := span.SpanContext().TraceID().String()
	if !strings.Contains(got, traceID) {
		t.Fatalf("endpoint got traceparent %q, want trace %s", got, traceID)
	}
	if strings.Contains(got, span.SpanContext().SpanID().String()) {
		t.Fatalf("traceparent %q names the ingest span itself, not the delivery attempt's", got)
	}
}
