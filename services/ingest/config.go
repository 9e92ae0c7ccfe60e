package ingest

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/config"
	"github.com/eventstream/eventstream/pkg/kafka"
)

// Defaults applied to zero Config fields.
const (
	DefaultAddr            = ":8082"
	DefaultBodyLimit       = 8 << 20 // a full batch of typical events; larger → 413
	DefaultMaxEventBytes   = 1 << 20 // the contract's per-event limit
	DefaultMaxBatch        = 500
	DefaultProduceTimeout  = 10 * time.Second
	DefaultTenantCacheTTL  = 30 * time.Second
	DefaultTenantMissTTL   = 2 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	// DefaultRateLimit and DefaultRateBurst: per tenant, in events. A tenant
	// may send 20 full batches back to back, then 5,000 events a second.
	DefaultRateLimit = 5000
	DefaultRateBurst = 10000
)

// Config configures the ingest service. Zero fields take the defaults above
// (see WithDefaults).
type Config struct {
	// Addr is the listen address of Run (INGEST_ADDR).
	Addr string
	// Brokers are the Kafka seed brokers (KAFKA_BROKERS, comma-separated).
	// The service gets a ready *kgo.Client; main builds it with these.
	Brokers []string
	// DatabaseURL is the catalog's Postgres URL (DATABASE_URL), used by main
	// to open the store the tenant check reads.
	DatabaseURL string
	// Auth selects how bearer tokens are verified (AUTH_*).
	Auth auth.Config
	// BodyLimit caps request bodies in bytes; larger ones get 413 (INGEST_BODY_LIMIT).
	BodyLimit int64
	// MaxEventBytes caps one event object; larger ones get 400 (INGEST_MAX_EVENT_BYTES).
	MaxEventBytes int
	// MaxBatch caps the events of one batch body (INGEST_MAX_BATCH).
	MaxBatch int
	// ProduceTimeout bounds the wait for Kafka's acknowledgement; past it the
	// client gets 503 (INGEST_PRODUCE_TIMEOUT, a Go duration).
	ProduceTimeout time.Duration
	// TenantCacheTTL is how long a tenant known to exist is trusted without
	// asking the catalog again (INGEST_TENANT_CACHE_TTL).
	TenantCacheTTL time.Duration
	// TenantMissTTL is how long an unknown tenant is remembered, so a client
	// hammering a wrong tenant cannot hammer Postgres, while a newly
	// provisioned tenant is usable quickly (INGEST_TENANT_MISS_TTL).
	TenantMissTTL time.Duration
	// ShutdownTimeout bounds how long Run waits for in-flight requests after
	// its context ends (INGEST_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// RateLimit is each tenant's sustained publish rate in events per second
	// (a token bucket; a 500-event batch takes 500 tokens), RateBurst its
	// bucket size (INGEST_RATE_LIMIT, INGEST_RATE_BURST). Past it a request
	// gets 429 with Retry-After and nothing of it is published. Events, not
	// requests, are counted: they are what costs Kafka and every delivery
	// worker. INGEST_RATE_LIMIT=0 turns the limit off (RateLimit < 0 here; 0
	// takes the default). RateBurst must hold a full batch (MaxBatch).
	RateLimit float64
	RateBurst int
}

