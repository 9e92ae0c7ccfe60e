// Command delivery runs a delivery worker (see package delivery): webhook and
// S3 delivery for the running integrations of its pool's tenants.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/telemetry"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "delivery:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := delivery.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	s3cfg, err := s3sink.ConfigFromEnv(os.Getenv)
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
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("delivery", os.Getenv))
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	pool, err := catalog.OpenPool(ctx, cfg.DatabaseURL, catalog.PoolOptions{MaxConns: int32(cfg.DatabaseMaxConns)})
	if err != nil {
		return err
	}
	defer pool.Close()
	s3, err := s3sink.NewFactory(s3cfg, slog.Default())
	if err != nil {
		return err
	}
	svc, err := delivery.New(cfg, catalog.New(pool, box), pool, delivery.WithSink(catalog.TargetS3, s3.NewSink))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
