package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/eventstream/eventstream/pkg/backoff"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/events"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// errSinkStopped is returned by Deliver once the sink was interrupted or closed.
var errSinkStopped = errors.New("webhook sink stopped")

// RejectedStore stores events an endpoint answered with 400.
type RejectedStore interface {
	AddRejected(ctx context.Context, e catalog.RejectedEvent) error
}

// webhookSink delivers one integration's records to its callback URL.
//
// Records wait in a bounded window (MaxInFlight) until their outcome is
// final (not until its attempt row is stored): Deliver blocks while it is
// full. Workers take records from the ready queue; each attempt first takes
// a slot of the adaptive limiter, so the number of concurrent requests
// follows the endpoint's health. Workers start on demand, never more than
// the limit, and exit after workerIdle without a record (see enqueue and
// work): a worker process holds thousands of sinks, most of them at a few
// events a second, and a fixed pool of MaxConcurrency goroutines each made
// their stacks most of its memory and its GC pauses. A failed record waits
// for its retry on a timer, outside the workers, still holding its window
// slot.
type webhookSink struct {
	cfg      Config
	env      SinkEnv
	in       *catalog.Integration
	sender   *webhook.Sender
	target   *webhook.Target // the callback, prepared once for every request
	rejected RejectedStore
	lim      *limiter
	// gate blocks an attempt until the integration is confirmed running
	// recently enough (see Config.StopPropagation).
	gate    func(context.Context) error
	log     *slog.Logger
	metrics *sinkMetrics

	window chan struct{} // one token per record held
	bytes  *byteBudget   // the bodies those records hold
	// shared is the worker-wide budget of bodies, across integrations.
	shared *byteBudget
	ready  chan *job // capacity MaxInFlight: a send never blocks

	// runCtx ends on Close or interrupt: no attempt starts after that.
	runCtx context.Context
	stop   context.CancelFunc
	// hardCtx ends when Close gives up waiting: it bounds the bookkeeping
	// (attempt rows, logs) of attempts in progress.
	hardCtx    context.Context
	hardCancel context.CancelFunc
	stopped    atomic.Bool

	// The workers: poolMu guards the counts and halted. A job in the ready
	// queue is always taken by a worker that is running (see enqueue), or
	// abandoned once the sink halted.
	poolMu    sync.Mutex
	running   int  // workers started and not exited
	idle      int  // of those, waiting for a job (a new one counts as idle)
	halted    bool // Close or interrupt: no worker starts after it
	idleAfter time.Duration
	workers   sync.WaitGroup

	// Flush bookkeeping: every handed-over record gets a sequence number;
	// fin tracks which are finished (done or abandoned).
	seqMu   sync.Mutex
	nextSeq int64
	fin     *tracker
	waiters []chan struct{}
}

type job struct {
	rec         *Record
	ctx         context.Context // the record's lifetime (Deliver's ctx)
	seq         int64
	body        []byte
	retriesLeft int
	timer       *time.Timer
	unwatch     [2]func() bool
	// held: the job holds its window slot and its body's bytes (until its
	// outcome is final, see release).
	held bool
}

func newWebhookSink(cfg Config, env SinkEnv, sender *webhook.Sender, rejected RejectedStore, shared *byteBudget,
	gate func(context.Context) error, log *slog.Logger) *webhookSink {
	runCtx, stop := context.WithCancel(context.Background())
	hardCtx, hardCancel := context.WithCancel(context.Background())
	s := &webhookSink{
		cfg: cfg, env: env, in: env.Integration, sender: sender, target: webhook.NewTarget(env.Integration.Webhook), rejected: rejected,
		lim:  newLimiter(cfg.MinConcurrency, cfg.InitialConcurrency, cfg.MaxConcurrency),
		gate: gate, log: log, metrics: workerMetrics().forTenant(env.Integration.Tenant),
		window: make(chan struct{}, cfg.MaxInFlight),
		bytes:  newByteBudget(int64(cfg.MaxInFlightBytes)),
		shared: shared,
		ready:  make(chan *job, cfg.MaxInFlight),
		runCtx: runCtx, stop: stop, hardCtx: hardCtx, hardCancel: hardCancel,
		fin: newTracker(), idleAfter: workerIdle,
	}
	return s
}

