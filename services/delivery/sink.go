package delivery

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// Record is one Kafka record of a tenant topic, decoded, that passed the
// integration's filter and must reach its target.
type Record struct {
	Event     *eventspb.Event
	Partition int32
	Offset    int64
	// Timestamp is the Kafka record timestamp (when ingest appended it).
	Timestamp time.Time

	// part is the partition assignment the record came from, so a Done after
	// the partition was revoked (and perhaps assigned again) never moves the
	// new assignment's offsets. Records built outside the core have none and
	// their Done is ignored.
	part *partState
	// trace is the span context ingest propagated in the record headers.
	trace trace.SpanContext
}

// TraceContext is the span context ingest propagated with the record (the
// publish request's trace); invalid when it carried none.
func (r *Record) TraceContext() trace.SpanContext { return r.trace }

// SameAssignment reports whether r and o come from the same partition
// under the same assignment. A sink holding many records (a file's worth)
// may keep one of them and the others' offsets only, and for Done rebuild
// each record as a copy of the kept one with its Offset set: Done reads only
// the assignment and the offset.
func (r *Record) SameAssignment(o *Record) bool {
	return r.part == o.part && r.Partition == o.Partition
}

// AttemptWriter takes attempt rows for batched storage. Write blocks when the
// writer's queue is full (backpressure on delivery, never loss) and returns an
// error only when ctx ends or the writer is closed.
//
// WriteThen also calls after once the rows are durable (stored: true) or the
// writer stopped without storing them (false); after is never called when
// WriteThen returns an error. A final outcome's record is marked Done only
// from after(true), so no offset is committed ahead of its attempt row: a
// worker killed at any moment loses no attempt record of a committed event.
type AttemptWriter interface {
	Write(ctx context.Context, attempts ...catalog.Attempt) error
	WriteThen(ctx context.Context, after func(stored bool), attempts ...catalog.Attempt) error
}

// LogWriter appends integration log entries (retry_triggered, ...).
type LogWriter interface {
	AddLog(ctx context.Context, tenant, id, action, reason string) error
}

// SinkEnv is what the consumer core hands a sink for one run of one integration.
type SinkEnv struct {
	Integration *catalog.Integration
	// Done marks records final (delivered, rejected and stored, or written to a
	// completed S3 object). Only Done records' offsets are ever committed,
	// per partition, contiguous from the oldest. Safe for concurrent use.
	Done func(recs ...*Record)
	// Interrupt stops the integration: the core stops consuming, commits what is
	// Done, sets the integration stopped and writes reason to its log with the
	// integration_stopped action. Records not Done are redelivered on _start.
	// Safe for concurrent use; only the first call counts. cause classifies
	// the stop for the stops metric; reason is what the user reads.
	Interrupt func(cause StopCause, reason string)
	Attempts  AttemptWriter
	Logs      LogWriter
}

// StopCause is why the worker stopped an integration: a small fixed set, the
// reason label of eventstream_delivery_integration_stops_total (the free-text
// reason goes to the integration's log).
type StopCause string

const (
	// StopRetriesExhausted: an attempt failed MaxRetries more times.
	StopRetriesExhausted StopCause = "retries_exhausted"
	// StopRejectedFull: the endpoint rejected an event and the integration
	// already holds the most rejected events it may.
	StopRejectedFull StopCause = "rejected_full"
	// StopUnstorable: a rejected event could not be stored.
	StopUnstorable StopCause = "unstorable"
	// StopAddressRefused: the endpoint's address is not allowed (SSRF guard).
	StopAddressRefused StopCause = "address_refused"
	// StopS3Failed: S3 requests kept failing, or an upload was lost.
	StopS3Failed StopCause = "s3_failed"
	// StopCompleted: a temporary integration delivered its whole window.
	StopCompleted StopCause = "completed"
)

// Sink delivers one integration's records to its target. The core calls
// Deliver from one goroutine per assigned partition.
type Sink interface {
	// Deliver hands r to the sink. It may block while the sink is at capacity
	// (backpressure); it returns an error only when ctx ended or the sink was
	// interrupted, and then r is not Done.
	//
	// ctx is also the record's lifetime: it ends when the record's partition
	// is revoked or the integration stops. A sink may then abandon r (never
	// making it Done: it is redelivered by whoever consumes the partition
	// next) instead of starting new work for it; work already in progress
	// (an HTTP request, an upload) may finish.
	Deliver(ctx context.Context, r *Record) error
	// Flush finishes everything handed over so far: when it returns, every
	// delivered record is Done, abandoned (its Deliver ctx ended), or the sink
	// was interrupted. The core calls it, with a bounded ctx, before
	// committing on partition revocation and on shutdown; it returns ctx's
	// error if the bound passes first.
	Flush(ctx context.Context) error
	// Close releases resources (aborting uploads that will not complete). Records
	// not Done by then will be redelivered.
	Close(ctx context.Context) error
}

// NewSinkFunc builds the sink of one run of one integration. The consumer
// core calls it when it starts the integration's consumer and Closes the sink
// when the run ends. Register one per target with WithSink; the webhook sink
// is built in.
type NewSinkFunc func(ctx context.Context, env SinkEnv) (Sink, error)
