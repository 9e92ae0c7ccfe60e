package ingest

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/telemetry"
)

// Run is the ingest process: it reads the configuration through getenv
// (every variable checked before any connection opens), sets up telemetry
// (/metrics on the service's port, OTLP from the OTEL_* variables), opens
// the catalog and the Kafka producer, and serves until ctx ends.
func Run(ctx context.Context, getenv func(string) string) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("ingest", getenv))
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	pool, err := catalog.OpenPool(ctx, cfg.DatabaseURL, catalog.PoolOptions{})
	if err != nil {
		return err
	}
	defer pool.Close()
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	client, err := kafka.NewProducer(cfg.Brokers, cfg.ProduceTimeout, kgo.ClientID("eventstream-ingest"))
	if err != nil {
		return err
	}
	defer client.Close()
	// Ingest reads tenants only, never integration secrets: no secrets box.
	srv, err := New(cfg, client, catalog.New(pool, nil), verifier)
	if err != nil {
		return err
	}
	srv.HandleMetrics(tel.MetricsHandler())
	return srv.Run(ctx)
}
