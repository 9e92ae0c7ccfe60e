package eventstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/pgserver"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/telemetry"
)

// databaseName is the database the local stack creates in its own cluster.
const databaseName = "eventstream"

// startReadyTimeout bounds the wait for every service to be ready before the
// stack reports itself running.
const startReadyTimeout = time.Minute

// Stack is the whole system on loopback in one process: Postgres, the broker
// and S3 (embedded unless real ones are configured), and every service behind
// one base URL.
type Stack struct {
	cfg    Config
	getenv func(string) string
	out    io.Writer
	log    *slog.Logger

	// closers run in reverse order at shutdown (the infrastructure last).
	closers []func()
}

// NewStack prepares a stack; Run starts it.
func NewStack(cfg Config, getenv func(string) string, out io.Writer, log *slog.Logger) (*Stack, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Stack{cfg: cfg, getenv: getenv, out: out, log: log}, nil
}

// Run starts everything, prints the URLs and a demo token to out, serves until
// ctx ends, then stops the services (draining) and the infrastructure.
func (s *Stack) Run(ctx context.Context) (err error) {
	defer s.close()
	dir, err := filepath.Abs(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("resolving data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, unlock)
	keys, err := loadOrCreateSecrets(dir)
	if err != nil {
		return err
	}

	dbURL, err := s.startPostgres(ctx, dir)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	s.closers = append(s.closers, pool.Close)
	applied, err := catalog.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		s.log.Info("applied migrations", "migrations", applied)
	}

	brokers, err := s.startKafka(dir)
	if err != nil {
		return err
	}
	s3Endpoint, err := s.startS3(ctx, dir)
	if err != nil {
		return err
	}

	env := s.env(keys, dbURL, brokers, s3Endpoint)
	keyring, err := secrets.KeysFromEnv(env) // SECRETS_KEYS, else SECRETS_KEY
	if err != nil {
		return err
	}
	box, err := secrets.NewRing(keyring)
	if err != nil {
		return err
	}
	store := catalog.New(pool, box)
	// Telemetry before the services: they create their instruments in New.
	// Metrics are served at /metrics; OTEL_EXPORTER_OTLP_ENDPOINT exports too.
	tel, err := telemetry.Setup(ctx, telemetry.ConfigFromEnv("eventstream", env))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(flushCtx)
	})
	d := deps{getenv: env, pool: pool, store: store, brokers: brokers, s3Endpoint: s3Endpoint, log: s.log, topics: s.cfg}
	services, err := buildServices(ctx, d)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { closeServices(services) })
	if err := provisionTenant(ctx, d, s.cfg.DemoTenant); err != nil {
		return err
	}
	token, err := auth.Mint(env("AUTH_HS256_SECRET"), s.cfg.DemoTenant, auth.AllTenantScopes, s.cfg.TokenTTL)
	if err != nil {
		return err
	}

	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s (set EVENTSTREAM_ADDR to use another address): %w", s.cfg.Addr, err)
	}
	baseURL := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: newRouter(services, tel.MetricsHandler()), ReadHeaderTimeout: 10 * time.Second}

	// Everything long-running shares one context: the first to fail stops the rest.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("serving %s: %w", baseURL, err))
		}
	})
	for _, svc := range services {
		if svc.Run == nil {
			continue
		}
		wg.Go(func() {
			if err := svc.Run(runCtx); err != nil && runCtx.Err() == nil {
				cancel(fmt.Errorf("running %s: %w", svc.Name, err))
			}
		})
	}

	// "Running" means ready: the banner and the stack file (what `make run`
	// users, the admin commands and the tests wait for) come once every
	// service answers ready, or with a warning naming those that do not.
	if ok, states := waitReady(runCtx, services, startReadyTimeout); !ok && runCtx.Err() == nil {
		s.log.Warn("not every service is ready yet; /readyz tells when they are", "services", states)
	}
	info := StackInfo{PID: os.Getpid(), BaseURL: baseURL, DatabaseURL: dbURL, KafkaBrokers: brokers, S3Endpoint: s3Endpoint}
	if err := writeStackInfo(dir, info); err != nil {
		cancel(err)
	}
	s.closers = append(s.closers, func() { _ = os.Remove(filepath.Join(dir, stackFile)) })
	s.printBanner(info, services, token)
	s.log.Info("local stack running", "base_url", baseURL, "data_dir", dir)

	<-runCtx.Done()
	cause := context.Cause(runCtx)
	if ctx.Err() != nil {
		cause = nil // Ctrl-C: a clean stop, not an error
		s.log.Info("stopping")
	} else {
		s.log.Error("stopping after a failure", "err", cause)
	}
	cancel(nil)
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("http server did not drain in time", "err", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-shutdownCtx.Done():
		return fmt.Errorf("services did not stop within %s", s.cfg.ShutdownTimeout)
	}
	return cause
}

