// Command observability serves the observability API (see package
// observability). Configuration comes from the environment.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/buildinfo"
	"github.com/eventstream/eventstream/pkg/telemetry"
	"github.com/eventstream/eventstream/services/observability"
)

// version is set at build time: -ldflags "-X main.version=<tag>".
var version = "dev"

func main() {
	if buildinfo.Requested(os.Args[1:]) {
		buildinfo.Print(os.Stdout, "observability", version)
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := observability.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("observability", os.Getenv))
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
	pool, err := observability.OpenPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	srv, err := observability.New(cfg, pool, verifier)
	if err != nil {
		return err
	}
	srv.HandleMetrics(tel.MetricsHandler())
	return srv.Run(ctx)
}
