package configapi

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/eventstream/eventstream/pkg/auth"
	"github.com/eventstream/eventstream/pkg/config"
	"github.com/eventstream/eventstream/pkg/secrets"
	"github.com/eventstream/eventstream/pkg/webhook"
)

// Defaults applied to zero Config fields.
const (
	DefaultAddr            = ":8081"
	DefaultBodyLimit       = 256 << 10
	DefaultMaxIntegrations = 10
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultRetryRate and DefaultRetryBurst limit each tenant's _retry calls:
	// each one makes the service call the tenant's endpoint, so unlimited
	// retries would let a tenant aim this service's traffic at a host.
	DefaultRetryRate  = 1.0 // per second
	DefaultRetryBurst = 10
)

// Config configures the configuration API service. Zero fields take the
// defaults above (see WithDefaults).
type Config struct {
	// Addr is the listen address of Run (CONFIGAPI_ADDR).
	Addr string
	// DatabaseURL is the catalog's Postgres URL (DATABASE_URL). The service
	// itself gets a ready *catalog.Store; main opens the pool with it.
	DatabaseURL string
	// Migrate applies the catalog migrations at start (CONFIGAPI_MIGRATE=true),
	// convenient for single-process setups; production runs the migrate command.
	Migrate bool
	// EncryptionKey is the 32-byte AES key sealing integration secrets
	// (SECRETS_KEY), used when EncryptionKeys is empty.
	EncryptionKey []byte
	// EncryptionKeys is the keyring (SECRETS_KEYS, comma-separated; it wins
	// over SECRETS_KEY): the first key encrypts, every key decrypts.
	EncryptionKeys [][]byte
	// Auth selects how bearer tokens are verified (AUTH_*).
	Auth auth.Config
	// BodyLimit caps request bodies in bytes; larger ones get 413 (CONFIGAPI_BODY_LIMIT).
	BodyLimit int64
	// MaxIntegrations is how many integrations one tenant may hold, counting
	// temporary and stopped ones (MAX_INTEGRATIONS_PER_TENANT).
	MaxIntegrations int
	// ShutdownTimeout bounds how long Run waits for in-flight requests after
	// its context ends (CONFIGAPI_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// WebhookAllowCIDRs are the non-public address ranges the _retry sender
	// may call (WEBHOOK_ALLOW_CIDRS, comma-separated; same as the delivery
	// workers'). Empty: only public addresses.
	WebhookAllowCIDRs []netip.Prefix
	// OwnHosts are this service's own public hosts (PUBLIC_HOSTS,
	// comma-separated URLs, host:port or hosts; see webhook.OwnHosts): a
	// callback_url pointing at one is refused (400), and the _retry sender
	// refuses them too. Nil: none (the local stack sets its base URL).
	OwnHosts *webhook.OwnHosts
	// RetryRate and RetryBurst limit each tenant's _retry calls (a token
	// bucket: CONFIGAPI_RETRY_RATE per second, CONFIGAPI_RETRY_BURST at
	// once); past it _retry answers 429 with Retry-After.
	// CONFIGAPI_RETRY_RATE=0 turns the limit off (RetryRate < 0 here; 0
	// takes the default).
	RetryRate  float64
	RetryBurst int
}

// Keyring returns the encryption keys, first key first.
func (c Config) Keyring() [][]byte {
	if len(c.EncryptionKeys) > 0 {
		return c.EncryptionKeys
	}
	if c.EncryptionKey != nil {
		return [][]byte{c.EncryptionKey}
	}
	return nil
}

