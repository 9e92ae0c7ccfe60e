package s3sink

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instruments are the sink's metrics, on the global meter provider.
type instruments struct {
	files    metric.Int64Counter
	bytes    metric.Int64Counter
	events   metric.Int64Counter
	failures metric.Int64Counter
	age      metric.Float64Histogram
}

func newInstruments() (*instruments, error) {
	meter := otel.Meter("github.com/eventstream/eventstream/services/delivery/s3sink")
	var in instruments
	var err error
	if in.files, err = meter.Int64Counter("eventstream.delivery.s3.files",
		metric.WithDescription("S3 export files stored.")); err != nil {
		return nil, err
	}
	if in.bytes, err = meter.Int64Counter("eventstream.delivery.s3.bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes of S3 export files stored.")); err != nil {
		return nil, err
	}
	if in.events, err = meter.Int64Counter("eventstream.delivery.s3.events",
		metric.WithDescription("Events stored in S3 export files.")); err != nil {
		return nil, err
	}
	if in.failures, err = meter.Int64Counter("eventstream.delivery.s3.request_failures",
		metric.WithDescription("Failed S3 requests, by S3 error code (each is retried or stops the integration).")); err != nil {
		return nil, err
	}
	if in.age, err = meter.Float64Histogram("eventstream.delivery.s3.file_age", metric.WithUnit("s"),
		metric.WithDescription("How long an S3 export file was open (first event to completion) when it was stored."),
		metric.WithExplicitBucketBoundaries(1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)); err != nil {
		return nil, err
	}
	return &in, nil
}

func (s *Sink) recordStored(f *file) {
	attrs := metric.WithAttributes(attribute.String("tenant", s.in.Tenant))
	ctx := context.Background()
	s.metrics.files.Add(ctx, 1, attrs)
	s.metrics.bytes.Add(ctx, f.size, attrs)
	s.metrics.events.Add(ctx, int64(f.recs.n), attrs)
	s.metrics.age.Record(ctx, time.Since(f.started).Seconds(), attrs)
}

func (s *Sink) recordFailure(fl failure) {
	code := fl.code
	if code == "" {
		code = "none"
	}
	s.metrics.failures.Add(context.Background(), 1,
		metric.WithAttributes(attribute.String("tenant", s.in.Tenant), attribute.String("code", code)))
}

var tracer = otel.Tracer("github.com/eventstream/eventstream/services/delivery/s3sink")

// maxFileLinks bounds the links of a file's span: a 50 MiB file holds
// events of many publish requests.
const maxFileLinks = 64

// traceFile records the stored file as a span in the trace of its first
// event's publish request (from the file's start to its storing), linked to
// the traces of the other events' requests (up to maxFileLinks), so a
// publish request's trace leads to the file that holds its event.
func (s *Sink) traceFile(f *file, stored time.Time) {
	var parent trace.SpanContext
	var links []trace.Link
	for _, sc := range f.traces.list {
		if !parent.IsValid() {
			parent = sc
			continue
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	_, span := tracer.Start(ctx, "s3.file", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(f.started), trace.WithLinks(links...))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("eventstream.tenant", s.in.Tenant), attribute.String("eventstream.integration", s.in.ID),
			attribute.String("aws.s3.bucket", s.in.S3.Bucket), attribute.String("aws.s3.key", f.key),
			attribute.Int("eventstream.events", f.recs.n), attribute.Int64("eventstream.bytes", f.size))
	}
	span.End(trace.WithTimestamp(stored))
}
