package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventstream/eventstream/pkg/webhook"
)

const instrumentation = "github.com/eventstream/eventstream/services/delivery"

var tracer = otel.Tracer(instrumentation)

// instruments are the worker's metrics, on the global meter provider (a
// no-op unless telemetry.Setup installed one).
type instruments struct {
	attempts metric.Int64Counter
	latency  metric.Float64Histogram
	// rejectedUnstored counts rejected events the catalog would not store
	// (the integration stops instead of dropping them).
	rejectedUnstored metric.Int64Counter
	// undecodable counts records no integration can read.
	undecodable metric.Int64Counter
	// stops counts integrations the worker stopped, by StopCause.
	stops metric.Int64Counter
	// stopsUnrecorded counts stops the catalog kept refusing to record.
	stopsUnrecorded metric.Int64Counter
}

var (
	metricsOnce sync.Once
	metricsInst *instruments
)

// workerMetrics returns the process-wide instruments, creating them (and the
// observable gauges over every Service) once.
func workerMetrics() *instruments {
	metricsOnce.Do(func() {
		meter := otel.Meter(instrumentation)
		in := &instruments{}
		in.attempts, _ = meter.Int64Counter("eventstream.delivery.webhook.attempts",
			metric.WithDescription("Webhook delivery attempts, by outcome (delivered, rejected, failed)."))
		in.latency, _ = meter.Float64Histogram("eventstream.delivery.latency", metric.WithUnit("s"),
			metric.WithDescription("From ingestion to the endpoint's 2xx answer."),
			metric.WithExplicitBucketBoundaries(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))
		in.rejectedUnstored, _ = meter.Int64Counter("eventstream.delivery.rejected_unstored",
			metric.WithDescription("Rejected events the catalog refused or kept failing to store; the integration stopped instead of dropping them."))
		in.undecodable, _ = meter.Int64Counter("eventstream.delivery.undecodable_records",
			metric.WithDescription("Kafka records that could not be decoded; each is recorded as a FAILURE attempt and skipped."))
		in.stops, _ = meter.Int64Counter("eventstream.delivery.integration_stops",
			metric.WithDescription("Integrations the worker stopped (interrupted or, for temporary ones, completed), by reason."))
		in.stopsUnrecorded, _ = meter.Int64Counter("eventstream.delivery.stops_unrecorded",
			metric.WithDescription("Integration stops the catalog kept refusing to record after bounded retries; "+
				"the integration is paused on the worker, which retries recording the stop."))
		dropped, _ := meter.Int64ObservableCounter("eventstream.delivery.attempt_rows_dropped",
			metric.WithDescription("Attempt rows the catalog refused even in their safe form (logged with their ids)."))
		memory, _ := meter.Int64ObservableGauge("eventstream.delivery.inflight_bytes", metric.WithUnit("By"),
			metric.WithDescription("Webhook request bodies held in flight by the worker, against DELIVERY_MEMORY_BUDGET."))
		queue, _ := meter.Int64ObservableGauge("eventstream.delivery.attempt_queue",
			metric.WithDescription("Attempt rows waiting to be written to the catalog."))
		// Named without the delivery prefix: the chart's KEDA trigger and
		// the alerts select eventstream_consumer_lag{pool=...}.
		lag, _ := meter.Int64ObservableGauge("eventstream.consumer_lag",
			metric.WithDescription("Records of an integration's assigned partitions not yet final (high watermark minus commit point)."))
		lagAge, _ := meter.Float64ObservableGauge("eventstream.consumer_lag_seconds", metric.WithUnit("s"),
			metric.WithDescription("Age of the oldest record of an integration's assigned partitions not yet final (0 when none waits)."))
		limit, _ := meter.Int64ObservableGauge("eventstream.delivery.webhook.concurrency_limit",
			metric.WithDescription("Current adaptive concurrency limit of a webhook integration."))
		_, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			now := time.Now()
			registry.each(func(s *Service, cs []*consumer) {
				pool := metric.WithAttributes(attribute.String("pool", s.cfg.Pool))
				o.ObserveInt64(queue, int64(s.attempts.Queued()), pool)
				o.ObserveInt64(dropped, s.attempts.Dropped(), pool)
				o.ObserveInt64(memory, s.bodies.inUse(), pool)
				for _, c := range cs {
					attrs := metric.WithAttributes(attribute.String("tenant", c.in.Tenant), attribute.String("integration", c.in.ID))
					withPool := metric.WithAttributes(attribute.String("pool", s.cfg.Pool),
						attribute.String("tenant", c.in.Tenant), attribute.String("integration", c.in.ID))
					records, oldest := c.lag()
					o.ObserveInt64(lag, records, withPool)
					age := 0.0
					if !oldest.IsZero() && now.After(oldest) {
						age = now.Sub(oldest).Seconds()
					}
					o.ObserveFloat64(lagAge, age, withPool)
					if ws, ok := c.sink.(*webhookSink); ok {
						l, _ := ws.lim.current()
						o.ObserveInt64(limit, int64(l), attrs)
					}
				}
			})
			return nil
		}, queue, lag, lagAge, limit, dropped, memory)
		metricsInst = in
	})
	return metricsInst
}

