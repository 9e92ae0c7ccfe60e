// Command ingest serves POST /v1/events: it validates events and writes them
// to the tenants' Kafka topics. Configuration comes from the environment (see
// ingest.ConfigFromEnv).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/telemetry"
	"github.com/eventstream/eventstream/services/ingest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := ingest.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("ingest", os.Getenv))
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
	srv, err := ingest.New(cfg, client, catalog.New(pool, nil), verifier)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
