package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/eventstream/eventstream/pkg/backoff"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// notifyChannel is the catalog's NOTIFY channel for integration changes.
const notifyChannel = "eventstream_integrations"

// Service is a delivery worker: it runs one consumer per running integration
// of its pool's tenants and keeps that set in line with the catalog.
type Service struct {
	cfg   Config
	store *catalog.Store
	// states reads integration states for the supervisor over a pool of its
	// own (Run opens it): the stop gate depends on these reads, so they never
	// wait behind attempt rows, logs and rejected events.
	states   *catalog.Store
	pool     *pgxpool.Pool
	log      *slog.Logger
	sender   *webhook.Sender
	attempts *catalog.AttemptWriter
	// bodies is the worker-wide budget of webhook bodies in flight.
	bodies *byteBudget
	// checkpoints copies committed offsets to the catalog (see checkpoints).
	checkpoints *checkpoints
	sinks       map[string]NewSinkFunc
	tenants     []string // nil: the "*" pool

	ctx       context.Context // Run's
	adm       *kadm.Client
	consumers map[ikey]*consumer
	known     map[ikey]catalog.DeliveryState
	// spare is the previous poll's known map, cleared and refilled by the
	// next poll: two polls a second of 1,000 entries each were a tenth of
	// a 1,000-integration worker's allocations (BenchmarkScaleCurve).
	spare    map[ikey]catalog.DeliveryState
	retryAt  map[ikey]time.Time
	failures map[ikey]int
	// paused are integrations whose stop the catalog did not record: no
	// consumer runs for them while the supervisor retries the write.
	paused map[ikey]*unrecordedStop
	// running holds every consumer goroutine: Run returns after them all.
	running errgroup.Group
	// consumerExited, when set (tests), is the last thing a consumer's
	// goroutine does.
	consumerExited func()
	exited         chan *consumer
	poke           chan struct{}
	cleanup        chan struct{}

	// admCl is adm's client, set while Run's supervisor loop runs (Ready
	// pings it); lastPoll is when (unix ns) the last state poll succeeded.
	admCl    atomic.Pointer[kgo.Client]
	lastPoll atomic.Int64
}

type ikey struct{ tenant, id string }

// Option customises a Service.
type Option func(*Service)

// WithSink registers the sink of a target (catalog.TargetS3, ...); the
// webhook sink is built in.
func WithSink(target string, f NewSinkFunc) Option {
	return func(s *Service) { s.sinks[target] = f }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) { s.log = l }
}

// New builds a Service over the catalog store and its connection pool (the
// pool also serves the attempt writer and a dedicated LISTEN connection).
func New(cfg Config, store *catalog.Store, pool *pgxpool.Pool, opts ...Option) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating delivery config: %w", err)
	}
	if store == nil || pool == nil {
		return nil, errors.New("creating delivery service: store and pool are required")
	}
	s := &Service{
		cfg: cfg, store: store, pool: pool, log: slog.Default(),
		sinks:     map[string]NewSinkFunc{},
		consumers: map[ikey]*consumer{},
		known:     map[ikey]catalog.DeliveryState{},
		retryAt:   map[ikey]time.Time{},
		failures:  map[ikey]int{},
		paused:    map[ikey]*unrecordedStop{},
		exited:    make(chan *consumer, 16),
		poke:      make(chan struct{}, 1),
		cleanup:   make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	workerMetrics()
	s.log = s.log.With("component", "delivery", "pool", cfg.Pool)
	if !cfg.Wildcard() {
		s.tenants = cfg.PoolTenants
	}
	s.sender = webhook.NewSender(webhook.Config{
		Timeout: cfg.AttemptTimeout, MaxResponseBody: cfg.MaxResponseBody, AllowCIDRs: cfg.AllowCIDRs, OwnHosts: cfg.OwnHosts,
		MaxIdleConnsPerHost: max(cfg.MaxConcurrency, 2),
	})
	s.bodies = newByteBudget(int64(cfg.MemoryBudget))
	s.checkpoints = newCheckpoints(store, s.log)
	s.attempts = catalog.NewAttemptWriter(pool, catalog.AttemptWriterConfig{
		Retention: cfg.AttemptRetention,
		OnError:   func(err error) { s.log.Warn("writing attempt rows", "err", err) },
		OnRowDropped: func(a catalog.Attempt, err error) {
			s.log.Error("attempt row refused by the catalog even in its safe form: not stored",
				"tenant", a.Tenant, "integration", a.IntegrationID, "event_id", a.EventID, "status", a.Status, "err", err)
		},
	})
	return s, nil
}

