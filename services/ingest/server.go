// Package ingest is the ingest service: POST /v1/events validates events,
// writes them to the tenant's Kafka topic and answers only once Kafka has
// acknowledged every record (acks=all), so a 202 always means "durably in the
// log". Event ids are deterministic, which makes a retried publish safe.
package ingest

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/ratelimit"
	"github.com/eventstream/eventstream/pkg/webhook"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the service's OpenAPI 3 document (served at /openapi.json).
func OpenAPI() []byte { return openAPI }

// The metric attributes, built once: building them per request cost
// several allocations each (a request's records are counted as one Add).
var (
	outcomeInvalid     = metric.WithAttributes(attribute.String("outcome", "invalid"))
	outcomeFailed      = metric.WithAttributes(attribute.String("outcome", "failed"))
	outcomeAccepted    = metric.WithAttributes(attribute.String("outcome", "accepted"))
	outcomeRateLimited = metric.WithAttributes(attribute.String("outcome", "rate_limited"))
	producedOK         = metric.WithAttributes(attribute.Bool("ok", true))
	producedFailed     = metric.WithAttributes(attribute.Bool("ok", false))
)

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// Server is the ingest service.
type Server struct {
	cfg     Config
	client  *kgo.Client
	tenants *tenantCache
	limit   *ratelimit.Limiter // nil: no rate limit
	echo    *echo.Echo
	log     *slog.Logger
	now     func() time.Time

	events  metric.Int64Counter
	latency metric.Float64Histogram
}

// New builds the service. client must be a producer built with
// kafka.ProducerOpts (acks=all, idempotent, bounded delivery); store answers
// whether a tenant exists (cached, see Config.TenantCacheTTL); verifier checks
// bearer tokens.
func New(cfg Config, client *kgo.Client, store *catalog.Store, verifier *auth.Verifier) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil || store == nil || verifier == nil {
		return nil, errors.New("creating ingest server: kafka client, catalog store and verifier are required")
	}
	s := &Server{
		cfg:     cfg,
		client:  client,
		tenants: newTenantCache(store.TenantExists, cfg.TenantCacheTTL, cfg.TenantMissTTL),
		log:     slog.Default().With("service", "ingest"),
		now:     time.Now,
		limit:   ratelimit.New(cfg.RateLimit, cfg.RateBurst),
	}
	meter := otel.Meter("github.com/eventstream/eventstream/services/ingest")
	var err error
	if s.events, err = meter.Int64Counter("eventstream.ingest.events",
		metric.WithDescription("Events received, by outcome (accepted, invalid, failed, rate_limited).")); err != nil {
		return nil, fmt.Errorf("creating metrics: %w", err)
	}
	if s.latency, err = meter.Float64Histogram("eventstream.ingest.produce.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from producing a request's records to Kafka's acknowledgement of all of them.")); err != nil {
		return nil, fmt.Errorf("creating metrics: %w", err)
	}

	e := httpapi.New(httpapi.Options{BodyLimit: cfg.BodyLimit, Logger: s.log, Name: "ingest"})
	e.GET("/openapi.json", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPI) })
	// Probes must answer quickly even when a dependency hangs.
	probe := func(check func(context.Context) error) func(*http.Request) error {
		return func(r *http.Request) error {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			return check(ctx)
		}
	}
	httpapi.Health(e,
		probe(func(ctx context.Context) error { return kafka.Ping(ctx, client) }),
		probe(func(ctx context.Context) error { return store.Pool().Ping(ctx) }),
	)
	// refuseDeliveries runs first: a delivery fed back here is refused
	// whatever token it carries.
	e.POST("/v1/events", s.publish, refuseDeliveries, verifier.Middleware(), auth.Require(auth.ScopeEventsPublish))
	s.echo = e
	return s, nil
}

// Handler returns the HTTP handler: /v1/events, /openapi.json, /healthz,
// /readyz, and /metrics once HandleMetrics was called.
func (s *Server) Handler() http.Handler { return s.echo }

// HandleMetrics serves h (the process's Prometheus metrics, see
// telemetry.MetricsHandler) at GET /metrics. Call it before Run or Serve.
func (s *Server) HandleMetrics(h http.Handler) { httpapi.Metrics(s.echo, h) }

// Run serves on cfg.Addr until ctx ends, then drains in-flight requests
// (each bounded by ProduceTimeout) within ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	return httpapi.ListenAndServe(ctx, s.cfg.Addr, s.echo, s.serveOptions())
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return httpapi.Serve(ctx, ln, s.echo, s.serveOptions())
}

func (s *Server) serveOptions() httpapi.ServeOptions {
	// A full batch body must arrive within ReadTimeout.
	return httpapi.ServeOptions{Name: "ingest", ReadTimeout: 60 * time.Second,
		ShutdownTimeout: s.cfg.ShutdownTimeout, Logger: s.log}
}

