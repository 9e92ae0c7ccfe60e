// Package worker assembles a delivery worker process from its environment:
// configuration, the catalog pool and keyring, the S3 sink, telemetry. The
// delivery binary's main and the tests that run workers as processes (to
// kill them like crashed pods) share it, so they run the same wiring.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/telemetry"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

// Run reads the worker's configuration through getenv (every variable is
// checked before any connection opens), then delivers until ctx ends and
// drains.
func Run(ctx context.Context, getenv func(string) string) error {
	cfg, err := delivery.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	s3cfg, err := s3sink.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" || len(cfg.SecretsKeys) == 0 {
		return errors.New("DATABASE_URL and SECRETS_KEYS (or SECRETS_KEY) are required")
	}
	box, err := secrets.NewRing(cfg.SecretsKeys)
	if err != nil {
		return fmt.Errorf("SECRETS_KEYS: %w", err)
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
	pool, err := catalog.OpenPool(ctx, cfg.DatabaseURL, catalog.PoolOptions{MaxConns: int32(cfg.DatabaseMaxConns)})
	if err != nil {
		return err
	}
	defer pool.Close()
	svc, err := delivery.New(cfg, catalog.New(pool, box), pool, delivery.WithSink(catalog.TargetS3, s3.NewSink))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
