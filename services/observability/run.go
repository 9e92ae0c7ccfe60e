package observability

import (
	"context"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/telemetry"
)

// Run is the observability process: it reads the configuration through
// getenv (every variable checked before any connection opens), sets up
// telemetry (/metrics on the service's port, OTLP from the OTEL_* variables),
// opens its read-only catalog pool (OpenPool) and serves until ctx ends.
func Run(ctx context.Context, getenv func(string) string) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("observability", getenv))
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	pool, err := OpenPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	srv, err := New(cfg, pool, verifier)
	if err != nil {
		return err
	}
	srv.HandleMetrics(tel.MetricsHandler())
	return srv.Run(ctx)
}