// Sender is the webhook sender (shared with the configuration API's _retry
// when both run in one process).
func (s *Service) Sender() *webhook.Sender { return s.sender }

// Attempts is the attempt writer the service runs.
func (s *Service) Attempts() *catalog.AttemptWriter { return s.attempts }

// Run delivers until ctx ends, then stops every consumer (draining and
// committing within DrainTimeout), writes the queued attempt rows and
// returns.
func (s *Service) Run(ctx context.Context) error {
	s.ctx = ctx
	registry.add(s, nil)
	defer registry.remove(s, nil)
	if s.tenants != nil {
		if err := s.store.ClaimPoolTenants(ctx, s.cfg.Pool, s.tenants); err != nil {
			return fmt.Errorf("claiming pool tenants: %w", err)
		}
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...), kgo.ClientID("eventstream-delivery-admin"))
	if err != nil {
		return fmt.Errorf("creating kafka admin client: %w", err)
	}
	defer admCl.Close()
	s.adm = kadm.NewClient(admCl)
	s.checkOffsetRetention(ctx)
	stateCfg := s.pool.Config().Copy()
	stateCfg.MaxConns, stateCfg.MinConns = 2, 0
	statePool, err := pgxpool.NewWithConfig(ctx, stateCfg)
	if err != nil {
		return fmt.Errorf("opening the supervisor's catalog pool: %w", err)
	}
	defer statePool.Close()
	s.states = s.store.WithPool(statePool)

	// The attempt writer outlives the consumers (they record their last
	// outcomes while draining); the listener and the janitor end with ctx.
	// Run returns only after every goroutine it started has ended.
	writerCtx, stopWriter := context.WithCancel(context.Background())
	var writer, housekeeping errgroup.Group
	writer.Go(func() error { return s.attempts.Run(writerCtx) })
	housekeeping.Go(func() error { s.listen(ctx); return nil })
	housekeeping.Go(func() error { s.janitor(ctx); return nil })
	housekeeping.Go(func() error { s.refreshEndOffsets(ctx); return nil })
	housekeeping.Go(func() error { s.checkpoints.run(ctx, s.cfg.OffsetCheckpointInterval); return nil })

	// The supervisor loop only reads the catalog and starts/stops consumers,
	// so it confirms running integrations every StopPropagation/4 without
	// being held up by slower housekeeping (the janitor's).
	poll := time.NewTicker(max(s.cfg.StopPropagation/4, 10*time.Millisecond))
	defer poll.Stop()
	s.admCl.Store(admCl)
	defer s.admCl.Store(nil)
	resync := time.NewTicker(s.cfg.ResyncInterval)
	defer resync.Stop()
	s.pollStates(ctx, true)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-s.poke:
			s.pollStates(ctx, false)
		case <-poll.C:
			s.pollStates(ctx, false)
		case <-resync.C:
			s.pollStates(ctx, true)
		case c := <-s.exited:
			s.onExit(c)
		}
	}
	_ = housekeeping.Wait()

	s.log.Info("shutting down: draining consumers", "consumers", len(s.consumers))
	for _, c := range s.consumers {
		c.stop(errShutdown)
	}
	_ = s.running.Wait() // every consumer's goroutine, registry removal included
	// The consumers' final commits are in; their checkpoints follow them.
	ckCtx, ckCancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	if err := s.checkpoints.flush(ckCtx); err != nil {
		s.log.Warn("writing the final offset checkpoints", "err", err)
	}
	ckCancel()
	stopWriter()
	return writer.Wait()
}

