package delivery

import (
	"context"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events/eventspb"
)

// Record is one Kafka record of a tenant topic, decoded, that passed the
// integration's filter and must reach its target.
type Record struct {
	Event     *eventspb.Event
	Partition int32
	Offset    int64
}

// AttemptWriter takes attempt rows for batched storage. Write blocks when the
// writer's queue is full (backpressure on delivery, never loss) and returns an
// error only when ctx ends or the writer is closed.
type AttemptWriter interface {
	Write(ctx context.Context, attempts ...catalog.Attempt) error
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
	// Safe for concurrent use; only the first call counts.
	Interrupt func(reason string)
	Attempts  AttemptWriter
	Logs      LogWriter
}

// Sink delivers one integration's records to its target. The core calls
// Deliver from one goroutine per assigned partition.
type Sink interface {
	// Deliver hands r to the sink. It may block while the sink is at capacity
	// (backpressure); it returns an error only when ctx ended or the sink was
	// interrupted, and then r is not Done.
	Deliver(ctx context.Context, r *Record) error
	// Flush finishes everything handed over so far: when it returns, every
	// delivered record is Done, or the sink was interrupted. The core calls it
	// before committing on partition revocation and on stop.
	Flush(ctx context.Context) error
	// Close releases resources (aborting uploads that will not complete). Records
	// not Done by then will be redelivered.
	Close(ctx context.Context) error
}