// settings lists every variable of the service, one line each with its
// default and meaning: ConfigFromEnv reads them, WithDefaults applies the
// defaults to a Config built in code. (The burst's default depends on the
// batch size, read first.)
func (c *Config) settings(s *config.Set) {
	s.String(&c.Addr, "INGEST_ADDR", DefaultAddr, "listen address (the API, /healthz, /readyz, /metrics)")
	s.List(&c.Brokers, "KAFKA_BROKERS", nil, "comma-separated seed brokers (required)")
	s.String(&c.DatabaseURL, "DATABASE_URL", "", "the catalog's Postgres URL (required)")
	s.PositiveInt64(&c.BodyLimit, "INGEST_BODY_LIMIT", DefaultBodyLimit, "request body limit in bytes (larger: 413)")
	s.PositiveInt(&c.MaxEventBytes, "INGEST_MAX_EVENT_BYTES", DefaultMaxEventBytes, "one event's limit (larger: 400)")
	s.PositiveInt(&c.MaxBatch, "INGEST_MAX_BATCH", DefaultMaxBatch, "events per batch")
	s.PositiveDuration(&c.ProduceTimeout, "INGEST_PRODUCE_TIMEOUT", DefaultProduceTimeout, "wait for Kafka's acknowledgement; past it the client gets 503")
	s.PositiveDuration(&c.TenantCacheTTL, "INGEST_TENANT_CACHE_TTL", DefaultTenantCacheTTL, "how long a known tenant is trusted without asking the catalog")
	s.PositiveDuration(&c.TenantMissTTL, "INGEST_TENANT_MISS_TTL", DefaultTenantMissTTL, "how long an unknown tenant is remembered")
	s.PositiveDuration(&c.ShutdownTimeout, "INGEST_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, "drain time for in-flight requests")
	config.Custom(s, &c.RateLimit, "INGEST_RATE_LIMIT", strconv.Itoa(DefaultRateLimit), "per-tenant publish rate in events per second; 0 turns it off", parseRate)
	s.PositiveInt(&c.RateBurst, "INGEST_RATE_BURST", max(DefaultRateBurst, c.MaxBatch), "per-tenant burst in events; must hold a full batch")
}

// parseRate reads INGEST_RATE_LIMIT: 0 turns the limit off (RateLimit < 0;
// a zero field takes the default).
func parseRate(v string) (float64, error) {
	f, err := config.ParseFloat(v)
	switch {
	case err != nil || f < 0:
		return 0, fmt.Errorf("%q is not a number of events per second (0 = off)", v)
	case f == 0:
		return -1, nil
	}
	return f, nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.settings(config.Defaults())
	return c
}

// maxEventBytesCeiling keeps one event (plus its envelope) inside one Kafka
// record batch.
const maxEventBytesCeiling = kafka.MaxRecordBatchBytes - 64<<10

// Validate checks the configuration before any connection opens. Brokers and
// DatabaseURL are checked by ConfigFromEnv only: New receives ready clients.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("INGEST_ADDR is empty"))
	}
	if c.BodyLimit <= 0 {
		errs = append(errs, errors.New("INGEST_BODY_LIMIT must be positive"))
	}
	if c.MaxEventBytes <= 0 || c.MaxEventBytes > maxEventBytesCeiling {
		errs = append(errs, fmt.Errorf("INGEST_MAX_EVENT_BYTES must be in 1..%d", maxEventBytesCeiling))
	}
	if c.MaxBatch <= 0 {
		errs = append(errs, errors.New("INGEST_MAX_BATCH must be positive"))
	}
	if c.ProduceTimeout < 100*time.Millisecond || c.ProduceTimeout > 2*time.Minute {
		errs = append(errs, errors.New("INGEST_PRODUCE_TIMEOUT must be between 100ms and 2m"))
	}
	if c.TenantCacheTTL <= 0 || c.TenantMissTTL <= 0 {
		errs = append(errs, errors.New("INGEST_TENANT_CACHE_TTL and INGEST_TENANT_MISS_TTL must be positive"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("INGEST_SHUTDOWN_TIMEOUT must be positive"))
	}
	if c.RateLimit > 0 && c.RateBurst < c.MaxBatch {
		errs = append(errs, fmt.Errorf("INGEST_RATE_BURST (%d) must hold a full batch (INGEST_MAX_BATCH, %d): a larger batch could never pass", c.RateBurst, c.MaxBatch))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ingest config: %w", err)
	}
	return nil
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in main) and
// validates it: every malformed variable is reported at once, before any
// connection opens. It is the only place the service reads its environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	s := config.FromEnv(getenv)
	c.settings(s)
	c.Auth = auth.ConfigFromEnv(getenv)
	if len(c.Brokers) == 0 {
		s.Fail(errors.New("KAFKA_BROKERS is required (host:port,...)"))
	}
	if c.DatabaseURL == "" {
		s.Fail(errors.New("DATABASE_URL is required"))
	}
	// A malformed variable left its field zero, so Validate sees its
	// default: every problem is reported once, all in one error.
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		s.Fail(err)
	}
	if err := s.Err(); err != nil {
		return Config{}, fmt.Errorf("reading ingest config: %w", err)
	}
	return c, nil
}
