package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// Why a consumer run ends (the cause of its context).
var (
	// errStopRequested: the integration stopped, was deleted or changed. No
	// new attempt starts; in-flight ones finish and are committed.
	errStopRequested = errors.New("integration stopped")
	// errShutdown: the worker is shutting down. In-flight work is drained
	// (bounded by DrainTimeout) and committed, to keep duplicates low.
	errShutdown = errors.New("worker shutting down")
	// errInterrupted: the sink gave up (retries exhausted, rejected events
	// full). Like a stop, then the integration is set stopped.
	errInterrupted = errors.New("integration interrupted")
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
)

// groupName is the consumer group of one registration of an integration.
// The generation changes when an id is deleted and registered again, the
// epoch when offsets are reset after a long stop.
func groupName(tenant, id string, generation int64, epoch int) string {
	g := fmt.Sprintf("eventstream.%s.%s.%d", tenant, id, generation)
	if epoch > 0 {
		g += fmt.Sprintf(".%d", epoch)
	}
	return g
}

// consumer runs one integration: a franz-go group consumer feeding a sink,
// one feeder goroutine per assigned partition, committing per partition the
// offsets below the oldest record without a final outcome.
type consumer struct {
	svc    *Service
	in     *catalog.Integration
	state  catalog.DeliveryState
	group  string
	topic  string
	filter events.Filter
	log    *slog.Logger
	// Window of record timestamps delivered (ms; 0 = unbounded).
	fromMs, toMs int64

	cl   *kgo.Client
	sink Sink

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}

	// confirmed is when (unix ns) the newest catalog read saying "running"
	// started; attempts start only while it is fresh (the stop bound).
	confirmed atomic.Int64
	confirmMu sync.Mutex
	confirmCh chan struct{}

	interruptOnce   sync.Once
	interruptReason string

	// mu guards parts and serialises commits with revocations, so nothing
	// is committed for a partition after it was released.
	mu    sync.Mutex
	parts map[int32]*partState
	room  chan struct{} // cap 1: a buffer got room (see waitForRoom)

	completion *completion // temporary integrations
}

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

