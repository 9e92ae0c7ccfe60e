package eventstream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/kafka"
	"github.com/eventstream/eventstream/pkg/s3local"
	"github.com/eventstream/eventstream/pkg/webhook"
	"github.com/eventstream/eventstream/services/configapi"
	"github.com/eventstream/eventstream/services/console"
	"github.com/eventstream/eventstream/services/delivery"
	"github.com/eventstream/eventstream/services/delivery/s3sink"
	"github.com/eventstream/eventstream/services/ingest"
	"github.com/eventstream/eventstream/services/observability"
)

// deps are what the local stack shares with the services it embeds.
type deps struct {
	// getenv is the environment the services read their Config from
	// (process environment over the local stack's values).
	getenv     func(string) string
	pool       *pgxpool.Pool
	store      *catalog.Store
	brokers    []string
	s3Endpoint string
	log        *slog.Logger
	// topics holds the tenant topic settings (the Topic* fields).
	topics Config
}

// localEnv holds the values the embedded services need that the local stack
// makes up itself. The process environment overrides any of them.
func localEnv(keys LocalSecrets, dbURL string, brokers []string, s3Endpoint string) map[string]string {
	return map[string]string{
		"DATABASE_URL":      dbURL,
		"KAFKA_BROKERS":     strings.Join(brokers, ","),
		"S3_ENDPOINT":       s3Endpoint,
		"SECRETS_KEY":       keys.SecretsKey,
		"AUTH_HS256_SECRET": keys.HS256Secret,
		// The embedded S3 endpoint (like MinIO) wants bucket-in-path addressing.
		"S3_FORCE_PATH_STYLE": "true",
		// Webhooks may call loopback, where a developer's test receiver listens.
		"WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8,::1/128",
	}
}

// buildServices builds every service this build embeds. HTTP services are
// mounted on the base URL through Handler (their own Run, a listener of their
// own, is not used); workers run through Run. Adding a service is one builder
// and one line here.
func buildServices(ctx context.Context, d deps) ([]Service, error) {
	dl, err := newDelivery(d)
	if err != nil {
		return nil, err
	}
	out := []Service{{Name: "delivery", Run: dl.Run, Ready: dl.Ready}}
	add := func(svc Service, err error) error {
		if err != nil {
			closeServices(out)
			return err
		}
		out = append(out, svc)
		return nil
	}
	// _retry of a rejected event goes through the delivery workers' own
	// webhook sender: same SSRF guard, timeouts and connection pool.
	if err := add(buildConfigAPI(ctx, d, webhook.Retrier{Sender: dl.Sender()})); err != nil {
		return nil, err
	}
	if err := add(buildIngest(ctx, d)); err != nil {
		return nil, err
	}
	if err := add(buildObservability(ctx, d)); err != nil {
		return nil, err
	}
	// The console is static files calling the public APIs from the browser.
	out = append(out, Service{Name: "console", Prefixes: []string{console.Prefix}, Handler: console.Handler(), Pages: true})
	return out, nil
}

// newDelivery builds the delivery worker with its webhook and S3 sinks; it
// serves every tenant (the "*" pool).
func newDelivery(d deps) (*delivery.Service, error) {
	cfg, err := delivery.ConfigFromEnv(d.getenv)
	if err != nil {
		return nil, err
	}
	s3cfg, err := s3sink.ConfigFromEnv(d.getenv)
	if err != nil {
		return nil, err
	}
	s3, err := s3sink.NewFactory(s3cfg, slog.Default())
	if err != nil {
		return nil, err
	}
	dl, err := delivery.New(cfg, d.store, d.pool, delivery.WithSink(catalog.TargetS3, s3.NewSink))
	if err != nil {
		return nil, fmt.Errorf("building delivery: %w", err)
	}
	return dl, nil
}

// closeServices releases what the services hold (clients), after they stopped.
func closeServices(services []Service) {
	for i := len(services) - 1; i >= 0; i-- {
		if services[i].Close != nil {
			services[i].Close()
		}
	}
}