// workerIdle is how long a worker waits for a job before it exits: long
// enough that an integration at one event a second keeps one worker and a
// burst's workers are reused by the next, short enough that a sink holds no
// goroutine for long once its traffic stops.
const workerIdle = 5 * time.Second

// Deliver implements Sink.
func (s *webhookSink) Deliver(ctx context.Context, r *Record) error {
	if s.stopped.Load() {
		return errSinkStopped
	}
	select {
	case s.window <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.runCtx.Done():
		return errSinkStopped
	}
	j := &job{rec: r, ctx: ctx, body: events.AppendBody(nil, r.Event), retriesLeft: s.cfg.MaxRetries, held: true}
	// The body holds the payload now; the attempt rows need only the
	// event's identity, so the decoded payload is not kept twice.
	r.Event.Payload = nil
	if err := s.acquireBody(ctx, int64(len(j.body))); err != nil {
		<-s.window
		return err
	}
	s.seqMu.Lock()
	j.seq = s.nextSeq
	s.nextSeq++
	s.fin.add(j.seq, r.Timestamp)
	s.seqMu.Unlock()
	s.enqueue(j)
	return nil
}

// Flush implements Sink: it waits until every record handed over before the
// call is finished (Done, abandoned, or the sink stopped).
func (s *webhookSink) Flush(ctx context.Context) error {
	s.seqMu.Lock()
	target := s.nextSeq
	s.seqMu.Unlock()
	for {
		s.seqMu.Lock()
		if target == 0 || s.fin.commitPoint() >= target || s.stopped.Load() {
			s.seqMu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		s.waiters = append(s.waiters, ch)
		s.seqMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.runCtx.Done():
			return nil
		}
	}
}

// Close implements Sink: no attempt starts after it is called; attempts in
// progress finish (within the attempt timeout) unless ctx ends first.
func (s *webhookSink) Close(ctx context.Context) error {
	s.stopped.Store(true)
	s.halt()
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.hardCancel()
		return fmt.Errorf("closing webhook sink: %w", ctx.Err())
	}
}

// interrupt stops the integration once; records not Done are redelivered
// when it is started again.
func (s *webhookSink) interrupt(cause StopCause, reason string) {
	if s.stopped.CompareAndSwap(false, true) {
		s.env.Interrupt(cause, reason)
	}
	s.halt()
	s.notifyWaiters()
}

// halt ends runCtx: the workers abandon what is queued and exit, and none
// starts after it (so Close's wait for them sees every one).
func (s *webhookSink) halt() {
	s.poolMu.Lock()
	s.halted = true
	s.poolMu.Unlock()
	s.stop()
}

// enqueue makes j ready and sees that a worker takes it: an idle one, a new
// one while fewer than the limit run, or else one of the running workers
// once it finishes its attempt. After halt nobody would, so the caller
// abandons what is queued itself.
func (s *webhookSink) enqueue(j *job) {
	s.ready <- j // capacity MaxInFlight, one per window slot: never blocks
	s.poolMu.Lock()
	if s.halted {
		s.poolMu.Unlock()
		s.abandonQueued()
		return
	}
	s.spawn()
	s.poolMu.Unlock()
}

// spawn starts a worker when more jobs are queued than workers are idle and
// fewer workers run than the concurrency limit. s.poolMu is held.
func (s *webhookSink) spawn() {
	if len(s.ready) <= s.idle {
		return // the common case, decided without the limiter's lock
	}
	if limit, _ := s.lim.current(); s.running < limit {
		s.running++
		s.idle++
		s.workers.Add(1)
		go s.work()
	}
}