// publish is POST /v1/events.
func (s *Server) publish(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	req, err := ParseEvents(body, Limits{MaxEventBytes: s.cfg.MaxEventBytes, MaxBatch: s.cfg.MaxBatch}, now)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	tenant, err := s.tenantFor(ctx, auth.FromContext(c), req.Tenant)
	if err != nil {
		return err
	}

	if err := s.rateLimit(c, tenant, req); err != nil {
		return err
	}

	enc := kafka.NewEncoder(ctx)
	recs, ids, err := records(enc, tenant, req, now)
	if err != nil {
		return err
	}
	// The values hold copies of the payloads: nothing refers to the body now.
	releaseBody(body)
	invalid := len(req.Events) - len(recs)
	if invalid > 0 {
		s.events.Add(ctx, int64(invalid), outcomeInvalid)
	}
	if len(recs) == 0 {
		return c.JSONBlob(http.StatusBadRequest, allInvalidBody(req, httpapi.RequestID(c)))
	}
	settled, err := s.produce(ctx, recs)
	if settled {
		enc.Release() // the client is done with every record
	}
	if err != nil {
		s.events.Add(ctx, int64(len(recs)), outcomeFailed)
		return err
	}
	s.events.Add(ctx, int64(len(recs)), outcomeAccepted)
	if !req.Batch {
		return c.JSONBlob(http.StatusAccepted, append(append([]byte(`{"event_id":"`), ids[0]...), `"}`...))
	}
	return c.JSONBlob(http.StatusAccepted, batchBody(req, ids, len(recs), invalid))
}

// refuseDeliveries refuses a request made by Event Stream's own webhook
// sender (it carries webhook.HeaderDelivery): an integration whose callback
// is this API (directly, or through a relay forwarding headers) would
// otherwise publish every delivered event again, without end. The answer is
// 400 on purpose: the sender treats a 400 as "rejected" (stored as a rejected
// event, never retried), so the loop ends at the first turn; any other 4xx
// would be retried with backoff and then stop the integration.
func refuseDeliveries(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Header.Get(webhook.HeaderDelivery) != "" {
			return httpapi.NewError(http.StatusBadRequest, "delivery_loop",
				"this request is an Event Stream webhook delivery ("+webhook.HeaderDelivery+
					" header); a delivery is never published again: point the integration's callback_url at your own endpoint")
		}
		return next(c)
	}
}

// rateLimit takes the request's valid events from the tenant's bucket, or
// refuses the whole request with 429 and Retry-After (nothing is published).
func (s *Server) rateLimit(c echo.Context, tenant string, req *Request) error {
	if s.limit == nil {
		return nil
	}
	n := 0
	for i := range req.Events {
		if req.Events[i].Err == nil {
			n++
		}
	}
	ok, wait := s.limit.Allow(tenant, n)
	if ok {
		return nil
	}
	secs := ratelimit.RetryAfterSeconds(wait)
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	s.events.Add(c.Request().Context(), int64(n), outcomeRateLimited)
	return httpapi.NewError(http.StatusTooManyRequests, "rate_limited",
		fmt.Sprintf("tenant %q is over its publish rate (%g events/s, bursts of %d); nothing of this request was published; retry after %d s",
			tenant, s.cfg.RateLimit, s.limit.Burst(), secs))
}

// readBody reads the request body into a buffer of its declared length:
// io.ReadAll would grow (and copy) a batch body many times over. The buffer
// comes from the bodies of earlier requests when one is large enough (see
// releaseBody). Chunked bodies take httpapi.ReadBody. The body limit was
// enforced by httpapi on ContentLength already.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength < 0 || r.ContentLength > s.cfg.BodyLimit {
		return httpapi.ReadBody(c)
	}
	var buf []byte
	if p, _ := bodies.Get().(*[]byte); p != nil && int64(cap(*p)) >= r.ContentLength {
		buf = (*p)[:r.ContentLength]
	} else {
		buf = make([]byte, r.ContentLength)
	}
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return nil, httpapi.BadRequest("reading request body: %v", err)
	}
	return buf, nil
}

// bodies holds the buffers of request bodies nothing refers to any more, for
// readBody: a batch body is the largest allocation of a request.
var bodies sync.Pool // of *[]byte

// maxPooledBody bounds the buffers kept: a rare huge body is left to the
// collector rather than pinned in the pool.
const maxPooledBody = 8 << 20

// releaseBody hands body to the next readBody. Nothing may refer to its
// bytes any more: the parsed strings are copies and the payloads were
// copied into the records' values.
func releaseBody(body []byte) {
	if cap(body) <= maxPooledBody {
		body = body[:0]
		bodies.Put(&body)
	}
}