func (s *Stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// startPostgres returns the catalog's URL: DATABASE_URL, or the local cluster
// in dir/postgres (created on first run, kept afterwards).
func (s *Stack) startPostgres(ctx context.Context, dir string) (string, error) {
	if s.cfg.DatabaseURL != "" {
		s.log.Info("using postgres from DATABASE_URL")
		return s.cfg.DatabaseURL, nil
	}
	pgDir := filepath.Join(dir, "postgres")
	first := !exists(filepath.Join(pgDir, "PG_VERSION"))
	if first {
		s.log.Info("creating the local postgres cluster (first run)", "dir", pgDir)
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: pgDir, Port: s.cfg.PostgresPort})
	if err != nil {
		return "", fmt.Errorf("starting postgres (EVENTSTREAM_POSTGRES_PORT=%d; set DATABASE_URL to use another server): %w", s.cfg.PostgresPort, err)
	}
	s.closers = append(s.closers, func() {
		s.log.Info("stopping postgres")
		_ = srv.Stop()
	})
	if err := ensureDatabase(ctx, srv.URL("postgres"), databaseName); err != nil {
		return "", err
	}
	s.log.Info("postgres started", "port", srv.Port)
	return srv.URL(databaseName), nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		return fmt.Errorf("checking database %s: %w", name, err)
	}
	if ok {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// startKafka returns the seed brokers: KAFKA_BROKERS, or the embedded kfake
// broker whose log lives in dir/kafka (so events survive a restart).
func (s *Stack) startKafka(dir string) ([]string, error) {
	if len(s.cfg.KafkaBrokers) > 0 {
		s.log.Info("using kafka from KAFKA_BROKERS", "brokers", s.cfg.KafkaBrokers)
		return s.cfg.KafkaBrokers, nil
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(s.cfg.KafkaPort),
		kfake.DataDir(filepath.Join(dir, "kafka")),
		// Committed offsets outlive the 30-day restart promise (and the
		// worker's DELIVERY_OFFSET_RETENTION check), as on real brokers.
		kfake.BrokerConfigs(map[string]string{"offsets.retention.minutes": "64800"}),
	)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded kafka broker on port %d (EVENTSTREAM_KAFKA_PORT; set KAFKA_BROKERS to use a real one): %w", s.cfg.KafkaPort, err)
	}
	s.closers = append(s.closers, func() {
		s.log.Info("stopping kafka broker")
		c.Close() // persists the log to the data dir
	})
	brokers := c.ListenAddrs()
	s.log.Info("kafka broker started", "brokers", brokers)
	return brokers, nil
}

// startS3 returns the S3 endpoint: S3_ENDPOINT, or the embedded one serving
// dir/s3.
func (s *Stack) startS3(ctx context.Context, dir string) (string, error) {
	if s.cfg.S3Endpoint != "" {
		s.log.Info("using S3 from S3_ENDPOINT", "endpoint", s.cfg.S3Endpoint)
		return s.cfg.S3Endpoint, nil
	}
	return startEmbeddedS3(ctx, s, filepath.Join(dir, "s3"))
}

// env is the environment the embedded services read their configuration
// from: the process environment first, then the local stack's values
// (generated keys, the embedded servers' addresses, loopback callbacks allowed).
func (s *Stack) env(keys LocalSecrets, dbURL string, brokers []string, s3Endpoint string) func(string) string {
	local := localEnv(keys, dbURL, brokers, s3Endpoint)
	local["PUBLIC_HOSTS"] = s.cfg.PublicHosts // webhooks may not call the stack itself
	return func(k string) string {
		if v := s.getenv(k); v != "" {
			return v
		}
		return local[k]
	}
}

func (s *Stack) printBanner(info StackInfo, services []Service, token string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nEvent Stream is running. Press Ctrl-C to stop.\n\n")
	fmt.Fprintf(&b, "  Base URL        %s\n", info.BaseURL)
	names := map[string]bool{}
	for _, svc := range services {
		names[svc.Name] = true
	}
	for _, r := range ingressRoutes {
		state := ""
		if !names[r.service] {
			state = "  (not in this build yet)"
		}
		fmt.Fprintf(&b, "  %-15s %s%s%s\n", r.service, info.BaseURL, r.prefix, state)
	}
	for _, svc := range services {
		if svc.Handler != nil && !svc.Pages {
			fmt.Fprintf(&b, "  %-15s %s/openapi/%s.json\n", "OpenAPI", info.BaseURL, svc.Name)
		}
	}
	fmt.Fprintf(&b, "  %-15s %s\n", "Postgres", info.DatabaseURL)
	fmt.Fprintf(&b, "  %-15s %s\n", "Kafka", strings.Join(info.KafkaBrokers, ","))
	if info.S3Endpoint != "" {
		fmt.Fprintf(&b, "  %-15s %s\n", "S3", info.S3Endpoint)
	}
	fmt.Fprintf(&b, "\nA token for tenant %q (valid %s); paste these lines into your shell:\n\n", s.cfg.DemoTenant, shortDuration(s.cfg.TokenTTL))
	fmt.Fprintf(&b, "export EVENTSTREAM_URL=%s\n", info.BaseURL)
	fmt.Fprintf(&b, "export TOKEN=%s\n\n", token)
	if names["console"] {
		// The token rides in the fragment, which the browser never sends to the server.
		fmt.Fprintf(&b, "The operator console, signed in as %q:\n\n  %s/console/#token=%s\n\n", s.cfg.DemoTenant, info.BaseURL, token)
	}
	_, _ = io.WriteString(s.out, b.String())
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// shortDuration prints 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