// registry lists the running services and consumers for the observable
// gauges (the supervisor owns its maps; this is a copy under a lock).
var registry = &serviceRegistry{running: map[*Service]map[*consumer]struct{}{}}

type serviceRegistry struct {
	mu      sync.Mutex
	running map[*Service]map[*consumer]struct{}
}

func (r *serviceRegistry) add(s *Service, c *consumer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[s] == nil {
		r.running[s] = map[*consumer]struct{}{}
	}
	if c != nil {
		r.running[s][c] = struct{}{}
	}
}

func (r *serviceRegistry) remove(s *Service, c *consumer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c == nil {
		delete(r.running, s)
		return
	}
	delete(r.running[s], c)
}

// of returns s's running consumers.
func (r *serviceRegistry) of(s *Service) []*consumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := make([]*consumer, 0, len(r.running[s]))
	for c := range r.running[s] {
		cs = append(cs, c)
	}
	return cs
}

func (r *serviceRegistry) each(fn func(*Service, []*consumer)) {
	r.mu.Lock()
	type entry struct {
		s  *Service
		cs []*consumer
	}
	var all []entry
	for s, m := range r.running {
		e := entry{s: s}
		for c := range m {
			c.mu.Lock()
			started := c.sink != nil
			c.mu.Unlock()
			if started {
				e.cs = append(e.cs, c)
			}
		}
		all = append(all, e)
	}
	r.mu.Unlock()
	for _, e := range all {
		fn(e.s, e.cs)
	}
}

// lag sums, over the consumer's partitions, the records between the commit
// point and the high watermark last seen (at the last fetch or the last
// end-offset refresh, see refreshEndOffsets), and returns the timestamp of
// the oldest record not yet final (zero when none waits). It reads only
// what the consumer holds in memory: a scrape costs no broker or catalog
// call, whatever the number of integrations.
func (c *consumer) lag() (records int64, oldest time.Time) {
	c.mu.Lock()
	parts := make([]*partState, 0, len(c.parts))
	for _, ps := range c.parts {
		parts = append(parts, ps)
	}
	cl := c.cl
	c.mu.Unlock()
	var committed map[int32]kgo.EpochOffset
	for _, ps := range parts {
		hw := ps.highWater.Load()
		at := ps.tr.commitPoint()
		if at < 0 {
			at = ps.firstOffset.Load()
		}
		if at < 0 && hw > 0 && cl != nil {
			// Nothing fetched here yet (other partitions' buffers may be
			// full): count from the group's committed offset, which the
			// client knows from joining.
			if committed == nil {
				committed = cl.CommittedOffsets()[c.topic]
			}
			if eo, ok := committed[ps.p]; ok {
				at = eo.Offset
			}
		}
		if hw > at && at >= 0 {
			records += hw - at
		}
		ts, ok := ps.tr.oldest()
		if !ok {
			ts, ok = ps.oldestBuffered()
		}
		if ok && (oldest.IsZero() || ts.Before(oldest)) {
			oldest = ts
		}
	}
	return records, oldest
}