// Ready reports whether the worker can deliver: its supervisor is running
// and read the integration states recently (so it starts, stops and
// confirms consumers), and Postgres and Kafka answer. The worker's /readyz
// serves it; ctx bounds the pings.
func (s *Service) Ready(ctx context.Context) error {
	cl := s.admCl.Load()
	if cl == nil {
		return errors.New("the supervisor is not running")
	}
	stale := max(3*s.cfg.StopPropagation, 10*time.Second)
	switch last := s.lastPoll.Load(); {
	case last == 0:
		return errors.New("the first poll of the integration states has not succeeded yet")
	case time.Since(time.Unix(0, last)) > stale:
		return fmt.Errorf("no successful integration state poll for %s", time.Since(time.Unix(0, last)).Round(time.Second))
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pinging the catalog database: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("pinging kafka: %w", err)
	}
	return nil
}

func (s *Service) pokeNow() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

func (s *Service) cleanupSoon() {
	select {
	case s.cleanup <- struct{}{}:
	default:
	}
}

// listen LISTENs for integration changes on a dedicated connection,
// reconnecting with backoff; every notification (and every reconnect, which
// may have missed some) triggers a state poll.
func (s *Service) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("listening for integration changes", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *Service) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	s.pokeNow()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("waiting for notification: %w", err)
		}
		var note struct {
			Op string `json:"op"`
		}
		if json.Unmarshal([]byte(n.Payload), &note) == nil && note.Op == "delete" {
			s.cleanupSoon()
		}
		s.pokeNow()
	}
}

// sameRun reports whether a consumer started for a may go on under b.
func sameRun(a, b catalog.DeliveryState) bool {
	return a.Generation == b.Generation && a.GroupEpoch == b.GroupEpoch && a.UpdatedAt.Equal(b.UpdatedAt)
}

// pollStates reads the state of every integration of the pool (one cheap
// query) and makes the consumers match: start the running ones, stop the
// stopped, deleted and changed ones, and confirm the rest (the stop bound).
// With full set, running consumers whose decrypted configuration changed
// without a state change are restarted too.
func (s *Service) pollStates(ctx context.Context, full bool) {
	readAt := time.Now()
	// A read slower than the stop bound is abandoned: the gate closes
	// meanwhile anyway, and the loop stays responsive.
	rctx, cancel := context.WithTimeout(ctx, s.cfg.StopPropagation)
	defer cancel()
	states, err := s.states.DeliveryStates(rctx, s.tenants)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reading integration states", "err", err)
		}
		return
	}
	s.lastPoll.Store(readAt.UnixNano())
	// A full resync compares every running consumer's configuration with
	// the catalog's, read in one query: one read per integration would make
	// the resync, during which no poll confirms anything, outlast the stop
	// bound at a thousand integrations and pause every delivery.
	var configs *runningConfigs
	if full {
		configs = s.readRunningConfigs(rctx)
	}
	seen := s.spare
	if seen == nil {
		seen = make(map[ikey]catalog.DeliveryState, len(states))
	}
	clear(seen)
	var starts []catalog.DeliveryState
	for _, st := range states {
		k := ikey{st.Tenant, st.ID}
		seen[k] = st
		if prev, ok := s.known[k]; ok && (prev.Generation != st.Generation || prev.GroupEpoch != st.GroupEpoch) {
			s.cleanupSoon()
		}
		c := s.consumers[k]
		if st.Status != catalog.StatusRunning {
			if c != nil {
				c.stop(errStopRequested)
			}
			delete(s.retryAt, k)
			delete(s.failures, k)
			delete(s.paused, k)
			continue
		}
		if p := s.paused[k]; p != nil && c == nil {
			if sameRun(p.state, st) {
				s.recordPausedStop(ctx, k, p)
				continue
			}
			// Stopped, started or changed meanwhile: the operator decided.
			delete(s.paused, k)
		}
		if c != nil {
			if sameRun(c.state, st) && !(full && configs.changed(c)) {
				c.confirm(readAt)
			} else {
				c.stop(errStopRequested) // a new consumer starts once it exited
			}
			continue
		}
		if t, ok := s.retryAt[k]; ok && time.Now().Before(t) {
			continue
		}
		starts = append(starts, st)
	}
	// Many starts at once (a worker starting, a pool's tenants moving) load
	// their configurations in one query too.
	if len(starts) > 1 && configs == nil {
		configs = s.readRunningConfigs(ctx)
	}
	for _, st := range starts {
		s.start(ctx, st, readAt, configs)
	}
	for k, c := range s.consumers {
		if _, ok := seen[k]; !ok {
			c.stop(errStopRequested) // deleted, or its tenant left the pool
		}
	}
	for k := range s.known {
		if _, ok := seen[k]; !ok {
			s.cleanupSoon()
			delete(s.paused, k)
		}
	}
	s.known, s.spare = seen, s.known
}