func newConsumer(svc *Service, in *catalog.Integration, st catalog.DeliveryState) *consumer {
	c := &consumer{
		svc: svc, in: in, state: st,
		group:     groupName(in.Tenant, in.ID, in.Generation, st.GroupEpoch),
		topic:     events.TopicName(in.Tenant),
		filter:    events.NewFilter(in.EventFilter, in.EntityFilter),
		done:      make(chan struct{}),
		confirmCh: make(chan struct{}),
		parts:     map[int32]*partState{},
		room:      make(chan struct{}, 1),
	}
	c.log = svc.log.With("tenant", in.Tenant, "integration", in.ID, "group", c.group)
	c.fromMs = c.startTime().UnixMilli()
	if in.Type == catalog.TypeTemporary && in.EndsAt != nil {
		c.toMs = in.EndsAt.UnixMilli()
		c.completion = &completion{}
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	return c
}

// startTime is where the integration's stream begins: the restart after a
// long stop (a reset group), else starts_at (a replay), else the
// registration (events published from registration on, even those published
// before the consumer first joins), both less the ClockSkew allowance.
// Records stamped earlier are never delivered.
func (c *consumer) startTime() time.Time {
	switch {
	case c.state.OffsetsResetAt != nil && c.state.GroupEpoch > 0:
		return c.state.OffsetsResetAt.Add(-c.svc.cfg.ClockSkew)
	case c.in.StartsAt != nil:
		return *c.in.StartsAt
	}
	return c.in.CreatedAt.Add(-c.svc.cfg.ClockSkew)
}

// adjustStart places partitions the group never committed at the first
// record stamped at or after startTime.
//
// franz-go's AfterMilli offset does this too, but when no such record exists
// yet it lists the end offset concurrently with the by-time lookup, so a
// record appended in between is skipped: exactly the live edge a new
// integration starts at. Here the end offset is listed first; with no
// record at or after the start time by then, the partition starts at that
// earlier end, and records stamped before the start time are skipped by the
// feeder.
func (c *consumer) adjustStart(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := offsets[c.topic]
	if len(parts) == 0 {
		return offsets, nil
	}
	committed, err := c.svc.adm.FetchOffsets(ctx, c.group)
	if err != nil {
		return nil, fmt.Errorf("fetching committed offsets: %w", err)
	}
	var fresh []int32
	for p := range parts {
		if o, ok := committed.Lookup(c.topic, p); !ok || o.Err != nil || o.At < 0 {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return offsets, nil
	}
	ends, err := c.svc.adm.ListEndOffsets(ctx, c.topic)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	byTime, err := c.svc.adm.ListOffsetsAfterMilli(ctx, c.fromMs, c.topic)
	if err != nil {
		return nil, fmt.Errorf("listing offsets by time: %w", err)
	}
	for _, p := range fresh {
		e, ok1 := ends.Lookup(c.topic, p)
		t, ok2 := byTime.Lookup(c.topic, p)
		if !ok1 || !ok2 || e.Err != nil || t.Err != nil {
			return nil, fmt.Errorf("listing start offset of partition %d: missing or failed", p)
		}
		start := e.Offset
		if t.Offset >= 0 && t.Offset < start {
			start = t.Offset
		}
		parts[p] = kgo.NewOffset().At(start)
	}
	return offsets, nil
}

// confirm records that a catalog read started at t saw the integration running.
func (c *consumer) confirm(t time.Time) {
	for {
		old := c.confirmed.Load()
		if t.UnixNano() <= old || c.confirmed.CompareAndSwap(old, t.UnixNano()) {
			break
		}
	}
	c.confirmMu.Lock()
	close(c.confirmCh)
	c.confirmCh = make(chan struct{})
	c.confirmMu.Unlock()
}

// gate waits until the integration was confirmed running less than
// StopPropagation ago.
func (c *consumer) gate(ctx context.Context) error {
	for {
		if time.Since(time.Unix(0, c.confirmed.Load())) < c.svc.cfg.StopPropagation {
			return nil
		}
		c.confirmMu.Lock()
		ch := c.confirmCh
		c.confirmMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop ends the run with cause; the first cause wins.
func (c *consumer) stop(cause error) { c.cancel(cause) }

func (c *consumer) interrupt(reason string) {
	c.interruptOnce.Do(func() {
		c.interruptReason = reason
		c.cancel(errInterrupted)
	})
}

// done marks records final.
func (c *consumer) markDone(recs ...*Record) {
	for _, r := range recs {
		if p := r.part; p != nil && p.c == c && !p.released.Load() {
			p.tr.done(r.Offset)
		}
	}
}

// run is the consumer's life: build the sink and the client, poll until the
// run ends, then release every partition (drain, commit) and leave the group.
func (c *consumer) run() error {
	defer close(c.done)
	sink, err := c.svc.newSink(c.ctx, c)
	if err != nil {
		return fmt.Errorf("building sink: %w", err)
	}
	c.sink = sink
	cfg := c.svc.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		// The pool in the client id shows in broker logs and group
		// descriptions which pool's worker holds a partition.
		kgo.ClientID("eventstream-delivery." + cfg.Pool),
		kgo.ConsumerGroup(c.group),
		kgo.ConsumeTopics(c.topic),
		// We commit ourselves, only offsets whose records have a final
		// outcome; autocommit would commit what was merely polled.
		kgo.DisableAutoCommit(),
		// Assignments and revocations happen only between our polls, never
		// while a poll's records are being handed to the partitions, so a
		// record is never dispatched to an assignment it does not belong to.
		// Dispatch never blocks (partition buffers pause fetching instead),
		// so rebalances are not held up.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		// Revocation drains and commits what the partition finished before
		// giving it up; a loss (fatal group error) commits nothing.
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			c.release(m[c.topic], true, false)
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			c.release(m[c.topic], false, true)
		}),
		// A partition the group never committed starts at the
		// integration's start time (seek by timestamp, see adjustStart);
		// an out-of-range offset resets to the same place.
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(c.fromMs)),
		kgo.AdjustFetchOffsetsFn(c.adjustStart),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/3)),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		// Idle partitions are re-polled at least this often; new records
		// are returned as soon as they arrive regardless.
		kgo.FetchMaxWait(time.Second),
		// Bounds the one fetch response per broker buffered ahead of polls.
		kgo.FetchMaxBytes(fetchMaxBytes),
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		_ = sink.Close(context.Background())
		return fmt.Errorf("creating kafka client: %w", err)
	}
	c.cl = cl

	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); c.commitLoop() }()
	c.poll()

	cause := context.Cause(c.ctx)
	if errors.Is(cause, errInterrupted) {
		// Set it stopped first, so the pool's other workers stop too.
		c.persistInterrupt()
	}
	c.mu.Lock()
	all := make([]int32, 0, len(c.parts))
	for p := range c.parts {
		all = append(all, p)
	}
	c.mu.Unlock()
	c.release(all, true, !errors.Is(cause, errShutdown))
	bg.Wait()
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := sink.Close(closeCtx); err != nil {
		c.log.Warn("closing sink", "err", err)
	}
	// Leaving the group runs OnPartitionsRevoked again, with nothing left
	// to release.
	cl.CloseAllowingRebalance()
	return nil
}

