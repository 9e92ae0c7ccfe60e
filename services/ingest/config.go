package ingest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/eventstream/eventstream/pkg/auth"
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

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = DefaultProduceTimeout
	}
	if c.TenantCacheTTL == 0 {
		c.TenantCacheTTL = DefaultTenantCacheTTL
	}
	if c.TenantMissTTL == 0 {
		c.TenantMissTTL = DefaultTenantMissTTL
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.RateBurst == 0 {
		c.RateBurst = max(DefaultRateBurst, c.MaxBatch)
	}
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
// validates it. It is the only place the service reads its environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:        getenv("INGEST_ADDR"),
		DatabaseURL: getenv("DATABASE_URL"),
		Auth:        auth.ConfigFromEnv(getenv),
	}
	for _, b := range strings.Split(getenv("KAFKA_BROKERS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Brokers = append(c.Brokers, b)
		}
	}
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is required (host:port,...)"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	positiveInt := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive integer", name, v))
			}
			*dst = n
		}
	}
	duration := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive duration", name, v))
			}
			*dst = d
		}
	}
	if v := getenv("INGEST_BODY_LIMIT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("INGEST_BODY_LIMIT: %q is not a positive number of bytes", v))
		}
		c.BodyLimit = n
	}
	positiveInt("INGEST_MAX_EVENT_BYTES", &c.MaxEventBytes)
	positiveInt("INGEST_MAX_BATCH", &c.MaxBatch)
	duration("INGEST_PRODUCE_TIMEOUT", &c.ProduceTimeout)
	duration("INGEST_TENANT_CACHE_TTL", &c.TenantCacheTTL)
	duration("INGEST_TENANT_MISS_TTL", &c.TenantMissTTL)
	duration("INGEST_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	if v := getenv("INGEST_RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0):
			errs = append(errs, fmt.Errorf("INGEST_RATE_LIMIT: %q is not a number of events per second (0 = off)", v))
		case f == 0:
			c.RateLimit = -1 // off
		default:
			c.RateLimit = f
		}
	}
	positiveInt("INGEST_RATE_BURST", &c.RateBurst)
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("reading ingest config: %w", err)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