// work takes jobs until the sink halts, it was idle for idleAfter, or more
// workers run than the limit (which shrank on congestion). It is counted
// idle while it waits in the select.
func (s *webhookSink) work() {
	defer s.workers.Done()
	// Each worker's requests hang off a context of its own: a request's
	// timeout registers with its parent, and many workers registering with
	// hardCtx itself would contend for its lock on every request.
	wctx, cancel := context.WithCancel(s.hardCtx)
	defer cancel()
	// The idle timer ticks rather than being reset for every job (a timer
	// update per request): a worker exits on a tick that finds it took no
	// job since the previous one, between idleAfter and twice that after
	// its last job.
	idle := time.NewTicker(s.idleAfter)
	defer idle.Stop()
	worked := false
	for {
		select {
		case j := <-s.ready:
			worked = true
			s.poolMu.Lock()
			s.idle--
			s.spawn() // more queued: the next worker starts now, not after this attempt
			s.poolMu.Unlock()
			s.attempt(wctx, j)
			s.poolMu.Lock()
			if limit, _ := s.lim.current(); s.running > limit {
				s.running--
				s.poolMu.Unlock()
				return
			}
			s.idle++
			s.poolMu.Unlock()
		case <-idle.C:
			if worked {
				worked = false
				continue
			}
			s.poolMu.Lock()
			// A job queued before the lock was taken counted on this
			// worker (enqueue saw it idle): it stays for the job.
			if len(s.ready) == 0 {
				s.running--
				s.idle--
				s.poolMu.Unlock()
				return
			}
			s.poolMu.Unlock()
		case <-s.runCtx.Done():
			s.poolMu.Lock()
			s.running--
			s.idle--
			s.poolMu.Unlock()
			s.abandonQueued()
			return
		}
	}
}

// abandonQueued finishes whatever is queued, never Done: the sink halted.
func (s *webhookSink) abandonQueued() {
	for {
		select {
		case j := <-s.ready:
			s.finish(j)
		default:
			return
		}
	}
}

// workerCount reports the workers running and, of those, the idle ones.
func (s *webhookSink) workerCount() (running, idle int) {
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	return s.running, s.idle
}

// live reports whether j may still be attempted.
func (s *webhookSink) live(j *job) bool {
	return j.ctx.Err() == nil && s.runCtx.Err() == nil && !s.stopped.Load()
}

// attempt makes one attempt of j; ctx is the worker's share of hardCtx.
func (s *webhookSink) attempt(ctx context.Context, j *job) {
	if !s.live(j) {
		s.finish(j)
		return
	}
	start, err := s.lim.acquire(j.ctx, s.runCtx.Done())
	if err != nil {
		s.finish(j)
		return
	}
	// The gate waits on the record's ctx alone: Close cancels the records'
	// contexts (the partitions are released) before it waits for workers.
	if err := s.gate(j.ctx); err != nil || !s.live(j) {
		s.lim.release(start, neutral, 0)
		s.finish(j)
		return
	}
	ev := j.rec.Event
	req := s.target.NewRequest(ev, j.body)
	attemptedAt := time.Now()
	// The request is not tied to the record's ctx: once started, an attempt
	// finishes (bounded by the attempt timeout) so its outcome is recorded
	// rather than left unknown.
	sctx, span := spanStart(ctx, j.rec.trace, "webhook.deliver")
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(attribute.String("eventstream.tenant", s.in.Tenant), attribute.String("eventstream.integration", s.in.ID),
			attribute.String("eventstream.event_id", ev.GetEventId()), attribute.Int("eventstream.retries_remaining", j.retriesLeft))
	}
	res := s.sender.Send(sctx, &req)
	if recording {
		if res.Err != nil {
			span.SetStatus(codes.Error, res.Err.Error())
		} else {
			span.SetAttributes(attribute.Int("http.response.status_code", res.Code))
		}
	}
	span.End()
	s.lim.release(start, classify(res, s.cfg.SlowResponse), min(res.RetryAfter, s.cfg.RetryMax))

	outcome := res.Outcome()
	s.metrics.recordAttempt(outcome, ev.GetIngestedAt().AsTime())
	status := catalog.AttemptFailure
	if outcome == webhook.Delivered {
		status = catalog.AttemptSuccess
	}
	row := catalog.Attempt{
		Tenant: s.in.Tenant, IntegrationID: s.in.ID, IntegrationType: s.in.Type, Target: catalog.TargetWebhook,
		Status: status, AttemptedAt: attemptedAt, RetriesRemaining: j.retriesLeft,
		EventID: ev.GetEventId(), DomainEntityID: ev.GetDomainEntityId(), DomainEntityType: ev.GetEntityType(),
		EventName: ev.GetName(), URL: req.URL, ResponseCode: res.Code, ResponseBody: res.Body,
		ResponseTimeMS: int(res.Duration.Milliseconds()),
	}
	switch outcome {
	case webhook.Delivered:
		s.settle(j, row)
	case webhook.Rejected:
		if s.reject(j, res) {
			s.settle(j, row)
		} else {
			s.write(row)
			s.finish(j)
		}
	default:
		s.write(row)
		s.retry(j, res)
	}
}

