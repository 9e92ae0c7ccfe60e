package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
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
	deps   consumerDeps
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
	confirmCh chan struct{} // closed by the next confirm; nil while no gate waits

	interruptOnce   sync.Once
	interruptCause  StopCause
	interruptReason string
	// unrecorded is a stop the catalog kept refusing (see setStopped); the
	// supervisor reads it after the run ended.
	unrecorded *unrecordedStop

	// mu guards parts and serialises commits with revocations, so nothing
	// is committed for a partition after it was released.
	mu    sync.Mutex
	parts map[int32]*partState
	room  chan struct{} // cap 1: a buffer got room (see waitForRoom)
	// finalized (cap 1) is signalled when a record became final: the
	// commit loop of an idle integration waits for it instead of ticking.
	finalized chan struct{}

	completion *completion // temporary integrations

	// committedOnce is set after the run's first successful commit;
	// markedCommitted once the catalog knows (see MarkOffsetsCommitted).
	committedOnce   atomic.Bool
	markedCommitted bool
}

// consumerDeps is what a consumer needs from the worker that runs it.
type consumerDeps struct {
	cfg Config
	adm *kadm.Client
	// status sets the integration stopped (interrupts, completion) and
	// keeps what the start-offset logic needs.
	status consumerCatalog
	// attempts records outcomes the core decides itself (undecodable records).
	attempts AttemptWriter
	// checkpoints receives the offsets committed to Kafka, copied to the
	// catalog in batches (nil: none kept).
	checkpoints *checkpoints
	newSink     func(ctx context.Context, c *consumer) (Sink, error)
	// life is the worker's lifetime: it bounds retries of catalog writes.
	life context.Context
	log  *slog.Logger
}

// consumerCatalog is the part of the catalog a consumer uses.
type consumerCatalog interface {
	SetStatus(ctx context.Context, tenant, id, status, action, reason string) (*catalog.Integration, error)
	MarkOffsetsCommitted(ctx context.Context, tenant, id string, generation int64, epoch int) error
	LastAttemptAt(ctx context.Context, tenant, id string, since time.Time) (time.Time, bool, error)
	OffsetCheckpoints(ctx context.Context, tenant, id string, generation int64, epoch int) (map[int32]int64, error)
}

func newConsumer(deps consumerDeps, in *catalog.Integration, st catalog.DeliveryState) *consumer {
	c := &consumer{
		deps: deps, in: in, state: st,
		group:     groupName(in.Tenant, in.ID, in.Generation, st.GroupEpoch),
		topic:     events.TopicName(in.Tenant),
		filter:    events.NewFilter(in.EventFilter, in.EntityFilter),
		done:      make(chan struct{}),
		parts:     map[int32]*partState{},
		room:      make(chan struct{}, 1),
		finalized: make(chan struct{}, 1),
	}
	c.log = deps.log.With("tenant", in.Tenant, "integration", in.ID, "group", c.group)
	c.fromMs = c.startTime().UnixMilli()
	if in.Type == catalog.TypeTemporary && in.EndsAt != nil {
		c.toMs = in.EndsAt.UnixMilli()
		c.completion = &completion{}
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	return c
}

// stop ends the run with cause; the first cause wins.
func (c *consumer) stop(cause error) { c.cancel(cause) }

func (c *consumer) interrupt(cause StopCause, reason string) {
	c.interruptOnce.Do(func() {
		c.interruptCause, c.interruptReason = cause, reason
		c.cancel(errInterrupted)
	})
}

// run is the consumer's life: build the sink and the client, poll until the
// run ends, then release every partition (drain, commit) and leave the group.
func (c *consumer) run() error {
	defer close(c.done)
	sink, err := c.deps.newSink(c.ctx, c)
	if err != nil {
		return fmt.Errorf("building sink: %w", err)
	}
	c.mu.Lock() // the lag gauge reads sink and cl from the scrape goroutine
	c.sink = sink
	c.mu.Unlock()
	cfg := c.deps.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		// The pool in the client id shows in broker logs and group
		// descriptions which pool's worker holds a partition.
		kgo.ClientID("eventstream-delivery." + cfg.Pool),
		// No KIP-714 client metrics pushed to the broker: each client
		// keeps a gzip encoder of ~160 KiB for them (a sixth of a 1,000
		// integration worker's heap), and the worker's /metrics reports
		// what operators need.
		kgo.DisableClientMetrics(),
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
		// How long the broker holds a fetch open when there is nothing new:
		// records are returned as soon as they arrive regardless, so this
		// only paces idle fetches, one per wait per integration. At 1s a
		// worker with 1,000 idle integrations spent most of its CPU sending
		// and reading 1,000 empty fetches a second (BenchmarkScaleCurve);
		// 5s is franz-go's default.
		kgo.FetchMaxWait(fetchMaxWait),
		// Bounds the one fetch response per broker buffered ahead of polls.
		kgo.FetchMaxBytes(fetchMaxBytes),
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		_ = sink.Close(context.Background())
		return fmt.Errorf("creating kafka client: %w", err)
	}
	c.mu.Lock()
	c.cl = cl
	c.mu.Unlock()

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