// runningConfigs are the pool's running integrations as one query read
// them (nil: not read).
type runningConfigs struct {
	byKey map[ikey]*catalog.Integration
	// unreadable are those whose secrets do not decrypt with the keyring.
	unreadable map[ikey]bool
}

// readRunningConfigs reads the configuration of every running integration of
// the pool; nil when the read failed (logged).
func (s *Service) readRunningConfigs(ctx context.Context) *runningConfigs {
	list, err := s.states.ListRunningForPool(ctx, s.tenants)
	var ue *catalog.UnreadableError
	if err != nil && !errors.As(err, &ue) {
		if ctx.Err() == nil {
			s.log.Warn("reading running integrations", "err", err)
		}
		return nil
	}
	rc := &runningConfigs{byKey: make(map[ikey]*catalog.Integration, len(list)), unreadable: map[ikey]bool{}}
	if ue != nil {
		for _, name := range ue.Integrations {
			tenant, id, _ := strings.Cut(name, "/")
			rc.unreadable[ikey{tenant, id}] = true
		}
	}
	for _, in := range list {
		rc.byKey[ikey{in.Tenant, in.ID}] = in
	}
	return rc
}

// lookup returns the integration's configuration: found is false when it is
// not running (any more) or was not read; err when its secrets are unreadable.
func (rc *runningConfigs) lookup(k ikey) (in *catalog.Integration, found bool, err error) {
	if rc == nil {
		return nil, false, nil
	}
	in, found = rc.byKey[k]
	if found && rc.unreadable[k] {
		return in, true, fmt.Errorf("integration %s/%s: %w", k.tenant, k.id, catalog.ErrSecretsUnreadable)
	}
	return in, found, nil
}

// changed reports whether c's integration configuration differs from the
// catalog's (a change that did not go through the API's stop/patch/start).
// Not read, not running any more, or unreadable: not a change (the states
// decide those).
func (rc *runningConfigs) changed(c *consumer) bool {
	b, found, err := rc.lookup(ikey{c.in.Tenant, c.in.ID})
	if !found || err != nil {
		return false
	}
	a := c.in
	if (a.Webhook == nil) != (b.Webhook == nil) || (a.S3 == nil) != (b.S3 == nil) {
		return true
	}
	if a.Webhook != nil && *a.Webhook != *b.Webhook {
		return true
	}
	if a.S3 != nil && *a.S3 != *b.S3 {
		return true
	}
	return strings.Join(a.EventFilter, ",") != strings.Join(b.EventFilter, ",") ||
		strings.Join(a.EntityFilter, ",") != strings.Join(b.EntityFilter, ",") ||
		(a.EventFilter == nil) != (b.EventFilter == nil) || (a.EntityFilter == nil) != (b.EntityFilter == nil)
}

