// Package observability is the observability API service: a tenant lists the
// publish attempts the delivery workers recorded (GET
// /api/v1/org/integrations/published-events, shared/contract.md
// "Observability API"), pages through them with a keyset cursor, exports them
// as NDJSON, summarizes them (counts, response-time percentiles, a time
// series) and follows new ones live over Server-Sent Events.
//
// It only reads publish_attempts (day partitions written by pkg/catalog's
// attempt writer), where an S3 file's attempt is a row of many events: every
// answer shows one element per event, as if each had its own row. Failure modes: a slow or unreachable database makes list
// and summary requests fail with 500 after QueryTimeout (never a partial
// page); an export cut off by the database ends the stream early without a
// trailing newline-terminated error (the client sees a truncated body and
// the connection closed); the live tail keeps its clients open while polls
// fail and delivers the rows once the database answers again.
package observability

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/services/console"
)

// BasePath is where the API lives.
const BasePath = "/api/v1/org/integrations/published-events"

// Server is the observability API.
type Server struct {
	cfg      Config
	pool     *pgxpool.Pool
	store    *Store
	tail     *Tail
	verifier *auth.Verifier
	echo     *echo.Echo
	openapi  []byte
	log      *slog.Logger
}

// New builds the server over the catalog database pool, normally one opened
// with OpenPool (any pool works; OpenPool's settings make it fast and safe).
func New(cfg Config, pool *pgxpool.Pool, verifier *auth.Verifier) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pool == nil || verifier == nil {
		return nil, errors.New("observability: pool and verifier are required")
	}
	spec, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	log := slog.Default()
	s := &Server{cfg: cfg, pool: pool, store: NewStore(pool), verifier: verifier, openapi: spec, log: log,
		tail: NewTail(pool, cfg.TailInterval, cfg.TailLookback, cfg.TailBuffer, log)}
	s.echo = httpapi.New(httpapi.Options{BodyLimit: 1 << 10, Logger: log, Name: "observability"})
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	e := s.echo
	httpapi.Health(e, func(r *http.Request) error {
		// The driver's error names the database host and user; /readyz is
		// unauthenticated, so the detail goes to the log only.
		if err := s.pool.Ping(r.Context()); err != nil {
			s.log.Warn("readiness: pinging the catalog database", "err", err)
			return errors.New("catalog database unreachable")
		}
		return nil
	})
	e.GET("/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, s.openapi) })

	// The operator console's static pages ride along (the ingress routes
	// /console to this service); they call the APIs from the browser.
	e.Any(console.Prefix, echo.WrapHandler(console.Handler()))
	e.Any(console.Prefix+"/*", echo.WrapHandler(console.Handler()))

	g := e.Group(BasePath, s.verifier.Middleware(), auth.Require(auth.ScopeEventsRead), tenantScope)
	g.GET("", s.list)
	g.GET("/summary", s.summary)
	g.GET("/stream", s.stream)
}

// HandleMetrics serves h (the process's Prometheus metrics, see
// telemetry.MetricsHandler) at GET /metrics. Call it before Run or Serve.
func (s *Server) HandleMetrics(h http.Handler) { httpapi.Metrics(s.echo, h) }

// Handler serves the API, /openapi.json, /healthz and /readyz. The live tail
// needs RunTail (or Run/Serve) running.
func (s *Server) Handler() http.Handler { return s.echo }

// RunTail runs the live-tail poller until ctx ends (for a process that mounts
// Handler itself, like the all-in-one runner).
func (s *Server) RunTail(ctx context.Context) error { return s.tail.Run(ctx) }

// Run serves on cfg.Addr until ctx ends, then drains in-flight requests for
// at most cfg.ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.tail.Run(ctx) })
	g.Go(func() error {
		// No WriteTimeout: exports and live tails stream for as long as the
		// client reads; list and summary queries are bounded by QueryTimeout.
		return httpapi.Serve(ctx, ln, s.echo, httpapi.ServeOptions{Name: "observability",
			ShutdownTimeout: s.cfg.ShutdownTimeout, Logger: s.log})
	})
	return g.Wait()
}
