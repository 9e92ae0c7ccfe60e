package delivery

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// Partition buffer bounds: while some partition holds partHigh records or
// partHighBytes of record values waiting for the sink, the consumer does not
// poll. franz-go buffers at most one fetch response per broker ahead of
// polls (bounded by fetchMaxBytes), so memory stays bounded whatever the
// event sizes. (Pausing single partitions instead would add up to a whole
// fetch wait of latency on every resume.)
const (
	partHigh       = 1000
	partHighBytes  = 8 << 20
	maxPollRecords = 1000
	fetchMaxBytes  = 16 << 20
	// fetchMaxWait: see the consumer's kgo options.
	fetchMaxWait = 5 * time.Second
)

// partState is one partition assignment: its feeder and offsets.
type partState struct {
	c *consumer
	p int32
	// ctx is the lifetime of the assignment's records (Deliver's ctx).
	ctx    context.Context
	cancel context.CancelFunc
	quit   chan struct{}
	exited chan struct{}
	tr     *tracker

	mu       sync.Mutex
	buf      []*kgo.Record
	bufBytes int
	wake     chan struct{} // cap 1
	finished bool          // a temporary integration's window ended here

	released  atomic.Bool
	committed int64 // guarded by c.mu
	// releasing (guarded by c.mu) is set by the release that owns giving
	// the partition up; releaseDone closes when it has. A concurrent
	// release (a revocation racing the shutdown) waits for it.
	releasing   bool
	releaseDone chan struct{}

	// For the lag gauge: the partition's high watermark at the last fetch
	// and the first offset this assignment saw.
	highWater   atomic.Int64
	firstOffset atomic.Int64
}

// push appends polled records to the partition's buffer, pausing the
// push appends polled records to the partition's buffer.
func (ps *partState) push(recs []*kgo.Record) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.finished {
		return
	}
	ps.buf = append(ps.buf, recs...)
	for _, r := range recs {
		ps.bufBytes += len(r.Value)
	}
	select {
	case ps.wake <- struct{}{}:
	default:
	}
}

// next returns the next buffered record, waiting for one; nil when the
// partition is being released.
func (ps *partState) next() *kgo.Record {
	for {
		ps.mu.Lock()
		if len(ps.buf) > 0 {
			r := ps.buf[0]
			ps.buf[0] = nil
			ps.buf = ps.buf[1:]
			ps.bufBytes -= len(r.Value)
			if len(ps.buf) < partHigh && ps.bufBytes < partHighBytes {
				ps.c.signalRoom()
			}
			ps.mu.Unlock()
			select {
			case <-ps.quit:
				return nil
			default:
			}
			return r
		}
		ps.mu.Unlock()
		select {
		case <-ps.wake:
		case <-ps.quit:
			return nil
		}
	}
}

// feed hands the partition's records to the sink in offset order. Records
// the integration does not want (filters, outside its time window,
// undecodable) are final at once.
func (ps *partState) feed() {
	defer close(ps.exited)
	c := ps.c
	for {
		kr := ps.next()
		if kr == nil {
			return
		}
		ps.tr.add(kr.Offset, kr.Timestamp)
		ps.firstOffset.CompareAndSwap(-1, kr.Offset)
		ts := kr.Timestamp.UnixMilli()
		if c.fromMs > 0 && ts < c.fromMs {
			ps.done(kr.Offset)
			continue
		}
		if c.toMs > 0 && ts > c.toMs {
			// Outside a temporary window. Records are filtered one by one:
			// ingest hosts' clocks differ, so an in-window record may follow
			// a later-stamped one. Only past the clock-skew allowance is the
			// window over on this partition.
			ps.done(kr.Offset)
			if ts > c.toMs+c.deps.cfg.ClockSkew.Milliseconds() {
				ps.finish()
			}
			continue
		}
		ev, err := kafka.DecodeRecord(kr)
		if err != nil {
			c.undecodable(ps, kr, err)
			continue
		}
		if !c.filter.Match(ev.GetName(), ev.GetEntityType()) {
			ps.done(kr.Offset)
			continue
		}
		r := &Record{Event: ev, Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp, part: ps,
			trace: trace.SpanContextFromContext(kafka.TraceContext(context.Background(), kr))}
		if err := c.sink.Deliver(ps.ctx, r); err != nil {
			return
		}
	}
}

// done makes the record at offset final and wakes the commit loop.
func (ps *partState) done(offset int64) {
	ps.tr.done(offset)
	select {
	case ps.c.finalized <- struct{}{}:
	default:
	}
}

// finish stops fetching a partition whose temporary window has ended.
func (ps *partState) finish() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.finished {
		return
	}
	ps.finished = true
	ps.buf, ps.bufBytes = nil, 0
	ps.c.cl.PauseFetchPartitions(map[string][]int32{ps.c.topic: {ps.p}})
	ps.c.signalRoom()
}

// full reports whether the partition's buffer is at its bound.
func (ps *partState) full() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.buf) >= partHigh || ps.bufBytes >= partHighBytes
}

// waitForRoom waits until no partition buffer is at its bound; false when
// the run ended.
func (c *consumer) waitForRoom() bool {
	for {
		c.mu.Lock()
		full := false
		for _, ps := range c.parts {
			if ps.full() {
				full = true
				break
			}
		}
		c.mu.Unlock()
		if !full {
			return c.ctx.Err() == nil
		}
		select {
		case <-c.room:
		case <-c.ctx.Done():
			return false
		}
	}
}

// signalRoom wakes the poll loop if it waits for buffer room.
func (c *consumer) signalRoom() {
	select {
	case c.room <- struct{}{}:
	default:
	}
}

// undecodable records a record nobody can read as a FAILURE attempt (under
// an id derived from its position, so a redelivery writes the same id), counts
// and logs it, and makes it Done once the row is durable: it is never skipped
// silently, and never blocks the partition.
func (c *consumer) undecodable(ps *partState, kr *kgo.Record, err error) {
	where := fmt.Sprintf("%s/%d/%d", kr.Topic, kr.Partition, kr.Offset)
	workerMetrics().undecodable.Add(context.Background(), 1)
	c.log.Error("undecodable record: recorded as a failed attempt and skipped", "partition", kr.Partition, "offset", kr.Offset, "err", err)
	row := catalog.Attempt{
		Tenant: c.in.Tenant, IntegrationID: c.in.ID, IntegrationType: c.in.Type, Target: c.in.Target(),
		Status: catalog.AttemptFailure, AttemptedAt: time.Now(), RetriesRemaining: 0,
		EventID:   events.EventID(c.in.Tenant, "undecodable", where).String(),
		EventName: "undecodable", DomainEntityType: "unknown", DomainEntityID: where,
		ResponseBody: fmt.Sprintf("The record at partition %d, offset %d could not be decoded and was skipped: %v", kr.Partition, kr.Offset, err),
	}
	offset := kr.Offset
	werr := c.deps.attempts.WriteThen(c.ctx, func(stored bool) {
		if stored && !ps.released.Load() {
			ps.done(offset)
		}
	}, row)
	if werr != nil {
		c.log.Warn("recording an undecodable record", "offset", kr.Offset, "err", werr)
	}
}