// tenantFor decides which tenant a request publishes for. A tenant token
// publishes only for its own tenant; naming another one in the body needs the
// platform scope.
func (s *Server) tenantFor(ctx context.Context, p *auth.Principal, named string) (string, error) {
	tenant := p.Tenant
	if named != "" && named != p.Tenant {
		if !p.Has(auth.ScopePlatform) {
			return "", httpapi.NewError(http.StatusForbidden, "forbidden",
				fmt.Sprintf("tenant: this token publishes for tenant %q only; naming another tenant needs the platform scope", p.Tenant))
		}
		tenant = named
	}
	if tenant == "" {
		return "", httpapi.BadRequest("tenant: required: this platform token names no tenant, so the body must")
	}
	ok, err := s.tenants.Exists(ctx, tenant)
	if err != nil {
		return "", httpapi.NewError(http.StatusServiceUnavailable, "unavailable", "checking the tenant: the catalog is unavailable; retry")
	}
	if !ok {
		return "", httpapi.NewError(http.StatusNotFound, "tenant_not_found", fmt.Sprintf("tenant %q does not exist", tenant))
	}
	return tenant, nil
}

// produce writes recs and waits until Kafka acknowledged all of them, or
// ProduceTimeout passed. Records of one request are produced together (the
// client batches them per partition); nothing here starts a goroutine per
// record. The wait itself is bounded too: even if a broker accepted a request
// and then hung, the caller gets its 503 on time. Such a record may still land
// later; the client's retry then carries the same event id. settled reports
// whether the promises of all records ran (acknowledged or failed), so the
// client holds none of them any more.
func (s *Server) produce(ctx context.Context, recs []*kgo.Record) (settled bool, _ error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProduceTimeout)
	defer cancel()
	w := &ackWait{done: make(chan struct{})}
	w.pending.Store(int64(len(recs)))
	promise := w.promise // one method value: taking it per record allocates per record
	for _, r := range recs {
		s.client.Produce(ctx, r, promise)
	}
	select {
	case <-w.done:
		settled = true
	case <-ctx.Done():
		w.fail(ctx.Err())
	}
	err := w.err()
	outcome := producedFailed
	if err == nil {
		outcome = producedOK
	}
	s.latency.Record(ctx, time.Since(start).Seconds(), outcome)
	if err == nil {
		return settled, nil
	}
	s.log.Warn("producing events failed", "records", len(recs), "err", err)
	msg := fmt.Sprintf("the event log did not acknowledge the events within %s (%v); nothing is acknowledged; "+
		"retry: the same events get the same event ids", s.cfg.ProduceTimeout, err)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		msg = "the tenant's event topic does not exist (provision the tenant); nothing is acknowledged"
	}
	return settled, httpapi.NewError(http.StatusServiceUnavailable, "unavailable", msg)
}

// ackWait collects the promises of one request's records.
type ackWait struct {
	pending  atomic.Int64
	done     chan struct{}
	mu       sync.Mutex
	firstErr error
}

func (w *ackWait) promise(_ *kgo.Record, err error) {
	if err != nil {
		w.fail(err)
	}
	if w.pending.Add(-1) == 0 {
		close(w.done)
	}
}

func (w *ackWait) fail(err error) {
	w.mu.Lock()
	if w.firstErr == nil {
		w.firstErr = err
	}
	w.mu.Unlock()
}

func (w *ackWait) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstErr
}

// batchBody renders the 202 of a batch:
// {"results":[{"index":0,"event_id":"..."},{"index":1,"error":{...}}],"accepted":n,"rejected":m}.
func batchBody(req *Request, ids []string, accepted, rejected int) []byte {
	b := make([]byte, 0, 64+len(req.Events)*64)
	b = append(b, `{"results":[`...)
	for i := range req.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		if e := req.Events[i].Err; e != nil {
			b = append(b, `,"error":{"error_code":`...)
			b = strconv.AppendQuote(b, e.Code) // codes are ASCII identifiers
			b = append(b, `,"message":`...)
			b = append(b, quoteJSON(e.Message)...)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"event_id":"`...)
		b = append(b, ids[i]...)
		b = append(b, `"}`...)
	}
	b = append(b, `],"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(rejected), 10)
	return append(b, '}')
}

// allInvalidBody is the 400 of a batch none of whose events is valid: the
// usual error body plus the per-event results. (An invalid single event is
// refused by ParseEvents already.)
func allInvalidBody(req *Request, requestID string) []byte {
	msg := fmt.Sprintf("all %d events are invalid; first: %s", len(req.Events), req.Events[0].Err.Message)
	b := []byte(`{"error_code":"invalid_events","message":`)
	b = append(b, quoteJSON(msg)...)
	b = append(b, `,"request_id":`...)
	b = append(b, quoteJSON(requestID)...)
	b = append(b, ',')
	inner := batchBody(req, nil, 0, len(req.Events))
	return append(b, inner[1:]...) // splice {"results":...} into this object
}

// quoteJSON returns s as a JSON string literal.
func quoteJSON(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