// settings lists every variable of the service, one line each with its
// default and meaning: ConfigFromEnv reads them, WithDefaults applies the
// defaults to a Config built in code.
func (c *Config) settings(s *config.Set) {
	s.String(&c.Addr, "CONFIGAPI_ADDR", DefaultAddr, "listen address (the API, /healthz, /readyz, /metrics)")
	s.String(&c.DatabaseURL, "DATABASE_URL", "", "the catalog's Postgres URL (required)")
	s.Bool(&c.Migrate, "CONFIGAPI_MIGRATE", false, "apply catalog migrations at start")
	s.PositiveInt64(&c.BodyLimit, "CONFIGAPI_BODY_LIMIT", DefaultBodyLimit, "request body limit in bytes (larger: 413)")
	s.PositiveInt(&c.MaxIntegrations, "MAX_INTEGRATIONS_PER_TENANT", DefaultMaxIntegrations, "integrations per tenant, counting temporary and stopped ones")
	s.PositiveDuration(&c.ShutdownTimeout, "CONFIGAPI_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, "drain time for in-flight requests")
	config.Custom(s, &c.WebhookAllowCIDRs, "WEBHOOK_ALLOW_CIDRS", "", "non-public address ranges _retry may call (comma-separated CIDRs or addresses)", parseCIDRs)
	config.Custom(s, &c.OwnHosts, "PUBLIC_HOSTS", "", "this deployment's own hosts: callback URLs pointing at them are refused", parseOwnHosts)
	config.Custom(s, &c.RetryRate, "CONFIGAPI_RETRY_RATE", strconv.FormatFloat(DefaultRetryRate, 'g', -1, 64), "per-tenant _retry calls per second; 0 turns the limit off", parseRetryRate)
	s.PositiveInt(&c.RetryBurst, "CONFIGAPI_RETRY_BURST", DefaultRetryBurst, "per-tenant _retry calls at once")
}

func parseCIDRs(v string) ([]netip.Prefix, error) { return webhook.ParseCIDRs(config.SplitList(v)) }

// parseOwnHosts reads PUBLIC_HOSTS; unset means none (nil).
func parseOwnHosts(v string) (*webhook.OwnHosts, error) {
	if v == "" {
		return nil, nil
	}
	return webhook.ParseOwnHosts(config.SplitList(v))
}

// parseRetryRate reads CONFIGAPI_RETRY_RATE: 0 turns the limit off
// (RetryRate < 0; a zero field takes the default).
func parseRetryRate(v string) (float64, error) {
	f, err := config.ParseFloat(v)
	switch {
	case err != nil || f < 0:
		return 0, fmt.Errorf("%q is not a number of retries per second (0 = off)", v)
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

// Validate checks the configuration before any connection opens.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("CONFIGAPI_ADDR is empty"))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	if ring := c.Keyring(); len(ring) == 0 {
		errs = append(errs, errors.New("SECRETS_KEY (or SECRETS_KEYS) is required: 32 bytes as 64 hex characters or base64"))
	} else if _, err := secrets.NewRing(ring); err != nil {
		errs = append(errs, fmt.Errorf("SECRETS_KEY/SECRETS_KEYS: %w", err))
	}
	if c.RetryBurst < 0 {
		errs = append(errs, errors.New("CONFIGAPI_RETRY_BURST must be positive"))
	}
	if c.BodyLimit <= 0 {
		errs = append(errs, errors.New("CONFIGAPI_BODY_LIMIT must be positive"))
	}
	if c.MaxIntegrations <= 0 {
		errs = append(errs, errors.New("MAX_INTEGRATIONS_PER_TENANT must be positive"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("CONFIGAPI_SHUTDOWN_TIMEOUT must be positive"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configapi config: %w", err)
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
	keys, err := secrets.KeysFromEnv(getenv)
	if err != nil {
		s.Fail(err)
	}
	if len(keys) > 0 {
		c.EncryptionKey, c.EncryptionKeys = keys[0], keys
	}
	// A malformed variable left its field zero, so Validate sees its
	// default: every problem is reported once, all in one error.
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		s.Fail(err)
	}
	if err := s.Err(); err != nil {
		return Config{}, fmt.Errorf("reading configapi config: %w", err)
	}
	return c, nil
}
