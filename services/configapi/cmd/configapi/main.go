// Command configapi serves the configuration API (see package configapi).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/webhook"
	"github.com/eventstream/eventstream/services/configapi"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "configapi:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := configapi.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	pool, err := catalog.OpenPool(ctx, cfg.DatabaseURL, catalog.PoolOptions{})
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Migrate {
		if _, err := catalog.Migrate(ctx, pool); err != nil {
			return err
		}
	}
	box, err := secrets.NewRing(cfg.Keyring())
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	// _retry sends with the same sender (and SSRF guard) as the delivery workers.
	retrier := webhook.Retrier{Sender: webhook.NewSender(webhook.Config{AllowCIDRs: cfg.WebhookAllowCIDRs, OwnHosts: cfg.OwnHosts})}
	srv, err := configapi.New(cfg, catalog.New(pool, box), verifier, retrier)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
