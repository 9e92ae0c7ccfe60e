// Package configapi is the configuration API service: tenants register, update,
// start, stop and delete their integrations, read integration logs and manage
// rejected events under /api/v1/org/integrations/eventstream (see
// shared/contract.md, "Configuration API"). Everything is stored in the
// catalog; delivery workers learn about changes from the catalog's NOTIFY.
package configapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/httpapi"
	"github.com/eventstream/eventstream/pkg/ratelimit"
)

// BasePath is where the API lives.
const BasePath = "/api/v1/org/integrations/eventstream"

// Retrier sends a rejected event to its integration's endpoint again. It
// returns the endpoint's HTTP status, or an error when no answer came (the
// webhook delivery package implements it).
type Retrier interface {
	Retry(ctx context.Context, in *catalog.Integration, ev *catalog.RejectedEvent) (status int, err error)
}

// Server is the configuration API.
type Server struct {
	cfg      Config
	store    *catalog.Store
	verifier *auth.Verifier
	retrier  Retrier
	echo     *echo.Echo
	openapi  []byte
	log      *slog.Logger
	// retryLimit is the per-tenant _retry bucket (nil: no limit).
	retryLimit *ratelimit.Limiter
}

// New builds the server. retrier may be nil: the _retry endpoint then answers
// 503 until a sender is wired in.
func New(cfg Config, store *catalog.Store, verifier *auth.Verifier, retrier Retrier) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || verifier == nil {
		return nil, errors.New("configapi: store and verifier are required")
	}
	spec, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: store, verifier: verifier, retrier: retrier, openapi: spec, log: slog.Default(),
		retryLimit: ratelimit.New(cfg.RetryRate, cfg.RetryBurst)}
	s.echo = httpapi.New(httpapi.Options{BodyLimit: cfg.BodyLimit, Logger: s.log, Name: "configapi"})
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	e := s.echo
	httpapi.Health(e, func(r *http.Request) error {
		// The driver's error names the database host and user; /readyz is
		// unauthenticated, so the detail goes to the log only.
		if err := s.store.Pool().Ping(r.Context()); err != nil {
			s.log.Warn("readiness: pinging the catalog database", "err", err)
			return errors.New("catalog database unreachable")
		}
		return nil
	})
	e.GET("/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, s.openapi) })

	read := []echo.MiddlewareFunc{auth.Require(auth.ScopeIntegrationsRead), s.tenantScope}
	write := []echo.MiddlewareFunc{auth.Require(auth.ScopeIntegrationsWrite), s.tenantScope}
	// Path ids are checked before anything reads them: a malformed one is a
	// 404 with the error body, never a query (Postgres refuses NUL bytes and
	// invalid UTF-8 with an error that would be a 500).
	g := e.Group(BasePath, s.verifier.Middleware(), validPathIDs)
	g.GET("", s.list, read...)
	g.POST("", s.register, write...)
	g.GET("/:id", s.get, read...)
	g.PATCH("/:id", s.patch, write...)
	g.DELETE("/:id", s.delete, write...)
	g.POST("/:id/_start", s.start, write...)
	g.POST("/:id/_stop", s.stop, write...)
	g.GET("/:id/logs", s.logs, read...)
	g.GET("/:id/rejected_events", s.listRejected, read...)
	g.GET("/:id/rejected_events/:event_id", s.getRejected, read...)
	g.DELETE("/:id/rejected_events/:event_id", s.deleteRejected, write...)
	g.POST("/:id/rejected_events/:event_id/_retry", s.retry, write...)
}

// Handler serves the API, /openapi.json, /healthz and /readyz, and /metrics
// once HandleMetrics was called.
func (s *Server) Handler() http.Handler { return s.echo }

// HandleMetrics serves h (the process's Prometheus metrics, see
// telemetry.MetricsHandler) at GET /metrics. Call it before Run or Serve.
func (s *Server) HandleMetrics(h http.Handler) { httpapi.Metrics(s.echo, h) }

// Run serves on cfg.Addr until ctx ends, then drains in-flight requests for
// at most cfg.ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	return httpapi.ListenAndServe(ctx, s.cfg.Addr, s.echo, s.serveOptions())
}

// Serve is Run on an existing listener (tests and the all-in-one runner pick
// their own ports). It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return httpapi.Serve(ctx, ln, s.echo, s.serveOptions())
}

func (s *Server) serveOptions() httpapi.ServeOptions {
	return httpapi.ServeOptions{Name: "configapi", ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		ShutdownTimeout: s.cfg.ShutdownTimeout, Logger: s.log}
}