// oldestBuffered is the timestamp of the first record polled but not yet
// handed to the sink.
func (ps *partState) oldestBuffered() (time.Time, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.buf) == 0 {
		return time.Time{}, false
	}
	return ps.buf[0].Timestamp, true
}

// raiseHighWater moves the partition's known end offset forward (never back).
func (ps *partState) raiseHighWater(end int64) {
	for {
		old := ps.highWater.Load()
		if end <= old || ps.highWater.CompareAndSwap(old, end) {
			return
		}
	}
}

// endOffsetRefresh is how often the worker asks the brokers for the end
// offsets of its consumers' topics.
const endOffsetRefresh = 15 * time.Second

// refreshEndOffsets keeps the lag gauge's high watermarks current while
// consumers do not fetch (a slow endpoint fills the buffers, polling stops,
// and the lag would stop growing exactly when a pool needs scaling): every
// endOffsetRefresh, one ListOffsets request per broker for every topic the
// worker consumes (topics are per tenant), not one per integration.
func (s *Service) refreshEndOffsets(ctx context.Context) {
	t := time.NewTicker(endOffsetRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cs := registry.of(s)
		topics := map[string]bool{}
		for _, c := range cs {
			topics[c.topic] = true
		}
		if len(topics) == 0 {
			continue
		}
		names := make([]string, 0, len(topics))
		for tp := range topics {
			names = append(names, tp)
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ends, err := s.adm.ListEndOffsets(lctx, names...)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("listing end offsets for the lag gauge", "err", err)
			}
			continue
		}
		for _, c := range cs {
			c.mu.Lock()
			for p, ps := range c.parts {
				if lo, ok := ends.Lookup(c.topic, p); ok && lo.Err == nil {
					ps.raiseHighWater(lo.Offset)
				}
			}
			c.mu.Unlock()
		}
	}
}

// recordStop counts an integration the worker stopped.
func (c *consumer) recordStop(cause StopCause) {
	workerMetrics().stops.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("pool", c.deps.cfg.Pool), attribute.String("tenant", c.in.Tenant),
		attribute.String("integration", c.in.ID), attribute.String("reason", string(cause))))
}

// sinkMetrics are one sink's instruments with their attributes prepared,
// so recording allocates nothing per attempt.
type sinkMetrics struct {
	in      *instruments
	byOut   [3]metric.MeasurementOption // delivered, rejected, failed
	latency metric.RecordOption
}

func (m *instruments) forTenant(tenant string) *sinkMetrics {
	sm := &sinkMetrics{in: m}
	for i, o := range []string{"delivered", "rejected", "failed"} {
		sm.byOut[i] = metric.WithAttributes(attribute.String("tenant", tenant), attribute.String("outcome", o))
	}
	sm.latency = metric.WithAttributes(attribute.String("tenant", tenant))
	return sm
}

// recordAttempt counts an attempt and, for a delivery, its latency since
// ingestion.
func (m *sinkMetrics) recordAttempt(o webhook.Outcome, ingested time.Time) {
	ctx := context.Background()
	m.in.attempts.Add(ctx, 1, m.byOut[o].(metric.AddOption))
	if o == webhook.Delivered && !ingested.IsZero() {
		m.in.latency.Record(ctx, time.Since(ingested).Seconds(), m.latency)
	}
}

// spanStart starts the span of one attempt as a child of the trace the
// record carried from ingest (kafka headers), keeping parent's cancellation.
func spanStart(parent context.Context, remote trace.SpanContext, name string) (context.Context, trace.Span) {
	ctx := parent
	if remote.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(parent, remote)
	}
	return tracer.Start(ctx, name, clientSpan)
}

var clientSpan = trace.WithSpanKind(trace.SpanKindClient)
