package s3sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/testenv"
)

// A publish request's trace leads to the S3 file holding its event: the
// file's span is in the trace of its first event's request and links to the
// others'.
func TestTraceLeadsFromPublishToTheFile(t *testing.T) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})

	w := newWorld(t)
	w.startWorker(w.s3Config())
	w.register("s3-traced", catalog.S3Target{AccessKeyID: "k", SecretAccessKey: "s", Region: "eu-west-1", Bucket: "e2e-traced"}, nil)

	// Three publish requests, each its own trace, one event each.
	evs := w.produce(3, 10, "order.created") // untraced records are fine too: they are just not linked
	var traces []trace.SpanContext
	var recs []*kgo.Record
	for _, ev := range evs {
		ctx, span := tp.Tracer("ingest").Start(context.Background(), "POST /v1/events")
		ev.IdempotencyKey += "-traced"
		ev.EventId = ev.EventId[:len(ev.EventId)-1] + "f"
		r, err := kafka.EncodeRecord(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		span.End()
		traces = append(traces, span.SpanContext())
		recs = append(recs, r)
	}
	if err := w.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ours := map[trace.TraceID]bool{}
	for _, sc := range traces {
		ours[sc.TraceID()] = true
	}
	testenv.WaitFor(t, 60*time.Second, "a file span in the publish requests' traces", func() bool {
		reached := map[trace.TraceID]bool{}
		for _, s := range rec.Ended() {
			if s.Name() != "s3.file" {
				continue
			}
			if ours[s.Parent().TraceID()] {
				reached[s.Parent().TraceID()] = true
			}
			for _, l := range s.Links() {
				if ours[l.SpanContext.TraceID()] {
					reached[l.SpanContext.TraceID()] = true
				}
			}
		}
		return len(reached) == len(ours)
	})
}
