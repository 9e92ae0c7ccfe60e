package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/eventstream/eventstream/pkg/config"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// Config is the delivery worker's configuration. Zero durations and counts
// take the defaults (see WithDefaults).
type Config struct {
	// Addr is where the worker serves /healthz, /readyz and /metrics
	// (DELIVERY_ADDR, default ":8083"; see package worker).
	Addr string
	// Pool names this worker's pool (DELIVERY_POOL, default "default").
	Pool string
	// PoolTenants are the tenants the pool serves (DELIVERY_POOL_TENANTS,
	// comma-separated). "*" (the default) serves every tenant no other pool
	// claimed: a pool with an explicit list records its claim in the catalog
	// at start (delivery_pool_claims), so the "*" pool never needs the list
	// repeated, and two pools claiming one tenant is refused at start.
	PoolTenants []string
	// Brokers are the Kafka seed brokers (KAFKA_BROKERS).
	Brokers []string
	// DatabaseURL and SecretsKey are read for cmd/delivery (DATABASE_URL,
	// SECRETS_KEY); the Service itself receives a store.
	DatabaseURL string
	SecretsKey  string
	// SecretsKeys is the keyring (SECRETS_KEYS, or SECRETS_KEY alone): the
	// first key encrypts, every key decrypts.
	SecretsKeys [][]byte
	// OwnHosts are the service's own public hosts (PUBLIC_HOSTS,
	// comma-separated URLs, host:port or hosts): webhooks to them are
	// refused, so a delivery can never feed ingest.
	OwnHosts *webhook.OwnHosts
	// DatabaseMaxConns sizes cmd/delivery's catalog pool (DATABASE_MAX_CONNS,
	// 10); the supervisor adds a pool of 2 of its own.
	DatabaseMaxConns int

	// ResyncInterval is how often every running integration is reloaded in
	// full, in addition to LISTEN/NOTIFY (DELIVERY_RESYNC_INTERVAL, 30s).
	ResyncInterval time.Duration
	// StopPropagation bounds how long after _stop returns a new delivery
	// attempt may still start (DELIVERY_STOP_PROPAGATION, 2s). NOTIFY
	// normally stops a consumer within milliseconds; independently, the
	// worker re-reads every integration's status every StopPropagation/4, and
	// an attempt starts only while the last read saying "running" began less
	// than StopPropagation ago. While the catalog is unreachable, attempts
	// therefore pause.
	StopPropagation time.Duration

	// AttemptTimeout bounds one webhook attempt (WEBHOOK_ATTEMPT_TIMEOUT, 10s).
	AttemptTimeout time.Duration
	// MaxInFlight bounds the records one integration holds between Kafka and
	// a final outcome, including those waiting for a retry
	// (DELIVERY_MAX_IN_FLIGHT, 1000).
	MaxInFlight int
	// MaxInFlightBytes bounds the request bodies those records hold
	// (DELIVERY_MAX_IN_FLIGHT_BYTES, 64 MiB); a single larger event still
	// goes through, alone.
	MaxInFlightBytes int
	// MemoryBudget bounds the request bodies held in flight by all of the
	// worker's webhook integrations together (DELIVERY_MEMORY_BUDGET, 256
	// MiB). An integration holding nothing is admitted past it with one
	// event, so one tenant's slow endpoints can slow but never stall another.
	MemoryBudget int
	// MaxConcurrency is the most concurrent requests to one integration's
	// endpoint (WEBHOOK_MAX_CONCURRENCY, 64); the adaptive limit moves
	// between MinConcurrency (1) and it, starting at InitialConcurrency
	// (WEBHOOK_INITIAL_CONCURRENCY, 16: slow start doubles it per round
	// trip, so a healthy endpoint gets the default maximum from the third
	// round trip on; from 4 it took five, a tenth of a 2 s burst to a 50 ms
	// endpoint).
	MaxConcurrency     int
	MinConcurrency     int
	InitialConcurrency int
	// SlowResponse: a 2xx slower than this does not grow the concurrency
	// limit (WEBHOOK_SLOW_RESPONSE, 1s).
	SlowResponse time.Duration
	// RetryBase and RetryMax shape the exponential backoff (pkg/backoff):
	// retry n waits a random duration in [d/2, d], d = min(RetryMax, RetryBase*2^n)
	// (DELIVERY_RETRY_BASE 1s, DELIVERY_RETRY_MAX 5m). A Retry-After longer
	// than the drawn wait is honoured, up to RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxRetries is how many retries follow a failed first attempt before the
	// integration stops (DELIVERY_MAX_RETRIES, 10).
	MaxRetries int
	// AllowCIDRs lets webhooks reach these otherwise refused (private,
	// loopback, link-local, metadata) ranges (WEBHOOK_ALLOW_CIDRS,
	// comma-separated CIDRs or addresses; empty = none).
	AllowCIDRs []netip.Prefix
	// MaxResponseBody is how much of a response body is kept
	// (WEBHOOK_MAX_RESPONSE_BODY, 1024 bytes).
	MaxResponseBody int

	// TemporaryRetention: completed temporary integrations are deleted this
	// long after completing (DELIVERY_TEMPORARY_RETENTION, 168h).
	TemporaryRetention time.Duration
	// OffsetRetention: an integration started again more than this after it
	// stopped starts from now instead of resuming (DELIVERY_OFFSET_RETENTION,
	// 720h). Keep the broker's offsets.retention.minutes at least this long.
	OffsetRetention time.Duration
	// AttemptRetention: attempt rows older than this are dropped, by day
	// partition (ATTEMPTS_RETENTION, 720h).
	AttemptRetention time.Duration

	// SessionTimeout and RebalanceTimeout are the consumer group timeouts
	// (KAFKA_SESSION_TIMEOUT 45s, KAFKA_REBALANCE_TIMEOUT 60s). A worker that
	// dies without leaving keeps its partitions for SessionTimeout.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// CommitInterval is how often finished offsets are committed
	// (DELIVERY_COMMIT_INTERVAL, 1s); they are also committed on revocation
	// and on stop.
	CommitInterval time.Duration
	// OffsetCheckpointInterval is how often the offsets committed to Kafka
	// are copied to the catalog, all integrations in one statement
	// (DELIVERY_OFFSET_CHECKPOINT_INTERVAL, 30s; also at drain). An
	// integration whose committed offsets the broker expired resumes from
	// them exactly; at most the records delivered after the newest copy
	// come again.
	OffsetCheckpointInterval time.Duration
	// DrainTimeout bounds finishing in-flight work at shutdown and on a
	// partition revocation before committing (DELIVERY_DRAIN_TIMEOUT, 15s;
	// at most half the rebalance timeout is used on revocation).
	DrainTimeout time.Duration
	// ClockSkew allows for clock differences between ingest hosts (which
	// stamp records) and the catalog (DELIVERY_CLOCK_SKEW, 5s): a temporary
	// integration's window is fixed only this long after ends_at, and a
	// registration (or a restart after the offset retention) also delivers
	// events stamped up to this long before it, so none published just after
	// it is lost to a slow clock. An explicit starts_at is exact.
	ClockSkew time.Duration
}