// poll fetches records and hands each partition's to its feeder until the
// run ends.
func (c *consumer) poll() {
	for {
		if !c.waitForRoom() {
			return
		}
		fetches := c.cl.PollRecords(c.ctx, maxPollRecords)
		if c.ctx.Err() != nil || fetches.IsClientClosed() {
			c.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("fetching", "partition", p, "err", err)
			}
		})
		c.mu.Lock()
		fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if ps := c.parts[ftp.Partition]; ps != nil && len(ftp.Records) > 0 {
				ps.highWater.Store(ftp.HighWatermark)
				ps.push(ftp.Records)
			}
		})
		c.mu.Unlock()
		c.cl.AllowRebalance()
	}
}

func (c *consumer) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.topic] {
		if old := c.parts[p]; old != nil {
			continue // already ours (cooperative rebalancing keeps it)
		}
		ctx, cancel := context.WithCancel(c.ctx)
		ps := &partState{c: c, p: p, ctx: ctx, cancel: cancel, quit: make(chan struct{}),
			exited: make(chan struct{}), tr: newTracker(), wake: make(chan struct{}, 1), committed: -1,
			releaseDone: make(chan struct{})}
		ps.firstOffset.Store(-1)
		c.parts[p] = ps
		go ps.feed()
	}
}

// release gives up partitions: stop feeding them, let the sink finish what
// it holds (bounded; right away when abandon is set, so no new attempt
// starts), commit their finished offsets when commit is set, and forget
// them: nothing is committed for them afterwards.
func (c *consumer) release(partitions []int32, commit, abandon bool) {
	var list, others []*partState
	c.mu.Lock()
	for _, p := range partitions {
		ps := c.parts[p]
		switch {
		case ps == nil || ps.released.Load():
		case ps.releasing:
			others = append(others, ps)
		default:
			ps.releasing = true
			list = append(list, ps)
		}
	}
	c.mu.Unlock()
	defer func() {
		for _, ps := range list {
			close(ps.releaseDone)
		}
		// Return only once every named partition is given up, whoever did it.
		for _, ps := range others {
			<-ps.releaseDone
		}
	}()
	if len(list) == 0 {
		return
	}
	bound := min(c.svc.cfg.DrainTimeout, c.svc.cfg.RebalanceTimeout/2)
	deadline := time.Now().Add(bound)
	for _, ps := range list {
		close(ps.quit)
		if abandon {
			ps.cancel()
		}
	}
	for _, ps := range list {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ps.exited:
		case <-t.C:
			ps.cancel() // a feeder stuck in Deliver gives up its record
			<-ps.exited
		}
		t.Stop()
	}
	if commit {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if err := c.sink.Flush(ctx); err != nil && !errors.Is(err, errSinkStopped) {
			c.log.Info("releasing partitions before the sink finished", "err", err)
		}
		cancel()
	}
	for _, ps := range list {
		ps.cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if commit {
		c.commitLocked(list)
	}
	resume := map[string][]int32{}
	for _, ps := range list {
		ps.released.Store(true)
		delete(c.parts, ps.p)
		resume[c.topic] = append(resume[c.topic], ps.p)
	}
	// A finished temporary partition's pause would outlive the assignment.
	c.cl.ResumeFetchPartitions(resume)
	c.signalRoom()
}