func buildConfigAPI(ctx context.Context, d deps, retrier configapi.Retrier) (Service, error) {
	cfg, err := configapi.ConfigFromEnv(d.getenv)
	if err != nil {
		return Service{}, err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return Service{}, err
	}
	srv, err := configapi.New(cfg, d.store, verifier, retrier)
	if err != nil {
		return Service{}, fmt.Errorf("building configapi: %w", err)
	}
	return Service{Name: "configapi", Prefixes: []string{configapi.BasePath}, Handler: srv.Handler()}, nil
}

func buildIngest(ctx context.Context, d deps) (Service, error) {
	cfg, err := ingest.ConfigFromEnv(d.getenv)
	if err != nil {
		return Service{}, err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return Service{}, err
	}
	client, err := kafka.NewProducer(cfg.Brokers, cfg.ProduceTimeout, kgo.ClientID("eventstream-ingest"))
	if err != nil {
		return Service{}, err
	}
	srv, err := ingest.New(cfg, client, d.store, verifier)
	if err != nil {
		client.Close()
		return Service{}, fmt.Errorf("building ingest: %w", err)
	}
	return Service{Name: "ingest", Prefixes: []string{"/v1/events"}, Handler: srv.Handler(), Close: client.Close}, nil
}

// buildObservability mounts the observability API; its Run is the live-tail
// poller (the HTTP side is served through Handler like every other API).
func buildObservability(ctx context.Context, d deps) (Service, error) {
	cfg, err := observability.ConfigFromEnv(d.getenv)
	if err != nil {
		return Service{}, err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return Service{}, err
	}
	// Its own read-only pool with generic plans (see observability.OpenPool).
	pool, err := observability.OpenPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return Service{}, err
	}
	srv, err := observability.New(cfg, pool, verifier)
	if err != nil {
		pool.Close()
		return Service{}, fmt.Errorf("building observability: %w", err)
	}
	return Service{Name: "observability", Prefixes: []string{observability.BasePath}, Handler: srv.Handler(),
		Run: srv.RunTail, Close: pool.Close}, nil
}

// provisionTenant makes tenant usable: its catalog row and its Kafka topic.
// It is idempotent.
func provisionTenant(ctx context.Context, d deps, tenant string) error {
	if err := d.store.CreateTenant(ctx, tenant); err != nil {
		return err
	}
	return provisionTopic(ctx, d, tenant)
}

// provisionTopic creates the tenant's topic (or raises its settings).
func provisionTopic(ctx context.Context, d deps, tenant string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.brokers...))
	if err != nil {
		return fmt.Errorf("creating kafka admin client: %w", err)
	}
	defer cl.Close()
	t := d.topics
	return kafka.ProvisionTenantTopic(ctx, kadm.NewClient(cl), tenant, kafka.TopicSettings{Partitions: t.TopicPartitions,
		Replication: t.TopicReplication, Retention: t.TopicRetention, MinInsyncReplicas: t.TopicMinInsync})
}

// startEmbeddedS3 serves an S3-compatible endpoint over dir. Any key pair is
// accepted, so integrations registered locally may use whatever keys they like.
func startEmbeddedS3(ctx context.Context, s *Stack, dir string) (string, error) {
	// Not ctx: the endpoint must outlive the services that drain into it; it
	// is closed with the other infrastructure at the end.
	srv, err := s3local.Start(context.WithoutCancel(ctx), dir, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.S3Port)))
	if err != nil {
		return "", fmt.Errorf("starting the embedded S3 endpoint (EVENTSTREAM_S3_PORT=%d; set S3_ENDPOINT to use another): %w", s.cfg.S3Port, err)
	}
	s.closers = append(s.closers, func() {
		s.log.Info("stopping s3 endpoint")
		_ = srv.Close()
	})
	s.log.Info("s3 endpoint started", "url", srv.URL(), "dir", dir)
	return srv.URL(), nil
}