// settings lists every variable of the worker, one line each with its
// default and meaning: ConfigFromEnv reads them, WithDefaults applies the
// defaults to a Config built in code. Settings in the order of their
// dependencies (the initial concurrency's default depends on the maximum).
func (c *Config) settings(s *config.Set) {
	s.String(&c.Addr, "DELIVERY_ADDR", ":8083", "listen address of /healthz, /readyz and /metrics")
	s.String(&c.Pool, "DELIVERY_POOL", "default", "this worker's pool name")
	s.List(&c.PoolTenants, "DELIVERY_POOL_TENANTS", []string{"*"}, "tenants the pool serves (comma-separated); * = every tenant no other pool claims")
	s.List(&c.Brokers, "KAFKA_BROKERS", nil, "comma-separated seed brokers (required)")
	s.String(&c.DatabaseURL, "DATABASE_URL", "", "the catalog's Postgres URL (required by the worker process)")
	s.String(&c.SecretsKey, "SECRETS_KEY", "", "32-byte key opening integration secrets (or SECRETS_KEYS)")
	s.Int(&c.DatabaseMaxConns, "DATABASE_MAX_CONNS", 10, "the worker process's catalog pool size")
	config.Custom(s, &c.OwnHosts, "PUBLIC_HOSTS", "", "this deployment's own hosts: webhooks to them are refused", parseOwnHosts)
	s.Duration(&c.ResyncInterval, "DELIVERY_RESYNC_INTERVAL", 30*time.Second, "full reload of running integrations (besides LISTEN/NOTIFY)")
	s.Duration(&c.StopPropagation, "DELIVERY_STOP_PROPAGATION", 2*time.Second, "bound on how long after _stop a new attempt may still start")
	s.Duration(&c.AttemptTimeout, "WEBHOOK_ATTEMPT_TIMEOUT", webhook.DefaultTimeout, "one webhook attempt")
	s.Int(&c.MaxInFlight, "DELIVERY_MAX_IN_FLIGHT", 1000, "records one integration holds between Kafka and a final outcome")
	s.Int(&c.MaxInFlightBytes, "DELIVERY_MAX_IN_FLIGHT_BYTES", 64<<20, "bytes of request bodies those records hold")
	s.Int(&c.MemoryBudget, "DELIVERY_MEMORY_BUDGET", 256<<20, "bytes of request bodies all of the worker's integrations hold together")
	s.Int(&c.MaxConcurrency, "WEBHOOK_MAX_CONCURRENCY", 64, "most concurrent requests to one integration's endpoint")
	s.Int(&c.InitialConcurrency, "WEBHOOK_INITIAL_CONCURRENCY", min(16, c.MaxConcurrency), "starting point of the adaptive concurrency limit")
	s.Duration(&c.SlowResponse, "WEBHOOK_SLOW_RESPONSE", time.Second, "a 2xx slower than this does not grow the concurrency limit")
	s.Duration(&c.RetryBase, "DELIVERY_RETRY_BASE", time.Second, "first retry backoff step (exponential, jittered)")
	s.Duration(&c.RetryMax, "DELIVERY_RETRY_MAX", 5*time.Minute, "longest retry backoff step")
	s.Int(&c.MaxRetries, "DELIVERY_MAX_RETRIES", 10, "retries after a failed first attempt before the integration stops")
	config.Custom(s, &c.AllowCIDRs, "WEBHOOK_ALLOW_CIDRS", "", "non-public ranges webhooks may reach (comma-separated CIDRs or addresses)", parseCIDRs)
	s.Int(&c.MaxResponseBody, "WEBHOOK_MAX_RESPONSE_BODY", webhook.DefaultMaxResponseBody, "bytes of a response body kept")
	s.Duration(&c.TemporaryRetention, "DELIVERY_TEMPORARY_RETENTION", 7*24*time.Hour, "completed temporary integrations are deleted this long after completing")
	s.Duration(&c.OffsetRetention, "DELIVERY_OFFSET_RETENTION", 30*24*time.Hour, "a restart later than this after a stop starts from now")
	s.Duration(&c.AttemptRetention, "ATTEMPTS_RETENTION", 30*24*time.Hour, "attempt rows are dropped after this, by day partition")
	s.Duration(&c.SessionTimeout, "KAFKA_SESSION_TIMEOUT", 45*time.Second, "consumer group session timeout")
	s.Duration(&c.RebalanceTimeout, "KAFKA_REBALANCE_TIMEOUT", 60*time.Second, "consumer group rebalance timeout")
	s.Duration(&c.CommitInterval, "DELIVERY_COMMIT_INTERVAL", time.Second, "how often finished offsets are committed")
	s.Duration(&c.OffsetCheckpointInterval, "DELIVERY_OFFSET_CHECKPOINT_INTERVAL", 30*time.Second, "how often committed offsets are copied to the catalog (resume after broker offset expiry)")
	s.Duration(&c.DrainTimeout, "DELIVERY_DRAIN_TIMEOUT", 15*time.Second, "time to finish in-flight work at shutdown or revocation")
	s.Duration(&c.ClockSkew, "DELIVERY_CLOCK_SKEW", 5*time.Second, "allowance for ingest hosts' clocks")
}