// settle records the final outcome of j: its attempt row, and once the row
// is durable, j is Done (its offset may be committed) and finished.
//
// The window slot and the body go back at once: nothing more is sent for
// j, and holding the slot while the row waits for its batch would cap the
// throughput at MaxInFlight per attempt-writer round trip (a 100 ms flush
// interval plus the COPY) however fast the endpoint answers. Records whose
// rows are on their way are bounded by the attempt writer's queue instead:
// WriteThen blocks while it is full.
func (s *webhookSink) settle(j *job, row catalog.Attempt) {
	s.release(j)
	err := s.env.Attempts.WriteThen(s.hardCtx, func(stored bool) {
		if stored {
			s.env.Done(j.rec)
		}
		s.finish(j)
	}, row)
	if err != nil {
		// Not Done: the record is delivered again by whoever consumes next.
		s.log.Warn("recording attempt", "err", err)
		s.finish(j)
	}
}

// write records an attempt that is not final (the record is retried or set
// aside for a later start).
func (s *webhookSink) write(row catalog.Attempt) {
	if err := s.env.Attempts.Write(s.hardCtx, row); err != nil {
		s.log.Warn("recording attempt", "err", err)
	}
}

func classify(res webhook.Result, slow time.Duration) signal {
	switch {
	case res.Err != nil || res.Code == 429 || res.Code >= 500:
		return congested
	case res.Code >= 200 && res.Code < 300 && res.Duration <= slow:
		return healthy
	default:
		return neutral
	}
}

// rejectRetries bounds the tries to store one rejected event while the
// catalog fails: past them the integration stops, saying why.
const rejectRetries = 8

// reject stores a 400-answered event as rejected and reports true: the
// stream goes on. When the integration already holds the maximum, when the
// catalog refuses the event, or when storing keeps failing for rejectRetries
// tries, it stops the integration instead of dropping the event (false; the
// record stays not Done and comes again after a start).
func (s *webhookSink) reject(j *job, res webhook.Result) bool {
	ev := j.rec.Event
	e := catalog.RejectedEvent{
		Tenant: s.in.Tenant, IntegrationID: s.in.ID, EventID: ev.GetEventId(), EventName: ev.GetName(),
		IdempotencyKey: ev.GetIdempotencyKey(), DomainEntityID: ev.GetDomainEntityId(),
		Body: j.body, ResponseCode: res.Code, ResponseBody: res.Body,
	}
	for n := 0; ; n++ {
		err := s.rejected.AddRejected(s.hardCtx, e)
		switch {
		case err == nil:
			return true
		case errors.Is(err, catalog.ErrRejectedFull):
			s.interrupt(StopRejectedFull, fmt.Sprintf("Stopped: the endpoint rejected event %s (HTTP status code 400) and %d rejected events "+
				"are already stored, so nothing more can be set aside. Nothing was dropped: retry or delete rejected "+
				"events, then start the integration again to resume with this event.", ev.GetEventId(), catalog.MaxRejectedEvents))
			return false
		case errors.Is(err, catalog.ErrNotFound):
			return false // the integration was deleted meanwhile
		case errors.Is(err, catalog.ErrUnstorable) || n >= rejectRetries:
			s.metrics.in.rejectedUnstored.Add(context.Background(), 1)
			s.log.Error("storing rejected event", "event_id", ev.GetEventId(), "partition", j.rec.Partition, "offset", j.rec.Offset, "err", err)
			s.interrupt(StopUnstorable, fmt.Sprintf("Stopped: the endpoint rejected event %s (HTTP status code 400) and it could not be "+
				"stored as a rejected event (%s). Nothing was dropped: start the integration again to resume with this event.",
				ev.GetEventId(), catalog.SafeText(err.Error(), 300)))
			return false
		}
		s.log.Warn("storing rejected event", "event_id", ev.GetEventId(), "err", err)
		if backoff.Catalog.Wait(s.hardCtx, n) != nil {
			return false
		}
	}
}