// start starts the consumer of a running integration, with its
// configuration from configs when they were read, else read alone.
func (s *Service) start(ctx context.Context, st catalog.DeliveryState, readAt time.Time, configs *runningConfigs) {
	k := ikey{st.Tenant, st.ID}
	var in *catalog.Integration
	var err error
	if configs != nil {
		var found bool
		if in, found, err = configs.lookup(k); !found {
			return // stopped or deleted since the state was read; the next poll sees it
		}
	} else {
		in, err = s.states.GetIntegration(ctx, st.Tenant, st.ID)
	}
	if err != nil {
		if !errors.Is(err, catalog.ErrNotFound) {
			s.log.Warn("loading integration", "tenant", st.Tenant, "integration", st.ID, "err", err)
			s.backoff(k)
		}
		return
	}
	if in.Generation != st.Generation || in.Status != catalog.StatusRunning {
		return // changed since the state was read; the next poll sees it
	}
	if in.Target() != catalog.TargetWebhook && s.sinks[in.Target()] == nil {
		if s.failures[k] == 0 {
			s.log.Error("no sink for target in this worker", "tenant", in.Tenant, "integration", in.ID, "target", in.Target())
		}
		s.backoff(k)
		return
	}
	if in.StoppedAt != nil && st.UpdatedAt.Sub(*in.StoppedAt) > s.cfg.OffsetRetention &&
		(st.OffsetsResetAt == nil || st.OffsetsResetAt.Before(*in.StoppedAt)) {
		nst, reset, err := s.store.ResetExpiredOffsets(ctx, in.Tenant, in.ID, in.Generation, s.cfg.OffsetRetention)
		if err != nil {
			s.log.Warn("resetting expired offsets", "tenant", in.Tenant, "integration", in.ID, "err", err)
			s.backoff(k)
			return
		}
		if reset {
			reason := fmt.Sprintf("Started %s after it was stopped, later than the %s the event log position is kept: "+
				"delivering events published from this start on; events published while it was stopped are not delivered.",
				roundDays(st.UpdatedAt.Sub(*in.StoppedAt)), roundDays(s.cfg.OffsetRetention))
			if err := s.store.AddLog(ctx, in.Tenant, in.ID, catalog.ActionStarted, reason); err != nil {
				s.log.Warn("logging offset reset", "err", err)
			}
			s.log.Info("integration restarted after offset retention: starting from the restart",
				"tenant", in.Tenant, "integration", in.ID)
		}
		st = nst
	}
	c := newConsumer(s.consumerDeps(), in, st)
	c.confirm(readAt)
	s.consumers[k] = c
	registry.add(s, c)
	c.log.Info("starting consumer")
	s.running.Go(func() error {
		if err := c.run(); err != nil {
			c.log.Error("consumer failed", "err", err)
		}
		registry.remove(s, c)
		select {
		case s.exited <- c:
		case <-ctx.Done(): // shutting down: Run waits for this goroutine instead
		}
		if s.consumerExited != nil {
			s.consumerExited()
		}
		return nil
	})
}

func roundDays(d time.Duration) string {
	days := d.Hours() / 24
	if days >= 1 {
		return strconv.FormatFloat(days, 'f', 0, 64) + " days"
	}
	return d.Round(time.Second).String()
}

// restartPolicy spaces the restarts of a consumer that keeps failing.
var restartPolicy = backoff.Policy{Base: 2 * time.Second, Max: time.Minute}

func (s *Service) backoff(k ikey) {
	s.retryAt[k] = time.Now().Add(restartPolicy.Delay(s.failures[k]))
	s.failures[k]++
}

