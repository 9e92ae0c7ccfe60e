// Package worker assembles a delivery worker process from its environment:
// configuration, the catalog pool and keyring, the S3 sink, telemetry, and
// its HTTP port (DELIVERY_ADDR: /healthz, /readyz, /metrics). The delivery
// binary's main and the tests that run workers as processes (to kill them
// like crashed pods) share it, so they run the same wiring.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/memlimit"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/telemetry"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

// readyTimeout bounds one /readyz check (its Postgres and Kafka pings).
const readyTimeout = 2 * time.Second

// Run reads the worker's configuration through getenv (every variable is
// checked before any connection opens), then delivers until ctx ends and
// drains. Its HTTP port answers from the start (liveness during a slow
// start) until the drain is over.
func Run(ctx context.Context, getenv func(string) string) error {
	// Both loaders run first, so one start reports every bad variable.
	cfg, err := delivery.ConfigFromEnv(getenv)
	s3cfg, s3err := s3sink.ConfigFromEnv(getenv)
	if cfg.DatabaseURL == "" || len(cfg.SecretsKeys) == 0 {
		err = errors.Join(err, errors.New("DATABASE_URL and SECRETS_KEYS (or SECRETS_KEY) are required"))
	}
	if err = errors.Join(err, s3err); err != nil {
		return fmt.Errorf("reading the delivery worker's config: %w", err)
	}
	box, err := secrets.NewRing(cfg.SecretsKeys)
	if err != nil {
		return fmt.Errorf("SECRETS_KEYS: %w", err)
	}
	// Before the S3 buffer pool is sized from it: a quarter of the limit.
	if soft, err := memlimit.Apply("/", getenv); err != nil {
		slog.Warn("reading the container's memory limit", "err", err)
	} else if soft > 0 {
		slog.Info("memory limit from the container", "gomemlimit_bytes", soft, "fraction", memlimit.Fraction)
	}
	s3, err := s3sink.NewFactory(s3cfg, slog.Default())
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("delivery", getenv))
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("DELIVERY_ADDR: listening on %s: %w", cfg.Addr, err)
	}
	pool, err := catalog.OpenPool(ctx, cfg.DatabaseURL, catalog.PoolOptions{MaxConns: int32(cfg.DatabaseMaxConns)})
	if err != nil {
		ln.Close()
		return err
	}
	defer pool.Close()
	svc, err := delivery.New(cfg, catalog.New(pool, box), pool, delivery.WithSink(catalog.TargetS3, s3.NewSink))
	if err != nil {
		ln.Close()
		return err
	}
	// The port outlives the delivery context: it closes once the drain is
	// over, so /healthz keeps answering while in-flight work finishes.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	var g errgroup.Group
	g.Go(func() error { return serve(serveCtx, ln, Handler(svc, tel.MetricsHandler())) })
	runErr := svc.Run(ctx)
	stopServing()
	return errors.Join(runErr, g.Wait())
}

// Handler serves the worker's port: /healthz (the process is alive),
// /readyz (svc.Ready: supervisor polling, Postgres and Kafka reachable) and
// /metrics (Prometheus).
func Handler(svc *delivery.Service, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := svc.Ready(ctx); err != nil {
			// The drivers' errors name hosts and users and /readyz is
			// unauthenticated: the detail goes to the log only.
			slog.Warn("delivery readiness", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unavailable","message":"not ready (the worker's log says why)"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	mux.Handle("GET /metrics", metrics)
	return mux
}

// serve serves h on ln until ctx ends, then shuts down (probes and scrapes
// are short: a bounded wait).
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	slog.Info("delivery listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving the delivery port: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the delivery port: %w", err)
	}
	return nil
}