func parseOwnHosts(v string) (*webhook.OwnHosts, error) {
	return webhook.ParseOwnHosts(config.SplitList(v))
}
func parseCIDRs(v string) ([]netip.Prefix, error) { return webhook.ParseCIDRs(config.SplitList(v)) }

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.settings(config.Defaults())
	if c.MinConcurrency == 0 {
		c.MinConcurrency = 1
	}
	return c
}

// Wildcard reports whether the pool serves every unclaimed tenant.
func (c Config) Wildcard() bool { return len(c.PoolTenants) == 1 && c.PoolTenants[0] == "*" }

// Validate checks c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS: at least one broker is required"))
	}
	for _, t := range c.PoolTenants {
		if t == "*" && len(c.PoolTenants) > 1 {
			errs = append(errs, errors.New(`DELIVERY_POOL_TENANTS: "*" cannot be combined with tenant names`))
		}
		if t == "" {
			errs = append(errs, errors.New("DELIVERY_POOL_TENANTS: empty tenant name"))
		}
	}
	positive := map[string]time.Duration{
		"DELIVERY_RESYNC_INTERVAL": c.ResyncInterval, "DELIVERY_STOP_PROPAGATION": c.StopPropagation,
		"WEBHOOK_ATTEMPT_TIMEOUT": c.AttemptTimeout, "WEBHOOK_SLOW_RESPONSE": c.SlowResponse,
		"DELIVERY_RETRY_BASE": c.RetryBase, "DELIVERY_RETRY_MAX": c.RetryMax,
		"DELIVERY_TEMPORARY_RETENTION": c.TemporaryRetention, "DELIVERY_OFFSET_RETENTION": c.OffsetRetention,
		"ATTEMPTS_RETENTION": c.AttemptRetention, "KAFKA_SESSION_TIMEOUT": c.SessionTimeout,
		"KAFKA_REBALANCE_TIMEOUT": c.RebalanceTimeout, "DELIVERY_COMMIT_INTERVAL": c.CommitInterval,
		"DELIVERY_OFFSET_CHECKPOINT_INTERVAL": c.OffsetCheckpointInterval,
		"DELIVERY_DRAIN_TIMEOUT":              c.DrainTimeout, "DELIVERY_CLOCK_SKEW": c.ClockSkew,
	}
	for name, d := range positive {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", name, d))
		}
	}
	if c.RetryMax < c.RetryBase {
		errs = append(errs, errors.New("DELIVERY_RETRY_MAX: must not be below DELIVERY_RETRY_BASE"))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, errors.New("DELIVERY_MAX_IN_FLIGHT: must be at least 1"))
	}
	if c.MemoryBudget < 1 {
		errs = append(errs, errors.New("DELIVERY_MEMORY_BUDGET: must be positive"))
	}
	if c.MaxInFlightBytes < 1 {
		errs = append(errs, errors.New("DELIVERY_MAX_IN_FLIGHT_BYTES: must be positive"))
	}
	if c.MinConcurrency < 1 || c.MaxConcurrency < c.MinConcurrency ||
		c.InitialConcurrency < c.MinConcurrency || c.InitialConcurrency > c.MaxConcurrency {
		errs = append(errs, errors.New("WEBHOOK_*_CONCURRENCY: need 1 <= min <= initial <= max"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, errors.New("DELIVERY_MAX_RETRIES: must not be negative"))
	}
	if c.MaxResponseBody < 1 {
		errs = append(errs, errors.New("WEBHOOK_MAX_RESPONSE_BODY: must be positive"))
	}
	return errors.Join(errs...)
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in main)
// and validates it: every malformed variable is reported at once, before
// any connection opens. Durations use Go syntax ("1500ms", "30s", "720h").
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	s := config.FromEnv(getenv)
	c.settings(s)
	keys, err := secrets.KeysFromEnv(getenv)
	if err != nil {
		s.Fail(err)
	}
	c.SecretsKeys = keys
	// A malformed variable left its field zero, so Validate sees its
	// default: every problem is reported once, all in one error.
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		s.Fail(err)
	}
	return c, s.Err()
}