// onExit forgets an exited consumer; a consumer that ended without being
// asked to (an error) is restarted after a backoff.
func (s *Service) onExit(c *consumer) {
	k := ikey{c.in.Tenant, c.in.ID}
	if s.consumers[k] == c {
		delete(s.consumers, k)
	}
	cause := context.Cause(c.ctx)
	switch {
	case c.unrecorded != nil:
		// Its stop is not recorded: no new consumer, the write is
		// retried on later passes (spaced like restarts).
		s.paused[k] = c.unrecorded
		s.backoff(k)
	case cause == nil:
		s.backoff(k)
	default:
		delete(s.failures, k)
	}
	s.cleanupSoon()
	s.pokeNow()
}

// recordPausedStop tries once more, when its backoff is over, to record the
// stop of a paused integration; the supervisor loop waits for it at most
// StopPropagation (the bound its reads have too).
func (s *Service) recordPausedStop(ctx context.Context, k ikey, p *unrecordedStop) {
	if t, ok := s.retryAt[k]; ok && time.Now().Before(t) {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.StopPropagation)
	_, err := s.store.SetStatus(wctx, k.tenant, k.id, catalog.StatusStopped, p.action, p.reason)
	cancel()
	switch {
	case err == nil, errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrSecretsUnreadable):
		s.log.Info("recorded the stop of a paused integration", "tenant", k.tenant, "integration", k.id, "tries", s.failures[k]+1)
		delete(s.paused, k)
		delete(s.retryAt, k)
		delete(s.failures, k)
	default:
		s.log.Warn("recording the stop of a paused integration", "tenant", k.tenant, "integration", k.id,
			"tries", s.failures[k]+1, "err", err)
		if errors.Is(err, catalog.ErrUnstorable) {
			p.reason = fallbackReason(p.cause, p.action)
		}
		s.backoff(k)
	}
}

func (s *Service) consumerDeps() consumerDeps {
	return consumerDeps{cfg: s.cfg, adm: s.adm, status: s.store, attempts: s.attempts, checkpoints: s.checkpoints, newSink: s.newSink, life: s.ctx, log: s.log}
}

// newSink builds the sink of a consumer's run.
func (s *Service) newSink(ctx context.Context, c *consumer) (Sink, error) {
	env := SinkEnv{Integration: c.in, Done: c.markDone, Interrupt: c.interrupt, Attempts: s.attempts, Logs: s.store}
	if c.in.Target() == catalog.TargetWebhook {
		return newWebhookSink(s.cfg, env, s.sender, s.store, s.bodies, c.gate, c.log), nil
	}
	f := s.sinks[c.in.Target()]
	if f == nil {
		return nil, fmt.Errorf("no sink registered for target %q", c.in.Target())
	}
	return f(ctx, env)
}

// checkOffsetRetention warns when the broker keeps committed offsets for less
// than OffsetRetention: an integration stopped longer than the broker's
// retention then finds its offsets gone (it resumes from when it stopped,
// see resumeAfterLostOffsets, but the broker should keep them).
func (s *Service) checkOffsetRetention(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	configs, err := s.adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		s.log.Warn("reading the broker's offsets.retention.minutes", "err", err)
		return
	}
	for _, rc := range configs {
		for _, c := range rc.Configs {
			if c.Key != "offsets.retention.minutes" || c.Value == nil {
				continue
			}
			minutes, err := strconv.ParseInt(*c.Value, 10, 64)
			if err != nil {
				continue
			}
			broker := time.Duration(minutes) * time.Minute
			if broker < s.cfg.OffsetRetention {
				s.log.Warn("the broker keeps committed offsets for less than DELIVERY_OFFSET_RETENTION: "+
					"set offsets.retention.minutes on the brokers to at least "+strconv.FormatInt(int64(s.cfg.OffsetRetention/time.Minute), 10),
					"offsets_retention", broker.String(), "delivery_offset_retention", s.cfg.OffsetRetention.String())
			}
			return
		}
	}
}
