package configapi

import (
	"context"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/telemetry"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// Run is the configapi process: it reads the configuration through getenv
// (every variable checked before any connection opens), sets up telemetry
// (/metrics on the service's port, OTLP from the OTEL_* variables), opens
// the catalog and serves until ctx ends.
func Run(ctx context.Context, getenv func(string) string) error {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	box, err := secrets.NewRing(cfg.Keyring())
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("configapi", getenv))
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit
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
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	// _retry sends with the same sender (and SSRF guard) as the delivery workers.
	retrier := webhook.Retrier{Sender: webhook.NewSender(webhook.Config{AllowCIDRs: cfg.WebhookAllowCIDRs, OwnHosts: cfg.OwnHosts})}
	srv, err := New(cfg, catalog.New(pool, box), verifier, retrier)
	if err != nil {
		return err
	}
	srv.HandleMetrics(tel.MetricsHandler())
	return srv.Run(ctx)
}