// retry schedules j's next attempt with exponential backoff and jitter (pkg/backoff)
// (or the endpoint's Retry-After when longer), logging retry_triggered; with
// no retries left the integration stops and j stays not Done.
func (s *webhookSink) retry(j *job, res webhook.Result) {
	reason := res.Reason(s.in.Webhook.CallbackURL)
	if res.Blocked() {
		// A refused address (private, loopback, metadata, or the service's
		// own hosts) is a configuration to fix, not a failure to wait out.
		s.interrupt(StopAddressRefused, fmt.Sprintf("Stopped: %s Delivery to this address is not allowed: change the callback URL "+
			"(or ask the operator to allow the address), then start the integration again to resume with this event.", reason))
		s.finish(j)
		return
	}
	if j.retriesLeft <= 0 {
		s.interrupt(StopRetriesExhausted, fmt.Sprintf("Stopped after %d failed retries. %s", s.cfg.MaxRetries, reason))
		s.finish(j)
		return
	}
	if !s.live(j) {
		s.finish(j)
		return
	}
	if err := s.env.Logs.AddLog(s.hardCtx, s.in.Tenant, s.in.ID, catalog.ActionRetry, reason); err != nil {
		s.log.Warn("logging retry", "err", err)
	}
	n := s.cfg.MaxRetries - j.retriesLeft // retries so far
	j.retriesLeft--
	delay := backoff.Policy{Base: s.cfg.RetryBase, Max: s.cfg.RetryMax}.Delay(n)
	if ra := min(res.RetryAfter, s.cfg.RetryMax); ra > delay {
		delay = ra
	}
	// The timer is created stopped so both callbacks below exist before
	// either can run.
	j.timer = time.AfterFunc(time.Hour, func() {
		j.unwatch[0]()
		j.unwatch[1]()
		s.enqueue(j)
	})
	j.timer.Stop()
	abandon := func() {
		if j.timer.Stop() {
			s.finish(j)
		}
	}
	j.unwatch[0] = context.AfterFunc(j.ctx, abandon)
	j.unwatch[1] = context.AfterFunc(s.runCtx, abandon)
	j.timer.Reset(delay)
}

// release gives back j's window slot and its body's bytes, once; the body
// is dropped so the bytes the budgets no longer count are not kept either.
// Only the goroutine that owns j (the worker attempting it, or whoever the
// worker handed it to) calls it.
func (s *webhookSink) release(j *job) {
	if !j.held {
		return
	}
	j.held = false
	n := int64(len(j.body))
	j.body = nil
	s.bytes.release(n)
	s.shared.release(n)
	<-s.window
}

// finish releases j (if settle did not already) and counts it finished for
// Flush. Every job is finished exactly once.
func (s *webhookSink) finish(j *job) {
	s.release(j)
	s.seqMu.Lock()
	s.fin.done(j.seq)
	s.seqMu.Unlock()
	s.notifyWaiters()
}

func (s *webhookSink) notifyWaiters() {
	s.seqMu.Lock()
	ws := s.waiters
	s.waiters = nil
	s.seqMu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

// acquireBody takes n bytes of the integration's own budget and of the
// worker-wide one. An integration holding nothing is always admitted to the
// shared budget: however full other tenants' slow endpoints keep it, every
// integration moves at least one event at a time, so no tenant can stall
// another; the worker's total stays within the shared budget plus one event
// per integration.
func (s *webhookSink) acquireBody(ctx context.Context, n int64) error {
	before, err := s.bytes.acquire(ctx, n, false, s.runCtx.Done())
	if err != nil {
		return err
	}
	if _, err := s.shared.acquire(ctx, n, before == 0, s.runCtx.Done()); err != nil {
		s.bytes.release(n)
		return err
	}
	return nil
}

// byteBudget is a semaphore over bytes. A request larger than the whole
// budget is admitted when nothing else is held, so it cannot wait forever.
type byteBudget struct {
	mu        sync.Mutex
	max, used int64
	// wake is closed by the next release; made only when someone waits, so
	// a release nobody waits for allocates nothing.
	wake chan struct{}
}

func newByteBudget(max int64) *byteBudget {
	return &byteBudget{max: max}
}

// acquire takes n bytes, waiting for room, and returns what was held
// before. It admits n at once when nothing is held or when admit is set.
func (b *byteBudget) acquire(ctx context.Context, n int64, admit bool, stop <-chan struct{}) (int64, error) {
	for {
		b.mu.Lock()
		if admit || b.used == 0 || b.used+n <= b.max {
			before := b.used
			b.used += n
			b.mu.Unlock()
			return before, nil
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-stop:
			return 0, errSinkStopped
		}
	}
}

// inUse is how many bytes are held.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.mu.Unlock()
}