// commitLoop commits finished offsets every CommitInterval and checks a
// temporary integration's completion.
func (c *consumer) commitLoop() {
	t := time.NewTicker(c.svc.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		list := make([]*partState, 0, len(c.parts))
		for _, ps := range c.parts {
			list = append(list, ps)
		}
		c.commitLocked(list)
		c.mu.Unlock()
		if c.completion != nil {
			c.checkCompletion()
		}
	}
}

// commitLocked commits, for each partition still held, the offset below its
// oldest record without a final outcome. Holding c.mu keeps release from
// running concurrently, so no commit follows a revocation.
func (c *consumer) commitLocked(list []*partState) {
	offsets := map[int32]kgo.EpochOffset{}
	for _, ps := range list {
		if ps.released.Load() {
			continue
		}
		if at := ps.tr.commitPoint(); at > ps.committed {
			offsets[ps.p] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
	}
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var commitErr error
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				commitErr = err
				clear(offsets)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						commitErr = err
						delete(offsets, p.Partition)
					}
				}
			}
		})
	if commitErr != nil {
		c.log.Warn("committing offsets", "err", commitErr)
	}
	for _, ps := range list {
		if o, ok := offsets[ps.p]; ok {
			ps.committed = o.Offset
		}
	}
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
		ps.tr.add(kr.Offset)
		ps.firstOffset.CompareAndSwap(-1, kr.Offset)
		ts := kr.Timestamp.UnixMilli()
		if c.fromMs > 0 && ts < c.fromMs {
			ps.tr.done(kr.Offset)
			continue
		}
		if c.toMs > 0 && ts > c.toMs {
			// The temporary window ended on this partition: everything
			// from here on is outside it.
			ps.tr.done(kr.Offset)
			ps.finish()
			continue
		}
		ev, err := kafka.DecodeRecord(kr)
		if err != nil {
			c.log.Error("skipping undecodable record", "partition", kr.Partition, "offset", kr.Offset, "err", err)
			ps.tr.done(kr.Offset)
			continue
		}
		if !c.filter.Match(ev.GetName(), ev.GetEntityType()) {
			ps.tr.done(kr.Offset)
			continue
		}
		r := &Record{Event: ev, Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp, part: ps,
			trace: trace.SpanContextFromContext(kafka.TraceContext(context.Background(), kr))}
		if err := c.sink.Deliver(ps.ctx, r); err != nil {
			return
		}
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

// persistInterrupt sets the integration stopped with the sink's reason,
// retrying while the catalog is unreachable (until the worker shuts down).
func (c *consumer) persistInterrupt() {
	c.log.Warn("integration interrupted", "reason", c.interruptReason)
	c.setStopped(catalog.ActionStopped, c.interruptReason)
}

func (c *consumer) setStopped(action, reason string) {
	backoff := 100 * time.Millisecond
	for {
		// The first try also runs during shutdown (bounded), so an interrupt
		// found while draining is still recorded.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.svc.ctx), 5*time.Second)
		_, err := c.svc.store.SetStatus(ctx, c.in.Tenant, c.in.ID, catalog.StatusStopped, action, reason)
		cancel()
		if err == nil || errors.Is(err, catalog.ErrNotFound) || c.svc.ctx.Err() != nil {
			if err != nil && !errors.Is(err, catalog.ErrNotFound) {
				c.log.Warn("setting integration stopped", "err", err)
			}
			return
		}
		c.log.Warn("setting integration stopped", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.svc.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
